"""Pre-training: typed config, learning-rate schedule, the training loop, run plots."""
