"""Forecast a search's compute before anything trains (``nas search EXPERIMENT --dry-run``).

What is measured and what is assumed:

- **FLOPs (counted).** ``samples`` architectures are drawn at random from the space (``Space.sample_random``),
  built and counted with :func:`nas.profile.count_flops`. A trial trains ``3 × forward FLOPs × epochs ×
  train_samples`` (:func:`nas.profile.training_flops`, the ledger's convention). The search's total is given as a
  range, ``trials × p10 … trials × p90`` of the per-trial cost with ``trials × median`` in the middle: the bounds
  of a search that keeps to the cheap or to the expensive tenth of the space (a multi-objective optimizer drifts
  towards one or the other); ``trials × mean`` is what random sampling would spend.
- **Time (measured).** Every sampled architecture (or ``speed_probes`` of them, spread over the FLOP quantiles)
  trains for a short while (``probe_seconds``) on this machine, on random data of the input shape, with the
  trial's threads, device and batch size. Each timed architecture keeps its own seconds per training sample:
  time is not proportional to FLOPs (depthwise convolutions and squeeze-excitation cost far more per FLOP on a
  CPU, and small networks are dominated by a fixed per-step cost), so one FLOP/s figure would be wrong by a
  factor of several. Architectures not timed use the line ``a + b × forward FLOPs`` fitted through the timed ones.
  Validation passes are counted at a third of a training sample each. ``seconds_per_tflop`` replaces the measurement (a figure from a
  past search). The machinery is left out unless ``overhead_ratio`` (a past search's
  :attr:`nas.cost.ledger.SearchBill.overhead_ratio`) is given.
- **Energy, CO2, money (estimated)** from device-seconds with :class:`nas.cost.energy.EnergyConfig`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from nas.builders import build
from nas.cost.energy import JOULES_PER_KWH, EnergyConfig
from nas.cost.ledger import ResourcesLike
from nas.profile import count_flops
from nas.space import Space

log = logging.getLogger(__name__)

CHECKED_METRICS = ("mflops", "params")
"""Constraint metrics the forecast can check on its samples; others (latency, memory) are not measured here."""


@dataclass(frozen=True)
class SpeedProbe:
    """One measured training run: ``seconds_per_sample`` of training at ``forward_flops`` per sample."""

    forward_flops: float
    seconds_per_sample: float
    steps: int
    batch_size: int

    @property
    def flops_per_second(self) -> float:
        """Achieved training FLOP/s (3 × forward per sample)."""
        return 3 * self.forward_flops / self.seconds_per_sample


@dataclass(frozen=True)
class Range:
    """A total over the search: ``trials ×`` the p10, median and p90 of the per-trial cost, and ``trials × mean``."""

    low: float
    median: float
    high: float
    mean: float

    def scaled(self, k: float) -> Range:
        return Range(self.low * k, self.median * k, self.high * k, self.mean * k)

    def text(self, unit: str) -> str:
        return f"median {self.median:.3g} {unit}, range {self.low:.3g} to {self.high:.3g} (random sampling: {self.mean:.3g})"


@dataclass(frozen=True)
class Totals:
    """The search's totals under one training plan. ``trial_seconds``: trial compute, summed over trials;
    ``device_hours`` and ``wall_hours`` include the machinery through ``overhead_ratio``; ``energy_kwh`` is
    facility energy; ``cost`` in the config's currency."""

    fraction_of_full: float
    train_flops: Range
    trial_seconds: Range
    device_hours: Range
    wall_hours: Range
    energy_kwh: Range
    co2_g: Range
    cost: Range


