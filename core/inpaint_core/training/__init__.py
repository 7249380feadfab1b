"""Training learned inpainting methods: datasets, trainer, checkpoints."""
