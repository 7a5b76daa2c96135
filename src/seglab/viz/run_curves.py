"""A run's curves in one picture (``media/curves.png``): training and validation loss, the monitored validation
metric (val/mIoU, val/PQ, val/mAP...) with its best value marked, and the learning rate of every parameter group,
all against the optimizer step.

:class:`RunHistory` collects the values itself, whatever the logger (also with ``logger=none``); it is a callback's
state, so the checkpoint carries it and a resumed run's picture covers the whole run.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from seglab.viz.panels import figure_pixels


class RunHistory:
    """The values curves.png shows: ``train`` (every ``log_every_n_steps`` steps: loss and learning rates),
    ``train_epoch`` (each epoch's mean loss) and ``val`` (each validation's loss and monitored metric), each a list
    of ``{"step", "epoch", ...}`` rows."""

    def __init__(self) -> None:
        self.train: list[dict[str, Any]] = []
        self.train_epoch: list[dict[str, Any]] = []
        self.val: list[dict[str, Any]] = []

    def add(self, series: str, step: int, epoch: int, values: Mapping[str, Any]) -> None:
        """One row of ``series``; a row at the same step as the last one replaces it (a repeated hook)."""
        rows = getattr(self, series)
        row = {"step": int(step), "epoch": int(epoch), **values}
        if rows and rows[-1]["step"] == row["step"]:
            rows[-1] = row
        else:
            rows.append(row)

    def state_dict(self) -> dict[str, Any]:
        return {"train": self.train, "train_epoch": self.train_epoch, "val": self.val}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        self.train, self.train_epoch, self.val = (list(state.get(name, [])) for name in ("train", "train_epoch", "val"))


def learning_rates(optimizers: Sequence[Any]) -> dict[str, float]:
    """``{group name: lr}`` of every parameter group (:func:`seglab.optim.setup.group_learning_rates`; optimizers
    after the first prefix ``optimizer <j>/``)."""
    from seglab.optim.setup import group_learning_rates

    return {
        (f"optimizer {number}/" if number else "") + name: lr
        for number, optimizer in enumerate(optimizers)
        for name, lr in group_learning_rates(optimizer).items()
    }


def _points(rows: Sequence[Mapping[str, Any]], key: str) -> tuple[list[int], list[float]]:
    pairs = [(row["step"], float(row[key])) for row in rows if row.get(key) is not None and not math.isnan(float(row[key]))]
    return ([p[0] for p in pairs], [p[1] for p in pairs]) if pairs else ([], [])


def curves_image(history: RunHistory, monitor: str = "val/mIoU", mode: str = "max", title: str = "") -> np.ndarray:
    """The three panels (loss, ``monitor``, learning rates) side by side as an HxWx3 uint8 image."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(15.0, 4.3), dpi=90)
    loss_axes, metric_axes, lr_axes = figure.subplots(1, 3)

    steps, losses = _points(history.train, "loss")
    if steps:
        loss_axes.plot(steps, losses, color="#4c72b0", alpha=0.45, linewidth=1, label="train (logged steps)")
    steps, losses = _points(history.train_epoch, "loss")
    if steps:
        loss_axes.plot(steps, losses, color="#4c72b0", marker="o", linewidth=1.8, label="train (epoch mean)")
    steps, losses = _points(history.val, "loss")
    if steps:
        loss_axes.plot(steps, losses, color="#dd8452", marker="s", linewidth=1.8, label="validation")
    _finish(loss_axes, "loss", "loss")

    steps, scores = _points(history.val, "monitor")
    if steps:
        metric_axes.plot(steps, scores, color="#55a868", marker="o", linewidth=1.8, label=monitor)
        best = (max if mode == "max" else min)(range(len(scores)), key=scores.__getitem__)
        metric_axes.scatter([steps[best]], [scores[best]], s=160, marker="*", color="#c44e52", zorder=3,
                            label=f"best {scores[best]:.4f} (step {steps[best]})")  # fmt: skip
    else:
        metric_axes.text(0.5, 0.5, "no validation in this run", ha="center", va="center", transform=metric_axes.transAxes)
    _finish(metric_axes, f"validation {monitor}", monitor)

    groups = sorted({name for row in history.train for name in row.get("lr", {})})
    for number, name in enumerate(groups):  # groups at the same rate overlap: the dashes show each
        pairs = [(row["step"], row["lr"][name]) for row in history.train if name in row.get("lr", {})]
        style = ("-", "--", ":", "-.")[number % 4]
        lr_axes.plot([p[0] for p in pairs], [p[1] for p in pairs], linewidth=1.8, linestyle=style, label=name)
    rates = [row["lr"][name] for row in history.train for name in row.get("lr", {})]
    if rates and min(rates) > 0 and max(rates) / min(rates) > 20:
        lr_axes.set_yscale("log")
    _finish(lr_axes, "learning rate", "learning rate")

    if title:
        figure.suptitle(title, fontsize=11)
    figure.subplots_adjust(left=0.06, right=0.98, bottom=0.14, top=0.84, wspace=0.28)  # fixed: tight_layout costs 0.3 s
    return figure_pixels(figure)


def _finish(axes: Any, title: str, ylabel: str) -> None:
    from matplotlib.ticker import MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    axes.set_title(title, fontsize=10)
    axes.set_xlabel("optimizer step")
    axes.set_ylabel(ylabel)
    axes.grid(alpha=0.3)
    if axes.get_legend_handles_labels()[0]:
        axes.legend(fontsize=8, loc="best")
