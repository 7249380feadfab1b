"""Built-in inpainting methods, each registered through the same hook as third-party plugins."""
