"""A quiet console: Lightning's log lines once, through Hydra's handlers (so they also reach ``<run dir>/<job>.log``),
without its product tips, its lines that tell a seglab user nothing, a dependency's deprecation warning the user
cannot act on, and the model summary's bf16 caveat (the weights it sizes are float32 under autocast). Real
warnings are kept: each filter names one message and where it comes from.
"""

from __future__ import annotations

import logging
import re
import warnings

# Lightning's own handlers: the "lightning" package logs to stderr as "INFO: ..." (and "lightning.pytorch" /
# "lightning.fabric" do when imported before Hydra set up logging), so every line showed twice.
LIGHTNING_LOGGERS = ("lightning", "lightning.pytorch", "lightning.fabric")
# The loggers Lightning's rank_zero_info writes to.
RANK_ZERO_LOGGERS = ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero")
# Messages of those loggers that say nothing to a seglab user: product tips (litlogger, litmodels), a TPU/HPU line on
# machines without one, an internal step of the learning-rate schedule's setup, and the line that repeats the one
# before it ("Restoring states from the checkpoint path at <file>").
NOISE = (
    r"💡 Tip: ",
    r"(TPU|HPU) available: False",
    r"Loading `train_dataloader` to estimate number of stepping batches",
    r"Loaded model weights from the checkpoint at ",
)


class DropMessages(logging.Filter):
    """Drops the records whose message starts with one of ``patterns`` (regular expressions)."""

    def __init__(self, patterns: tuple[str, ...] = NOISE) -> None:
        super().__init__()
        self.pattern = re.compile("|".join(f"(?:{p})" for p in patterns))

    def filter(self, record: logging.LogRecord) -> bool:
        return self.pattern.match(record.getMessage()) is None


def quiet_console() -> None:
    """Route Lightning's records to the root handlers only (when there are some: Hydra's console and log file), drop
    its noise lines, and silence torch's ``LeafSpec`` deprecation that Lightning's ``_pytree`` triggers. Idempotent."""
    if logging.getLogger().handlers:
        for name in LIGHTNING_LOGGERS:
            logger = logging.getLogger(name)
            for handler in list(logger.handlers):
                if type(handler) is logging.StreamHandler:  # Lightning's console handler, not a file a user added
                    logger.removeHandler(handler)
            logger.propagate = True
    for name in RANK_ZERO_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, DropMessages) for f in logger.filters):
            logger.addFilter(DropMessages())
    warnings.filterwarnings(
        "ignore", message=r"`isinstance\(treespec, LeafSpec\)` is deprecated", category=FutureWarning,
        module=r"lightning\.pytorch\.utilities\._pytree",
    )  # fmt: skip
    # bf16-mixed runs (make train's): the summary sizes the weights, which are float32 under autocast, in 32 bits.
    warnings.filterwarnings(
        "ignore", message=r"Precision bf16-mixed is not supported by the model summary", category=UserWarning,
        module=r"lightning\.pytorch\.utilities\.model_summary\.model_summary",
    )  # fmt: skip
