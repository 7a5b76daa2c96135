"""Checkpoints: safe loads and atomic saves, rebuilding a run from its checkpoint, resuming, SLURM requeue, and the callbacks that write them."""
