"""One run on many processes: rank-zero-only side effects, evaluation shards, and Hydra jobs under DDP.

Lightning's ``strategy=ddp`` starts ranks 1..N-1 by running the script again (``python train.py <argv>
hydra.run.dir=<run dir> hydra.output_subdir=null``). torchrun and SLURM's srun start every rank themselves.
Both mean that every rank runs Hydra and ``train()``; the helpers here keep them writing one run directory.
"""

from __future__ import annotations

import logging
import os
import sys

import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from lightning.fabric.plugins.environments import SLURMEnvironment, TorchElasticEnvironment
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, read_write
from torch.utils.data import Dataset

from seglab.config.compose import override_key
from seglab.runtime.errors import UserError

# What Lightning's subprocess launcher sets in the environment of the process that starts the other ranks.
LAUNCHER_VARIABLES = ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "WORLD_SIZE")


def prepare_process(trainer_cfg: DictConfig) -> None:
    """Before a run starts on this process: refuse settings that would fail or scatter the run over several
    directories, point the DDP processes Lightning will start at this Hydra job, and leave seglab's messages (the
    final table, ...) to rank 0; other ranks keep their warnings."""
    check_shared_run_dir()
    check_sync_batchnorm(trainer_cfg)
    if str(trainer_cfg.get("strategy")).startswith("ddp"):
        ddp_children_run_this_job()
    if not is_rank_zero():
        logging.getLogger("seglab").setLevel(logging.WARNING)


def is_rank_zero() -> bool:
    """Whether this is the process that writes the run's files (before a Trainer exists to ask)."""
    return rank_zero_only.rank == 0


def evaluation_sampler(dataset: Dataset, trainer: L.Trainer | None) -> UnrepeatedDistributedSampler | None:
    """The shard of ``dataset`` this process scores under DDP (``None`` on a single process).

    Lightning's default DistributedSampler pads the shards to equal length by repeating samples, which a
    confusion matrix summed across processes would count twice. This sampler gives every sample to exactly one
    process (shards differ by at most one sample; metric states are sums, so that is exact). Every process needs
    at least one sample: one with none would skip validation and leave the others waiting in the metric sync.
    """
    if trainer is None or trainer.world_size == 1:
        return None
    if len(dataset) < trainer.world_size:
        raise UserError(
            f"the evaluation split has {len(dataset)} samples for {trainer.world_size} processes; every process needs "
            "at least one: use fewer processes (trainer.devices / trainer.num_nodes) or a larger split"
        )
    return UnrepeatedDistributedSampler(dataset, num_replicas=trainer.world_size, rank=trainer.global_rank, shuffle=False)


def check_sync_batchnorm(trainer_cfg: DictConfig) -> None:
    """torch's SyncBatchNorm runs only on GPUs; say so before a CPU run fails inside DDP with a traceback."""
    if trainer_cfg.get("sync_batchnorm") and trainer_cfg.get("accelerator") == "cpu":
        raise UserError("trainer.sync_batchnorm=true needs GPUs (torch's SyncBatchNorm has no CPU version); set it to false")


def check_shared_run_dir() -> None:
    """Ranks started by torchrun or srun each resolve Hydra's timestamped run directory on their own, so they could
    write to different directories: such runs must name theirs (Lightning's own DDP children are given it)."""
    if not HydraConfig.initialized():
        return
    hydra_cfg = HydraConfig.get()
    if hydra_cfg.mode == RunMode.MULTIRUN or any(override_key(o) == "hydra.run.dir" for o in hydra_cfg.overrides.hydra):
        return
    launched_by = "torchrun" if TorchElasticEnvironment.detect() else None
    if SLURMEnvironment.detect() and int(os.environ.get("SLURM_NTASKS", "1")) > 1:
        launched_by = "srun"
    if launched_by:
        raise UserError(
            f"under {launched_by} every process must write to the same run directory: add hydra.run.dir=<dir> "
            "(e.g. hydra.run.dir=outputs/train/runs/$SLURM_JOB_ID) to the command"
        )


def ddp_children_run_this_job() -> None:
    """In a Hydra multirun, make the processes Lightning starts for DDP run this job, in this job's directory.

    Lightning builds the children's command from ``sys.argv`` and ``hydra.run.dir``: in a multirun that is the
    whole sweep (``-m`` and every value) and a new directory, so each child would start a sweep of its own. For
    this job, ``sys.argv`` holds the job's own overrides and ``hydra.run.dir`` its output directory (the next job
    sets them again; nothing else reads them after Hydra started).
    """
    if not HydraConfig.initialized() or HydraConfig.get().mode != RunMode.MULTIRUN:
        return
    hydra_cfg = HydraConfig.get()
    sys.argv = [sys.argv[0], *hydra_cfg.overrides.task]
    with read_write(hydra_cfg):
        hydra_cfg.run.dir = hydra_cfg.runtime.output_dir


def release_ddp_children(trainer: L.Trainer) -> None:
    """After a run whose other ranks this process started (Lightning's DDP launcher): wait for them to finish, then
    clear the process group and the launcher's variables, so the next job of a multirun starts its own ranks."""
    children = getattr(trainer.strategy.launcher, "procs", None)
    if not children:
        return
    for child in children:
        child.wait()
    if torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
    for name in LAUNCHER_VARIABLES:
        os.environ.pop(name, None)