@dataclass(frozen=True)
class Forecast:
    """What a search will cost (see the module docstring). ``full`` is every trial trained for all epochs."""

    trials: int
    epochs: int
    train_samples: int
    val_samples: int
    workers: int
    cpu_per_trial: float
    gpu_per_trial: float
    sampled: int
    unbuildable: int
    infeasible: int
    forward_mflops: dict[str, float]
    speed_method: str
    speed: list[SpeedProbe]
    seconds_per_sample: tuple[float, float]
    overhead_ratio: float
    full: Totals
    energy_config: dict[str, Any]
    unchecked_constraints: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        """Human-readable lines for the CLI (no trailing newlines)."""
        cur = self.energy_config["currency"].upper()
        q = self.forward_mflops
        out = [f"Forecast: {self.trials} trials x {self.epochs} epochs x {self.train_samples:,} training samples "
               f"(+ {self.val_samples:,} validation), {self.workers} worker slot(s) of {self.cpu_per_trial:g} CPU "
               f"core(s) and {self.gpu_per_trial:g} GPU",
               f"  architectures: {self.sampled} sampled at random, {self.unbuildable} unbuildable, "
               f"{self.infeasible} outside the constraints; forward MFLOPs per sample p10 {q['p10']:.3g}, "
               f"median {q['p50']:.3g}, p90 {q['p90']:.3g}"]
        if self.unchecked_constraints:
            out.append(f"  not checked here (measured only when profiling): {', '.join(self.unchecked_constraints)}")
        out.append(f"  training speed: {self.speed_method}")
        plans = [("full training", self.full)]
        oh = (f"machinery at overhead ratio {self.overhead_ratio:g} included" if self.overhead_ratio
              else "machinery not included")
        for name, t in plans:
            out += [f"  {name}:",
                    f"    compute: {t.train_flops.text('FLOPs')}",
                    f"    time: {t.device_hours.text('device-hours')}; wall {duration(t.wall_hours.median * 3600)} "
                    f"(range {duration(t.wall_hours.low * 3600)} to {duration(t.wall_hours.high * 3600)}) on "
                    f"{self.workers} slot(s), {oh}",
                    f"    energy: {t.energy_kwh.text('kWh')}",
                    f"    CO2: {t.co2_g.text('g')} at {self.energy_config['grid_g_co2_per_kwh']:g} g/kWh",
                    f"    cost: {t.cost.text(cur)}"]
        out.append(f"  energy estimated from {self.energy_config['cpu_watts_per_core']:g} W per CPU core, "
                   f"{self.energy_config['gpu_watts']:g} W per GPU, PUE {self.energy_config['pue']:g}; the range is "
                   "trials x p10 ... p90 of the sampled architectures")
        return out

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def duration(seconds: float) -> str:
    """``"42 s"``, ``"3.5 min"``, ``"2.1 h"`` or ``"4.2 days"``."""
    for limit, unit, div in ((120, "s", 1), (7200, "min", 60), (172800, "h", 3600)):
        if seconds < limit:
            return f"{seconds / div:.3g} {unit}"
    return f"{seconds / 86400:.3g} days"


# -- sampling ------------------------------------------------------------------------------------------------------


@dataclass
class _Sample:
    params: dict[str, Any]
    flops: float
    n_params: int


def _feasible(s: _Sample, constraints: Sequence[Any]) -> bool:
    values = {"mflops": s.flops / 1e6, "params": float(s.n_params)}
    for c in constraints:
        if c.metric not in values:
            continue
        v = values[c.metric]
        if (c.max is not None and v > c.max) or (c.min is not None and v < c.min):
            return False
    return True


def _sample(space: Space, input_shape: Sequence[int], num_classes: int, n: int, seed: int) -> tuple[list[_Sample], int]:
    out, failed = [], 0
    for i in range(n):
        params = space.sample_random(seed + i)
        try:
            model = build(space, params, input_shape=input_shape, num_classes=num_classes, seed=seed + i)
            flops, _, _ = count_flops(model, input_shape)
        except (ValueError, RuntimeError) as e:  # SpaceError is a ValueError; shapes the builder cannot take
            log.debug("forecast: sample %d unbuildable: %s", i, e)
            failed += 1
            continue
        out.append(_Sample(params, flops, sum(p.numel() for p in model.parameters())))
    return out, failed


# -- measuring speed -----------------------------------------------------------------------------------------------


def measure_step(model: nn.Module, input_shape: Sequence[int], num_classes: int, *, forward_flops: float,
                 batch_size: int = 64, device: str | torch.device = "cpu", min_seconds: float = 0.25,
                 min_steps: int = 5, max_steps: int = 200, warmup: int = 3) -> SpeedProbe:
    """Time training steps (forward, cross-entropy, backward, Adam) of ``model`` on random data: at least
    ``min_steps`` steps and ``min_seconds`` (at most ``max_steps``), after ``warmup`` untimed steps."""
    dev = torch.device(device)
    model = model.to(dev).train()
    x = torch.randn(batch_size, *input_shape, device=dev)
    y = torch.randint(0, num_classes, (batch_size,), device=dev)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        loss_fn(model(x), y).backward()
        opt.step()

    for _ in range(warmup):
        step()
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    sync()
    steps, t0 = 0, time.perf_counter()
    while steps < max_steps and (steps < min_steps or time.perf_counter() - t0 < min_seconds):
        step()
        steps += 1
        if dev.type == "cuda" and steps % 10 == 0:
            sync()
    sync()
    seconds = time.perf_counter() - t0
    return SpeedProbe(forward_flops=forward_flops, seconds_per_sample=seconds / (steps * batch_size), steps=steps,
                      batch_size=batch_size)


