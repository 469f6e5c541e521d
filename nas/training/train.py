"""The training and evaluation loop: pure torch, for in-memory tensor datasets.

No DataLoader: the split tensors move to the device once and each batch is an ``index_select`` of them, which
for data of this size is several times faster than a loader. Per-batch losses and hits stay on the device and
are read once per epoch, so the loop does not synchronize with the GPU every step.

Determinism: shuffling draws from a ``torch.Generator`` seeded with ``seed``, and in-model randomness (dropout)
draws from torch's global RNG, which :func:`train` reseeds with ``seed`` inside ``torch.random.fork_rng`` so the
caller's RNG state is the same after the call. On CPU, the same seed and the same initial weights give the same
metrics bit for bit; on CUDA that also needs the caller to enable ``torch.backends.cudnn.deterministic``.
Nothing global is changed, except the model itself: it is moved to ``device``, trained in place, and left in
eval mode. The number of CPU threads is the caller's: tiny models usually train fastest with
``torch.set_num_threads(1)``, and several threads per process crawl when processes share the cores.
"""

from __future__ import annotations

import logging
import math
import random
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import TensorDataset

from nas.data import Splits
from nas.errors import did_you_mean

log = logging.getLogger(__name__)

OptimizerFactory = Callable[..., torch.optim.Optimizer]
"""``fn(params, *, lr, weight_decay, momentum) -> Optimizer``."""

OPTIMIZERS: dict[str, OptimizerFactory] = {}

LR_SCHEDULES: dict[str, Callable[[int, int], float]] = {
    # (epoch index from 0, epochs) -> factor on the base lr for that epoch
    "cosine": lambda e, epochs: 0.5 * (1.0 + math.cos(math.pi * e / epochs)),
    "constant": lambda e, epochs: 1.0,
}

# device type -> autocast dtype when amp=True
AMP_DTYPES: dict[str, torch.dtype] = {"cpu": torch.bfloat16, "cuda": torch.float16}


def register_optimizer(name: str) -> Callable[[OptimizerFactory], OptimizerFactory]:
    """Register an optimizer factory under ``name``; a duplicate name raises ``ValueError``."""

    def deco(fn: OptimizerFactory) -> OptimizerFactory:
        if name in OPTIMIZERS:
            raise ValueError(f"optimizer {name!r} is already registered")
        OPTIMIZERS[name] = fn
        return fn

    return deco


@register_optimizer("adam")
def _adam(params: Iterable[nn.Parameter], *, lr: float, weight_decay: float, momentum: float) -> torch.optim.Optimizer:
    """Adam with L2 ``weight_decay`` added to the gradient; ``momentum`` is unused (betas stay (0.9, 0.999))."""
    return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)


@register_optimizer("adamw")
def _adamw(params: Iterable[nn.Parameter], *, lr: float, weight_decay: float, momentum: float) -> torch.optim.Optimizer:
    """AdamW with decoupled ``weight_decay``; ``momentum`` is unused."""
    return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)


