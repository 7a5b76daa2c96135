"""The PQ, official Cityscapes and boundary metrics summed over 2 DDP processes (gloo) give the scores of one process."""

from __future__ import annotations

import json
import socket
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from seglab.data.datasets import CityscapesDataset
from seglab.metrics.cityscapes_instance import CityscapesInstanceAP
from seglab.metrics.cityscapes_pixel import CityscapesSegmentationMetrics
from seglab.metrics.boundary import BoundaryIoU, TrimapMIoU
from seglab.metrics.panoptic import PanopticMetrics

from tests.helpers.cityscapes_tree import write_cityscapes_tree


def panoptic_pair(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A ground-truth panoptic map (stuff 0 / 1, things 2 / 3 with a crowd region and void) and a shifted copy."""
    rng = np.random.default_rng(seed)
    target = np.zeros((16, 16), np.int64)
    target[8:] = 1000
    for instance_id in range(1, 4):
        y, x = rng.integers(0, 12, 2)
        target[y : y + 4, x : x + 4] = int(rng.choice([2, 3])) * 1000 + instance_id
    target[12:, 12:] = 2000  # crowd
    target[0, :4] = 255_000
    prediction = np.roll(target, int(rng.integers(0, 2)), axis=1)
    prediction[rng.random(prediction.shape) < 0.05] = 255_000
    return torch.from_numpy(prediction), torch.from_numpy(target)


def cityscapes_inputs(root: Path, index: int) -> tuple[dict, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Val image ``index``: an instance prediction (its instances shifted; none for odd images, so one process
    holds no ranked outcome), a semantic prediction with errors, the target and the instance id map."""
    sample = CityscapesDataset(root, "val", return_instances=True, instance_ids=True)[index]
    truth, generator = sample["instances"], torch.Generator().manual_seed(index)
    keep = ~truth["iscrowd"] if index % 2 == 0 else torch.zeros_like(truth["iscrowd"])
    masks = torch.roll(truth["masks"][keep].bool(), shifts=(index, 1), dims=(1, 2))
    prediction = {"masks": masks, "labels": truth["labels"][keep], "scores": torch.rand(len(masks), generator=generator)}
    target = sample["mask"].long()
    wrong = torch.rand(target.shape, generator=generator) < 0.3
    semantic = torch.where(wrong | (target == 255), torch.randint(0, 19, target.shape, generator=generator), target)
    return prediction, semantic, target, sample["instance_ids"]


def all_scores(root: Path, indices: list[int]) -> dict[str, float]:
    """Every score of the three metrics over the given val images and panoptic pairs (synced under DDP)."""
    panoptic, pixel, instance = PanopticMetrics([2, 3], num_classes=4), CityscapesSegmentationMetrics(), CityscapesInstanceAP()
    boundary = [TrimapMIoU(19, widths=(1, 3)), BoundaryIoU(19)]
    for index in indices:
        panoptic.update_maps(*(m[None] for m in panoptic_pair(index)))
        prediction, semantic, target, instance_ids = cityscapes_inputs(root, index)
        pixel.update(semantic[None], target[None], instance_ids[None])
        instance.update([prediction], instance_ids[None])
        for metric in boundary:
            metric.update(semantic[None], target[None])
    scores = {**panoptic.scores(), **instance.scores()}
    scores.update({name: float(value) for name, value in pixel.named_scores().items()})
    scores.update({name: float(value) for metric in boundary for name, value in metric.compute().items()})
    return scores


def synced_scores(rank: int, port: int, root: Path) -> dict[str, float]:
    """:func:`all_scores` of this process's shard (2 images on rank 0, 1 on rank 1, as an evaluation sampler
    splits 3), in a 2-process gloo group."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2, timeout=timedelta(seconds=120))
    try:
        return all_scores(root, [0, 1, 2][rank::2])
    finally:
        dist.destroy_process_group()


def _second_process(port: int, root: Path, out: Path) -> None:
    out.write_text(json.dumps(synced_scores(1, port, root)))


def test_two_processes_sum_the_states_to_the_one_process_scores(tmp_path):
    root = write_cityscapes_tree(tmp_path / "cityscapes", per_city=3, block=16, quarters=0.5)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    # This process is rank 0; one spawned process is rank 1.
    second = mp.get_context("spawn").Process(target=_second_process, args=(port, root, tmp_path / "rank1.json"))
    second.start()
    try:
        rank0 = synced_scores(0, port, root)
    finally:
        second.join(timeout=120)
        if second.is_alive():
            second.kill()
    assert second.exitcode == 0
    rank1 = json.loads((tmp_path / "rank1.json").read_text())
    one = all_scores(root, [0, 1, 2])
    reals = ("PQ", "PQ_things", "mIoU", "iIoU", "mIoU_category", "iIoU_category", "AP_cityscapes", "AP50_cityscapes",
             "trimap_mIoU/1", "trimap_mIoU/3", "boundary_mIoU")  # fmt: skip
    for name in reals:
        assert 0.0 < one[name] < 1.0, name  # real scores, so a lost or doubled image would show
    assert set(rank0) == set(rank1) == set(one)
    for name, value in one.items():
        assert rank0[name] == pytest.approx(value, abs=1e-9, nan_ok=True), name
        assert rank1[name] == pytest.approx(value, abs=1e-9, nan_ok=True), name
