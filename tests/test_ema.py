"""callbacks=ema: validation and checkpoints use the exponential moving average of the weights."""

from __future__ import annotations

import torch

from seglab.commands.train import train

from tests.helpers import TINY, make_cfg
from tests.helpers.probes import EMAProbe

DECAY = 0.5


def test_ema_weights_are_validated_and_saved_in_checkpoints(tmp_path):
    cfg = make_cfg(
        tmp_path, *TINY, "data.dataset.image_size=[32,32]", "data.dataset.lengths={train:4,val:4,test:4}",
        "data.batch_size=4", "trainer.max_epochs=3", "trainer.num_sanity_val_steps=0",
        "callbacks=ema", f"callbacks.ema.decay={DECAY}",
        # best.ckpt from epoch 1 of 0..2, so the EMA after training differs from the best checkpoint's
        "+callbacks.model_checkpoint.every_n_epochs=2", "callbacks.model_checkpoint.save_last=false",
        "+callbacks.probe._target_=tests.helpers.probes.EMAProbe", f"+callbacks.probe.decay={DECAY}",
    )  # fmt: skip
    train(cfg)
    probe = EMAProbe.instance
    during_fit = [(epoch, weights) for stage, epoch, weights in probe.validated if stage == "fit"]
    assert [epoch for epoch, _ in during_fit] == [0, 1, 2]
    for epoch, weights in during_fit:  # each validation saw the EMA ...
        assert torch.allclose(weights, probe.at_epoch_end[epoch]["ema"], atol=1e-6)
    for epoch, weights in during_fit[1:]:  # ... not the weights training had reached (equal after one step)
        assert not torch.allclose(weights, probe.at_epoch_end[epoch]["raw"], atol=1e-4)

    best = torch.load(tmp_path / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert best["epoch"] == 1
    name = "net.classifier.1.weight"
    assert torch.allclose(best["state_dict"][name], probe.at_epoch_end[1]["ema"], atol=1e-6)
    assert torch.allclose(best["current_model_state"][name], probe.at_epoch_end[1]["raw"], atol=1e-6)

    # train() then scores best.ckpt: exactly its EMA weights, not the average training ended with
    ((_, _, final_weights),) = [v for v in probe.validated if v[0] == "validate"]
    assert torch.allclose(final_weights, best["state_dict"][name], atol=1e-6)
    assert not torch.allclose(final_weights, probe.at_epoch_end[2]["ema"], atol=1e-4)
