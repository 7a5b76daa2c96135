"""seglab's commands (train, evaluate, predict, export, report): each a ``run(cfg)`` and its Hydra entry."""
