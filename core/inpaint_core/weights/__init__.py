"""Published weights: the catalogue, download, safe loading and conversion of checkpoints."""