@register_optimizer("sgd")
def _sgd(params: Iterable[nn.Parameter], *, lr: float, weight_decay: float, momentum: float) -> torch.optim.Optimizer:
    """SGD with heavy-ball ``momentum`` (0 for plain SGD)."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


@register_optimizer("nesterov")
def _nesterov(
    params: Iterable[nn.Parameter], *, lr: float, weight_decay: float, momentum: float
) -> torch.optim.Optimizer:
    """SGD with Nesterov ``momentum`` (must be > 0)."""
    return torch.optim.SGD(params, lr=lr, momentum=momentum, nesterov=True, weight_decay=weight_decay)


@dataclass(frozen=True)
class EpochResult:
    """Metrics of one epoch. Losses are mean cross-entropy per sample (nats); accuracies are fractions in [0, 1].

    ``train_loss``/``train_accuracy`` average the epoch's batches as they were trained (train mode, weights
    changing); ``val_*`` are measured after the epoch in eval mode. ``samples_seen`` is cumulative over epochs.
    ``epoch_seconds`` is wall-clock time of the epoch's training and validation (not of ``on_epoch``).
    """

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    samples_seen: int
    epoch_seconds: float
    lr: float = float("nan")


@dataclass(frozen=True)
class TrainResult:
    """All epochs run. ``train_seconds`` is wall-clock time of the whole run (callbacks included);
    ``stopped_early`` is True when ``on_epoch`` asked to stop."""

    epochs: list[EpochResult] = field(default_factory=list)
    samples_seen: int = 0
    train_seconds: float = 0.0
    stopped_early: bool = False

    @property
    def best_val_accuracy(self) -> float:
        """Highest validation accuracy over the epochs (fraction); NaN when no epoch finished."""
        return max((e.val_accuracy for e in self.epochs), default=float("nan"))

    @property
    def final_val_accuracy(self) -> float:
        """Validation accuracy of the last epoch (fraction); NaN when no epoch finished."""
        return self.epochs[-1].val_accuracy if self.epochs else float("nan")


class TrainingError(RuntimeError):
    """A run that could not finish. ``partial`` holds the epochs completed before the failure."""

    def __init__(self, message: str, partial: TrainResult) -> None:
        super().__init__(message)
        self.partial = partial


class NonFiniteLossError(TrainingError):
    """The training loss became NaN or infinite; the message names the epoch and the first bad batch (1-based)."""


class TrialTimeoutError(TrainingError):
    """The run passed ``max_seconds`` of wall-clock time; checked after every batch."""


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global RNG and torch (CPU and every CUDA device) with ``seed``."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def train(
    model: nn.Module,
    splits: Splits,
    *,
    epochs: int,
    batch_size: int = 64,
    optimizer: str = "adam",
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    momentum: float = 0.9,
    device: str | torch.device = "cpu",
    amp: bool = False,
    seed: int = 0,
    max_seconds: float | None = None,
    on_epoch: Callable[[EpochResult], bool | None] | None = None,
    lr_schedule: str = "cosine",
    resume: Mapping[str, Any] | None = None,
    snapshot_at: Collection[int] = (),
    on_snapshot: Callable[[int, dict[str, Any]], None] | None = None,
) -> TrainResult:
    """Train ``model`` on ``splits.train`` with cross-entropy for ``epochs`` epochs, validating after each.

    Every epoch visits each training sample once in a seeded random order, in batches of ``batch_size`` (the
    last one may be smaller), so ``samples_seen`` is exactly ``epochs * len(splits.train)`` for a full run.
    ``optimizer`` names an entry of :data:`OPTIMIZERS` (``adam``, ``adamw``, ``sgd``, ``nesterov``).
    ``lr_schedule`` names an entry of :data:`LR_SCHEDULES`: ``cosine`` (default) sets epoch ``e`` (from 0) to
    ``lr * (1 + cos(pi * e / epochs)) / 2``, from ``lr`` down towards 0; ``constant`` keeps ``lr``.
    ``amp=True`` runs forward passes under ``torch.autocast``: bfloat16 on CPU, float16 with a ``GradScaler``
    on CUDA. ``on_epoch`` gets each :class:`EpochResult` after validation; returning True stops the run
    (``stopped_early=True``). ``max_seconds`` bounds the wall-clock time of the whole call.

    Raises ``ValueError`` for bad settings or an empty train/val set, :class:`NonFiniteLossError` when a batch
    loss is NaN or infinite (checked once per epoch, before validation), and :class:`TrialTimeoutError` past
    ``max_seconds``. Both carry the finished epochs in ``.partial``.

    Resuming (ASHA promotion): after each epoch in ``snapshot_at``, ``on_snapshot(epoch, state)`` gets the
    training state (optimizer, data-order and torch RNG, AMP scaler; plain tensors and numbers, for
    ``torch.save``); ``train(..., resume=state)`` with the model's weights of that epoch loaded goes on from the
    epoch after it, as if never stopped (same schedule, data order and RNG). The result then holds only the
    epochs it ran, and ``samples_seen`` counts only their samples: a promotion is billed its extra epochs.
    """
    dev = torch.device(device)
    _check_settings(splits, epochs, batch_size, optimizer, lr, lr_schedule, amp, dev)
    devices = [dev.index if dev.index is not None else torch.cuda.current_device()] if dev.type == "cuda" else []
    with torch.random.fork_rng(devices=devices, device_type="cuda"):
        torch.manual_seed(seed)
        run = _Run(model, splits, dev, batch_size, amp, max_seconds)
        opt = OPTIMIZERS[optimizer](run.model.parameters(), lr=lr, weight_decay=weight_decay, momentum=momentum)
        return run.fit(epochs=int(epochs), opt=opt, schedule=LR_SCHEDULES[lr_schedule], seed=seed,
                       on_epoch=on_epoch, resume=resume, snapshot_at=set(snapshot_at), on_snapshot=on_snapshot)


def _check_settings(
    splits: Splits, epochs: int, batch_size: int, optimizer: str, lr: float, schedule: str, amp: bool,
    dev: torch.device,
) -> None:
    def known(value: str, table: Iterable[str], what: str) -> None:
        if value not in table:
            raise ValueError(f"unknown {what} {value!r}.{did_you_mean(value, table, sentence=True)} Known: {', '.join(sorted(table))}.")

    known(optimizer, OPTIMIZERS, "optimizer")
    known(schedule, LR_SCHEDULES, "lr_schedule")
    if amp:
        known(dev.type, AMP_DTYPES, "device type for amp")
    if int(epochs) != epochs or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if int(batch_size) != batch_size or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    for part in ("train", "val"):
        if len(getattr(splits, part)) == 0:
            raise ValueError(f"dataset {splits.name!r}: the {part} set is empty; raise its fraction in load_data")


class _Run:
    """State of one training run: device tensors, scaler and clock."""

    def __init__(
        self, model: nn.Module, splits: Splits, dev: torch.device, batch_size: int, amp: bool,
        max_seconds: float | None,
    ) -> None:
        self.model = model.to(dev)
        self.dev, self.batch_size, self.max_seconds = dev, int(batch_size), max_seconds
        self.eval_batch = max(256, self.batch_size)
        self.x, self.y = (t.to(dev, non_blocking=True) for t in splits.train.tensors)
        self.val_x, self.val_y = (t.to(dev, non_blocking=True) for t in splits.val.tensors)
        self.amp_dtype = AMP_DTYPES[dev.type] if amp else None
        self.scaler = torch.amp.GradScaler(dev.type, enabled=amp and dev.type == "cuda")
        self.start = time.perf_counter()
        self.history: list[EpochResult] = []
        self.samples_seen = 0

    def partial(self, stopped_early: bool = False) -> TrainResult:
        return TrainResult(epochs=list(self.history), samples_seen=self.samples_seen,
                           train_seconds=time.perf_counter() - self.start, stopped_early=stopped_early)

    def fit(
        self, *, epochs: int, opt: torch.optim.Optimizer, schedule: Callable[[int, int], float], seed: int,
        on_epoch: Callable[[EpochResult], bool | None] | None, resume: Mapping[str, Any] | None = None,
        snapshot_at: Collection[int] = (), on_snapshot: Callable[[int, dict[str, Any]], None] | None = None,
    ) -> TrainResult:
        gen = torch.Generator().manual_seed(seed)
        base_lrs = [group["lr"] for group in opt.param_groups]
        first = 0
        if resume is not None:
            first = int(resume["epoch"])
            opt.load_state_dict(resume["optimizer"])
            for group, base in zip(opt.param_groups, base_lrs, strict=True):
                group["lr"] = base  # the schedule sets each epoch's lr from the base
            gen.set_state(resume["generator"])
            torch.set_rng_state(resume["torch_rng"])
            self.scaler.load_state_dict(resume["scaler"])
        for e in range(first, epochs):
            if e > first:
                self.check_clock(e, None)
            epoch_start = time.perf_counter()
            factor = schedule(e, epochs)
            for group, base in zip(opt.param_groups, base_lrs, strict=True):
                group["lr"] = base * factor
            train_loss, train_acc = self.epoch(e + 1, opt, gen)
            val_acc, val_loss = _evaluate_tensors(self.model, self.val_x, self.val_y, batch_size=self.eval_batch,
                                                  amp_dtype=self.amp_dtype)
            result = EpochResult(epoch=e + 1, train_loss=train_loss, train_accuracy=train_acc, val_loss=val_loss,
                                 val_accuracy=val_acc, samples_seen=self.samples_seen,
                                 epoch_seconds=time.perf_counter() - epoch_start, lr=base_lrs[0] * factor)
            self.history.append(result)
            log.debug("epoch %d: %s", e + 1, result)
            if on_snapshot is not None and e + 1 in snapshot_at:
                on_snapshot(e + 1, {"epoch": e + 1, "optimizer": opt.state_dict(), "generator": gen.get_state(),
                                    "torch_rng": torch.get_rng_state(), "scaler": self.scaler.state_dict()})
            if on_epoch is not None and on_epoch(result):
                log.info("stopped early after epoch %d by on_epoch", e + 1)
                return self.partial(stopped_early=True)
        return self.partial()

    def epoch(self, epoch: int, opt: torch.optim.Optimizer, gen: torch.Generator) -> tuple[float, float]:
        """One pass over the training set; ``(mean loss, accuracy)`` of its batches."""
        n, bs = len(self.y), self.batch_size
        steps = math.ceil(n / bs)
        order = torch.randperm(n, generator=gen).to(self.dev, non_blocking=True)
        losses = torch.zeros(steps, device=self.dev)
        hits = torch.zeros(steps, device=self.dev, dtype=torch.int64)
        self.model.train()
        for step in range(steps):
            idx = order[step * bs:(step + 1) * bs]
            xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            with torch.autocast(self.dev.type, dtype=self.amp_dtype, enabled=self.amp_dtype is not None):
                logits = self.model(xb)
            loss = F.cross_entropy(logits.float(), yb)
            opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(opt)
            self.scaler.update()
            losses[step] = loss.detach()
            hits[step] = (logits.detach().argmax(dim=1) == yb).sum()
            self.samples_seen += len(idx)
            self.check_clock(epoch, step + 1)
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            bad = int((~finite).nonzero()[0, 0]) + 1
            raise NonFiniteLossError(
                f"training loss is {float(losses[bad - 1])} at epoch {epoch}, batch {bad} of {steps}: lower lr "
                "(or use amp=False / gradient-safe layers); the model's weights are no longer usable",
                self.partial(),
            )
        sizes = torch.full((steps,), float(bs), device=self.dev)
        sizes[-1] = n - bs * (steps - 1)
        return float((losses * sizes).sum()) / n, int(hits.sum()) / n

    def check_clock(self, epoch: int, batch: int | None) -> None:
        if self.max_seconds is None:
            return
        elapsed = time.perf_counter() - self.start
        if elapsed > self.max_seconds:
            where = f"epoch {epoch}, batch {batch}" if batch is not None else f"the end of epoch {epoch}"
            raise TrialTimeoutError(f"training passed max_seconds={self.max_seconds:g} s ({elapsed:.3f} s elapsed) "
                                    f"at {where}", self.partial())


def evaluate(
    model: nn.Module, dataset: TensorDataset, *, batch_size: int = 256, device: str | torch.device = "cpu",
    amp: bool = False,
) -> tuple[float, float]:
    """``(accuracy, mean loss)`` of ``model`` on ``dataset``: accuracy a fraction in [0, 1], loss the mean
    cross-entropy per sample (nats). Runs in eval mode without gradients and restores the model's train/eval
    mode; the model is moved to ``device``. Raises ``ValueError`` for an empty dataset."""
    dev = torch.device(device)
    x, y = (t.to(dev) for t in dataset.tensors)
    was_training = model.training
    try:
        return _evaluate_tensors(model.to(dev), x, y, batch_size=batch_size,
                                 amp_dtype=AMP_DTYPES.get(dev.type) if amp else None)
    finally:
        model.train(was_training)


def _evaluate_tensors(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, batch_size: int, amp_dtype: torch.dtype | None
) -> tuple[float, float]:
    n = len(y)
    if n == 0:
        raise ValueError("cannot evaluate on an empty dataset")
    model.eval()
    loss_sum = torch.zeros((), device=x.device)
    hits = torch.zeros((), device=x.device, dtype=torch.int64)
    with torch.inference_mode(), torch.autocast(x.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
        for start in range(0, n, batch_size):
            xb, yb = x[start:start + batch_size], y[start:start + batch_size]
            logits = model(xb).float()
            loss_sum += F.cross_entropy(logits, yb, reduction="sum")
            hits += (logits.argmax(dim=1) == yb).sum()
    return int(hits) / n, float(loss_sum) / n


def train_step(
    model: nn.Module, splits: Splits, *, batch_size: int = 64, optimizer: str = "adam", lr: float = 1e-3,
    weight_decay: float = 0.0, momentum: float = 0.9, seed: int = 0,
) -> float:
    """One optimizer step of ``model`` on the first ``batch_size`` training samples, on the CPU; returns the
    batch's cross-entropy loss (nats per sample, possibly non-finite).

    The same settings checks and optimizer table as :func:`train`, so an error every trial would hit (a bad
    ``lr``, an optimizer that refuses the settings, a model whose forward fails on this data) is raised here.
    The model's weights change; use a throwaway model.
    """
    _check_settings(splits, 1, batch_size, optimizer, lr, "constant", False, torch.device("cpu"))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        x, y = (t[:batch_size] for t in splits.train.tensors)
        model.train()
        opt = OPTIMIZERS[optimizer](model.parameters(), lr=lr, weight_decay=weight_decay, momentum=momentum)
        opt.zero_grad(set_to_none=True)
        out = model(x)
        if not isinstance(out, torch.Tensor) or out.shape != (len(y), splits.num_classes):
            shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
            raise ValueError(f"the model's output is {shape}, expected logits of shape ({len(y)}, "
                             f"{splits.num_classes}) for a batch of {len(y)} samples and {splits.num_classes} classes")
        loss = F.cross_entropy(out.float(), y)
        loss.backward()
        opt.step()
    return float(loss.detach())
