"""Lightning's ModelCheckpoint, made to resume runs exactly: step checkpoints, and the best score kept across runs.

Three changes to :class:`lightning.pytorch.callbacks.ModelCheckpoint` (the class keeps its name, so its state in
checkpoints is interchangeable with Lightning's):

- ``last.ckpt`` is written at the end of every epoch (``every_n_epochs``, whether or not a validation ran) and
  after every validation, as before Lightning 2.6, which writes it only with a new best checkpoint (a run resumed
  from it would train again the epochs since the best one), and also at the end of a fast dev run (never here).
- ``every_n_train_steps`` writes ``last.ckpt`` every N training steps, from the first epoch on and on top of the
  checkpoints written after each validation (Lightning makes the two exclusive, and waits for the monitored
  validation metric, so it writes no step checkpoint before the first validation); ``best.ckpt`` is still chosen
  by validation only. No step checkpoint is written right before a validation pass: a run resumed from it would
  skip that validation, so the checkpoint written after the validation is the resume point there.
- A run resumed from another run's checkpoint (``ckpt_path=<run dir>`` or ``last``) writes into its own directory.
  Lightning then forgets the best score and takes the first validation of the new run as the best; here the
  previous run's best checkpoints are hard-linked (or copied) into the new directory and the score is kept, so the
  resumed run picks the same best checkpoint as an uninterrupted one, and the old run is left untouched.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import ModelCheckpoint as LightningModelCheckpoint

log = logging.getLogger(__name__)


def validation_follows(trainer: L.Trainer) -> bool:
    """Whether a validation pass runs right after the current training batch (the last batch of an epoch, or a
    ``trainer.val_check_interval`` boundary)."""
    progress = trainer.fit_loop.epoch_loop.batch_progress
    interval = trainer.val_check_batch
    return progress.is_last_batch or (isinstance(interval, int) and progress.current.processed % interval == 0)


class ModelCheckpoint(LightningModelCheckpoint):
    """``lightning.pytorch.callbacks.ModelCheckpoint`` that resumes exactly (see the module).

    Args:
        every_n_train_steps: write ``last.ckpt`` every N training steps, besides the checkpoints written after
            every validation (Lightning's ``every_n_epochs``, which stays in force); ``None``: no step checkpoints.
        *args, **kwargs: Lightning's arguments.
    """

    def __init__(self, *args: Any, every_n_train_steps: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.step_interval = every_n_train_steps or 0

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any, **kwargs: Any) -> None:
        super().on_train_batch_end(trainer, pl_module, *args, **kwargs)  # train_time_interval
        every = self.step_interval
        if every < 1 or trainer.global_step % every or self._should_skip_saving_checkpoint(trainer):
            return
        if validation_follows(trainer):
            return
        saved_step = self._last_global_step_saved
        self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))
        self._last_global_step_saved = saved_step  # a validation at this step still gets its checkpoints

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        super().on_train_epoch_end(trainer, pl_module)
        if self._every_n_epochs >= 1 and (trainer.current_epoch + 1) % self._every_n_epochs == 0:
            self._save_last_if_not_saved(trainer)  # also when no validation ran at the end of this epoch

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        due = not self._should_skip_saving_checkpoint(trainer) and not self._should_save_on_train_epoch_end(trainer)
        super().on_validation_end(trainer, pl_module)
        if due:
            self._save_last_if_not_saved(trainer)

    def _save_last_if_not_saved(self, trainer: L.Trainer) -> None:
        """Write ``last.ckpt`` unless a checkpoint was written at this step already (Lightning >= 2.6 writes it
        only together with a new best checkpoint, so after an epoch that did not improve it is stale)."""
        if self.save_last and not self._should_skip_saving_checkpoint(trainer):
            self._save_last_checkpoint(trainer, self._monitor_candidates(trainer))

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.fast_dev_run:  # Lightning >= 2.6 writes last.ckpt here even in a fast dev run
            super().on_train_end(trainer, pl_module)

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        previous = state_dict.get("dirpath")
        if previous and self.dirpath and Path(previous).resolve() != Path(self.dirpath).resolve():
            state_dict = self._adopt_best_checkpoints(state_dict)
        super().load_state_dict(state_dict)

    def _adopt_best_checkpoints(self, state: dict[str, Any]) -> dict[str, Any]:
        """Link the previous run's top-k checkpoints into this run's directory; return the state pointing at them."""
        here = Path(self.dirpath)
        here.mkdir(parents=True, exist_ok=True)
        moved: dict[str, str] = {}
        for old in state.get("best_k_models", {}):
            source, target = Path(old), here / Path(old).name
            if not source.is_file():
                log.warning("The resumed run's checkpoint %s is gone: it no longer counts as a best checkpoint", old)
                continue
            if not target.exists():
                _link_or_copy(source, target)
            moved[old] = str(target)
        best_k = {moved[path]: score for path, score in state.get("best_k_models", {}).items() if path in moved}
        adopted = {**state, "dirpath": self.dirpath, "best_k_models": best_k}
        if not best_k:  # nothing to compare with: the next validation makes the best checkpoint
            return {**adopted, "best_model_score": None, "best_model_path": "", "kth_best_model_path": "",
                    "kth_value": self.kth_value}
        return {
            **adopted,
            "best_model_path": moved.get(state["best_model_path"], ""),
            "kth_best_model_path": moved.get(state["kth_best_model_path"], ""),
        }


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link (no extra disk space; saves replace files by rename, so the link is never written through),
    or a copy across file systems."""
    try:
        os.link(source, target)
    except FileExistsError:  # another process of a DDP run linked it first
        pass
    except OSError:
        shutil.copy2(source, target)
