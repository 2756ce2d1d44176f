"""Checkpoints, the run directory, trainer state and its checks, resume."""
