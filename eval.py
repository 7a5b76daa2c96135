"""Evaluate a checkpoint: ``python eval.py ckpt_path=<run>/checkpoints/best.ckpt`` (see README)."""

from seglab.commands.checkpoint_overrides import checkpoint_command
from seglab.commands.evaluate import EVAL_ONLY_KEYS, evaluate


@checkpoint_command("eval", EVAL_ONLY_KEYS)
def main(cfg) -> None:
    evaluate(cfg)


if __name__ == "__main__":
    main()