def fit_speed(probes: Sequence[SpeedProbe]) -> tuple[float, float]:
    """``(a, b)`` of seconds per training sample ``= a + b × forward FLOPs`` through the probes (least squares).

    Falls back to a constant (``b = 0``) when the slope comes out negative (noise between similar models), and to
    a line through the origin when the intercept does."""
    f = np.array([p.forward_flops for p in probes], dtype=float)
    s = np.array([p.seconds_per_sample for p in probes], dtype=float)
    if len(probes) == 1 or np.ptp(f) == 0:
        return float(s.mean()), 0.0
    b, a = np.polyfit(f, s, 1)
    if b < 0:
        return float(s.mean()), 0.0
    if a < 0:
        return 0.0, float((f @ s) / (f @ f))
    return float(a), float(b)


def _probe_speed(samples: list[_Sample], space: Space, input_shape: Sequence[int], num_classes: int, *,
                 resources: ResourcesLike, batch_size: int, probes: int | None,
                 min_seconds: float) -> tuple[dict[int, SpeedProbe], str]:
    """Time the training step of every sample (``probes=None``) or of ``probes`` samples spread over the FLOP
    quantiles; returns the probes by sample index and a sentence saying how they were measured."""
    flops = np.array([s.flops for s in samples])
    if probes is None or probes >= len(samples):
        picked = list(range(len(samples)))
    else:
        targets = np.quantile(flops, np.linspace(0.1, 0.9, probes)) if probes > 1 else [float(np.median(flops))]
        picked = sorted({int(np.argmin(np.abs(flops - t))) for t in targets})
    use_gpu = resources.gpu > 0 and torch.cuda.is_available()
    device = "cuda" if use_gpu else "cpu"
    threads = max(1, int(resources.cpu))
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        out = {}
        for i in picked:
            model = build(space, samples[i].params, input_shape=input_shape, num_classes=num_classes, seed=i)
            out[i] = measure_step(model, input_shape, num_classes, forward_flops=samples[i].flops,
                                  batch_size=batch_size, device=device, min_seconds=min_seconds)
    finally:
        torch.set_num_threads(before)
    where = "cuda" if use_gpu else f"cpu, {threads} thread(s)"
    fps = np.array([p.flops_per_second for p in out.values()])
    sps = np.array([p.seconds_per_sample for p in out.values()])
    which = "every sampled architecture" if len(out) == len(samples) else f"{len(out)} of the sampled architectures"
    return out, (f"training steps of {which} timed on this machine ({where}, batch {batch_size}, random data): "
                 f"{sps.min() * 1e6:.3g} to {sps.max() * 1e6:.3g} µs per sample, {fps.min():.3g} to {fps.max():.3g} "
                 "training FLOP/s")


# -- the forecast --------------------------------------------------------------------------------------------------


def _range(per_trial: np.ndarray, trials: int) -> Range:
    p10, p50, p90 = np.quantile(per_trial, [0.1, 0.5, 0.9])
    return Range(trials * float(p10), trials * float(p50), trials * float(p90), trials * float(per_trial.mean()))


def _totals(flops: np.ndarray, seconds: np.ndarray, fraction: float, *, trials: int, workers: int,
            resources: ResourcesLike, cfg: EnergyConfig, overhead_ratio: float) -> Totals:
    trial_s = _range(seconds, trials).scaled(fraction)
    held_s = trial_s.scaled(1.0 + overhead_ratio)
    cpu, gpu = float(resources.cpu), float(resources.gpu)
    joules_per_s = sum(cfg.estimate_joules(cpu, gpu)) * cfg.pue  # energy of one slot-second
    kwh = held_s.scaled(joules_per_s / JOULES_PER_KWH)
    return Totals(
        fraction_of_full=fraction, train_flops=_range(flops, trials).scaled(fraction), trial_seconds=trial_s,
        device_hours=held_s.scaled((cpu + gpu) / 3600), wall_hours=held_s.scaled(1 / (3600 * workers)),
        energy_kwh=kwh, co2_g=kwh.scaled(cfg.grid_g_co2_per_kwh), cost=held_s.scaled(cfg.cost(cpu, gpu) / 3600),
    )


