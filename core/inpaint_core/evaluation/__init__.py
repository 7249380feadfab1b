"""Evaluation of inpainting methods: the survey protocol on any image set."""
