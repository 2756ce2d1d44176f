"""Training loop, configs, checkpoints, metrics and the evaluate/caption command-line tools."""
