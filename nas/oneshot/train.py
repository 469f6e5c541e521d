"""Training a supernet with single-path uniform sampling (SPOS, Guo et al. 2020), and scoring its subnets.

Each step draws one architecture uniformly from the space (``Space.sample_random``: every choice uniform given the
ones before it) and takes a gradient step on the shared weights through it. With ``sandwich`` (Yu et al.,
BigNAS/slimmable networks) a step sums the gradients of the largest, the smallest and one random architecture
(largest/smallest by forward FLOPs among the cover and a seeded sample of the space).

Scoring (:func:`score_subnet`): the subnet is extracted with its inherited weights, its BatchNorm statistics are
recalibrated on training batches (the supernet's running statistics mix every architecture, so they fit none),
and it is evaluated on the validation split. Pure torch; nothing here imports Ray or MLflow.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas.builders import build
from nas.data import Splits
from nas.oneshot.supernet import Supernet, arch_key
from nas.profile import count_flops
from nas.training.train import LR_SCHEDULES, OPTIMIZERS, evaluate


@dataclass
class SupernetEpoch:
    """One epoch of supernet training. ``train_flops``: training FLOPs so far (3 × forward FLOPs × samples, forward
    FLOPs per sample of each step's architecture, estimated for uniform steps by the mean of ``flops_sample``
    profiled draws); ``seconds``: wall seconds of the epoch."""

    epoch: int
    train_loss: float
    train_flops: float
    samples_seen: int
    steps: int
    seconds: float

    def metrics(self) -> dict[str, float]:
        return {"epoch": float(self.epoch), "train_loss": self.train_loss, "train_flops": self.train_flops,
                "samples_seen": float(self.samples_seen), "steps": float(self.steps), "epoch_seconds": self.seconds}


class FlopCounter:
    """Forward FLOPs per sample of architectures, counted once each (``nas.profile.count_flops``)."""

    def __init__(self, supernet: Supernet) -> None:
        self.supernet = supernet
        self._cache: dict[str, float] = {}

    def __call__(self, params: Mapping[str, Any]) -> float:
        key = arch_key(params)
        if key not in self._cache:
            sn = self.supernet
            model = build(sn.space, params, input_shape=sn.input_shape, num_classes=sn.num_classes)
            self._cache[key] = float(count_flops(model, sn.input_shape)[0])
        return self._cache[key]


def extremes(supernet: Supernet, flops: FlopCounter, *, samples: int = 32, seed: int = 0
             ) -> tuple[dict[str, Any], dict[str, Any]]:
    """(largest, smallest) architectures by forward FLOPs among the rule's cover and ``samples`` seeded draws."""
    pool = list(supernet.rule.cover(supernet.space)) + [supernet.space.sample_random(seed * 7919 + i)
                                                         for i in range(samples)]
    ranked = sorted(pool, key=flops)
    return ranked[-1], ranked[0]