def forecast(
    space: Space,
    input_shape: Sequence[int],
    num_classes: int,
    *,
    trials: int,
    epochs: int,
    train_samples: int,
    resources: ResourcesLike,
    energy_config: EnergyConfig | None = None,
    val_samples: int = 0,
    samples: int = 32,
    seed: int = 0,
    constraints: Sequence[Any] = (),
    workers: int = 1,
    seconds_per_tflop: float | None = None,
    overhead_ratio: float = 0.0,
    batch_size: int = 64,
    speed_probes: int | None = None,
    probe_seconds: float = 0.15,
) -> Forecast:
    """Estimate a search's compute, time, energy, CO2 and cost before anything trains (module docstring).

    ``input_shape`` (per sample) and ``num_classes`` come from the data; ``train_samples`` / ``val_samples`` are
    the training- and validation-set sizes; ``constraints`` are objects with ``metric``, ``min`` and ``max``
    (``Experiment.constraints``; only ``mflops`` and ``params`` are checked). ``seconds_per_tflop`` (seconds of
    trial compute per 10^12 training FLOPs) replaces the speed measurement; ``speed_probes`` limits how many
    architectures are timed (``None``: all, each for at least ``probe_seconds``). Raises ``ValueError`` when no
    sampled architecture can be built and meets the constraints.
    """
    for name, value in (("trials", trials), ("epochs", epochs), ("train_samples", train_samples),
                        ("samples", samples), ("workers", workers)):
        if int(value) != value or value < 1:
            raise ValueError(f"forecast: {name} must be an integer >= 1, got {value!r}")
    if not overhead_ratio >= 0:
        raise ValueError(f"forecast: overhead_ratio must be >= 0, got {overhead_ratio!r}")
    cfg = energy_config or EnergyConfig()
    shape = tuple(int(s) for s in input_shape)
    drawn, unbuildable = _sample(space, shape, num_classes, samples, seed)
    kept = [s for s in drawn if _feasible(s, constraints)]
    if not kept:
        raise ValueError(f"forecast: none of {samples} random architectures of {space.source} "
                         f"{'could be built' if not drawn else 'meets the constraints'}; draw more (samples=) "
                         "or relax the constraints")
    fwd = np.array([s.flops for s in kept])
    per_trial_flops = 3.0 * fwd * epochs * train_samples
    timed: dict[int, SpeedProbe] = {}
    if seconds_per_tflop is not None:
        if not seconds_per_tflop > 0:
            raise ValueError(f"forecast: seconds_per_tflop must be > 0, got {seconds_per_tflop!r}")
        a, b = 0.0, 3.0 * seconds_per_tflop / 1e12
        method = f"given: {seconds_per_tflop:g} s per TFLOP of training"
    else:
        timed, method = _probe_speed(kept, space, shape, num_classes, resources=resources, batch_size=batch_size,
                                     probes=speed_probes, min_seconds=probe_seconds)
        a, b = fit_speed(list(timed.values()))
    per_sample_s = a + b * fwd  # the fitted line for architectures not timed, their own measurement otherwise
    for i, p in timed.items():
        per_sample_s[i] = p.seconds_per_sample
    per_trial_s = epochs * (train_samples + val_samples / 3.0) * per_sample_s
    kw: dict[str, Any] = {"trials": trials, "workers": workers, "resources": resources, "cfg": cfg,
                          "overhead_ratio": overhead_ratio}
    full = _totals(per_trial_flops, per_trial_s, 1.0, **kw)
    q = np.quantile(fwd / 1e6, [0.1, 0.5, 0.9])
    unchecked = sorted({c.metric for c in constraints if c.metric not in CHECKED_METRICS})
    result = Forecast(
        trials=trials, epochs=epochs, train_samples=train_samples, val_samples=val_samples, workers=workers,
        cpu_per_trial=float(resources.cpu), gpu_per_trial=float(resources.gpu), sampled=samples,
        unbuildable=unbuildable, infeasible=len(drawn) - len(kept),
        forward_mflops={"p10": float(q[0]), "p50": float(q[1]), "p90": float(q[2]), "mean": float(fwd.mean() / 1e6),
                        "min": float(fwd.min() / 1e6), "max": float(fwd.max() / 1e6)},
        speed_method=method, speed=list(timed.values()), seconds_per_sample=(a, b), overhead_ratio=overhead_ratio, full=full,
        energy_config=cfg.to_dict(), unchecked_constraints=unchecked,
    )
    if not math.isfinite(full.train_flops.high):
        raise ValueError("forecast: the FLOP count overflowed; check input_shape and the space")
    return result


__all__ = ["Forecast", "Range", "SpeedProbe", "Totals", "fit_speed", "forecast", "measure_step"]
