"""Experiment tracking: the loggers (W&B, MLflow, TensorBoard, CSV) and their media, the run's description, the leaderboard, secret redaction, the metrics file."""
