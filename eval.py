"""Evaluate a checkpoint: ``python eval.py ckpt_path=<run>/checkpoints/best.ckpt`` (``python -m seglab eval``)."""

from seglab.commands.entry import eval_main

if __name__ == "__main__":
    eval_main()