def train_supernet(
    supernet: Supernet,
    splits: Splits,
    *,
    epochs: int,
    batch_size: int = 64,
    optimizer: str = "adam",
    lr: float = 0.003,
    weight_decay: float = 0.0,
    schedule: str = "cosine",
    sandwich: bool = False,
    seed: int = 0,
    device: str | torch.device = "cpu",
    start_epoch: int = 0,
    optimizer_state: Mapping[str, Any] | None = None,
    flops_sample: int = 32,
    on_epoch: Callable[[SupernetEpoch, torch.optim.Optimizer], None] | None = None,
) -> list[SupernetEpoch]:
    """Train ``supernet`` in place (moved to ``device``) from epoch ``start_epoch`` (0-based) to ``epochs``.

    ``optimizer_state`` resumes a checkpointed optimizer. ``on_epoch(epoch, optimizer)`` runs after each epoch
    (reporting, checkpointing). The step count and draws are seeded by ``seed`` and the epoch, so a resumed run
    draws what the uninterrupted one would have. Returns the epochs run.
    """
    dev = torch.device(device)
    supernet.to(dev).train()
    x, y = (t.to(dev) for t in splits.train.tensors)
    opt = OPTIMIZERS[optimizer](supernet.parameters(), lr=lr, weight_decay=weight_decay, momentum=0.9)
    if optimizer_state is not None:
        opt.load_state_dict(dict(optimizer_state))
    flops = FlopCounter(supernet)
    rng = random.Random(seed)
    sample_seeds = [rng.randrange(2**31) for _ in range(flops_sample)]
    mean_flops = sum(flops(supernet.space.sample_random(s)) for s in sample_seeds) / max(1, flops_sample)
    big, small = extremes(supernet, flops, seed=seed) if sandwich else ({}, {})
    per_step = [flops(big), flops(small), mean_flops] if sandwich else [mean_flops]
    out: list[SupernetEpoch] = []
    spent = 3.0 * sum(per_step) * len(y) * start_epoch
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group["lr"] = lr * LR_SCHEDULES[schedule](epoch, epochs)
        gen = torch.Generator(device="cpu").manual_seed(seed * 100_003 + epoch)
        order = torch.randperm(len(y), generator=gen).to(dev)
        draw = random.Random(seed * 100_003 + epoch)
        loss_sum, steps = torch.zeros((), device=dev), 0
        for start in range(0, len(y), batch_size):
            idx = order[start:start + batch_size]
            if len(idx) < 2:  # BatchNorm cannot train on one sample
                continue
            xb, yb = x[idx], y[idx]
            archs = [supernet.space.sample_random(draw.randrange(2**31))]
            if sandwich:
                archs = [big, small, *archs]
            opt.zero_grad(set_to_none=True)
            for params in archs:
                loss = F.cross_entropy(supernet(xb, params), yb)
                loss.backward()
                loss_sum += loss.detach() / len(archs)
            opt.step()
            steps += 1
            spent += 3.0 * sum(per_step) * len(idx)
        train_loss = float(loss_sum) / max(1, steps)
        if not math.isfinite(train_loss):
            raise FloatingPointError(f"supernet training diverged at epoch {epoch + 1} (loss {train_loss})")
        ep = SupernetEpoch(epoch + 1, train_loss, spent, len(y) * (epoch + 1), steps, time.perf_counter() - t0)
        out.append(ep)
        if on_epoch is not None:
            on_epoch(ep, opt)
    supernet.eval()
    return out


def calibration_batches(splits: Splits, *, batches: int, batch_size: int, seed: int = 0) -> list[Tensor]:
    """``batches`` seeded random batches of training inputs for BatchNorm recalibration (fewer if the split is
    smaller)."""
    x = splits.train.tensors[0]
    gen = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(x), generator=gen)
    return [x[order[i:i + batch_size]] for i in range(0, min(len(x), batches * batch_size), batch_size)]


def recalibrate_bn(model: nn.Module, batches: Sequence[Tensor]) -> nn.Module:
    """Reset every BatchNorm's running statistics and recompute them as the plain average over ``batches``
    (forward passes in training mode, no gradients); returns ``model`` in eval mode."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts the same
    device = next((p.device for p in model.parameters()), torch.device("cpu"))
    model.train()
    with torch.no_grad():
        for xb in batches:
            model(xb.to(device))
    for m, mom in zip(norms, momenta, strict=True):
        m.momentum = mom
    return model.eval()


def score_subnet(supernet: Supernet, params: Mapping[str, Any], splits: Splits, calibration: Sequence[Tensor], *,
                 device: str | torch.device = "cpu", batch_size: int = 512) -> float:
    """Validation accuracy (fraction) of architecture ``params`` with the supernet's weights, after BatchNorm
    recalibration on ``calibration``. No training; the supernet is unchanged."""
    model = supernet.extract(params).to(device)
    recalibrate_bn(model, calibration)
    return evaluate(model, splits.val, batch_size=batch_size, device=device)[0]
