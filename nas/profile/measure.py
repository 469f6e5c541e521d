"""Measured latency and peak memory of a model.

Latency: wall clock of a forward pass, after warm-up, median of the repeats, eval mode under
``torch.inference_mode()``; CUDA is synchronized around each timed pass. :func:`measure_latency` also gives the
spread of the repeats (interquartile range) and the torch CPU threads the passes ran on, because one figure from
a loaded machine says nothing about how far to trust it (``benchmarks/latency_stability.py`` measures that).

Peak memory (MiB): the most memory a pass allocates beyond what was allocated before it started (weights
and the input are not counted; activations, workspaces, outputs, gradients are). On CUDA it is the
``torch.cuda.max_memory_allocated`` delta; on CPU it is the maximum of the running sum, in time order, of
the allocation and free events that the PyTorch profiler (``torch.autograd.profiler``, the engine under
``torch.profiler``) records with ``profile_memory=True``. Other devices: ``None``.
"""

from __future__ import annotations

import copy
import io
import logging
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from nas import _compat
from nas.profile._modes import eval_mode

log = logging.getLogger(__name__)

MIB = 1024**2


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Latency:
    """One latency measurement: ``median_ms`` and ``iqr_ms`` (75th minus 25th percentile, inclusive quartiles)
    of ``repeats`` timed passes of one batch, after ``warmup`` untimed ones, on ``threads`` torch CPU threads;
    ``times_ms`` are the timed passes in order."""

    median_ms: float
    iqr_ms: float
    repeats: int
    warmup: int
    threads: int
    times_ms: tuple[float, ...] = field(default=(), repr=False)


@contextmanager
def torch_threads(n: int | None) -> Iterator[int]:
    """Run the block with ``n`` torch CPU threads (None: as they are); yields the number in use, restores after."""
    before = torch.get_num_threads()
    if n is not None:
        if n < 1:
            raise ValueError(f"torch_threads: need n >= 1, got {n}")
        torch.set_num_threads(n)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(before)


def model_size_mb(model: nn.Module) -> float:
    """MiB (2^20 bytes) of ``torch.save(model.state_dict())``: what the weights take on disk."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.tell() / MIB


def measure_latency(
    model: nn.Module, x: Tensor, *, warmup: int = 3, repeats: int = 10, threads: int | None = None
) -> Latency:
    """Time ``model(x)`` (one batch): ``warmup`` untimed passes, then ``repeats`` timed ones, with ``threads``
    torch CPU threads (None keeps the caller's setting). See :class:`Latency`."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"measure_latency: need repeats >= 1 and warmup >= 0, got {repeats=}, {warmup=}")
    times: list[float] = []
    with torch_threads(threads) as used, eval_mode(model), torch.inference_mode():
        for _ in range(warmup):
            model(x)
        _synchronize(x.device)
        for _ in range(repeats):
            start = time.perf_counter()
            model(x)
            _synchronize(x.device)
            times.append((time.perf_counter() - start) * 1e3)
    q1, _, q3 = statistics.quantiles(times, n=4, method="inclusive") if repeats > 1 else (times[0],) * 3
    return Latency(median_ms=statistics.median(times), iqr_ms=q3 - q1, repeats=repeats, warmup=warmup, threads=used,
                   times_ms=tuple(times))


def latency_ms(model: nn.Module, x: Tensor, *, warmup: int = 3, repeats: int = 10, threads: int | None = None) -> float:
    """Median wall-clock milliseconds of ``model(x)`` (one batch) over ``repeats`` timed passes
    (:func:`measure_latency`'s median)."""
    return measure_latency(model, x, warmup=warmup, repeats=repeats, threads=threads).median_ms


def peak_memory_mb(fn: Callable[[], object], device: torch.device) -> float | None:
    """Peak MiB allocated by ``fn()`` on ``device`` beyond what was allocated when it started."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        fn()
        torch.cuda.synchronize(device)
        return (torch.cuda.max_memory_allocated(device) - base) / MIB
    if device.type == "cpu":
        return _cpu_peak_mb(fn)
    log.debug("peak_memory_mb: no memory measurement for device %s", device)
    return None


def _cpu_peak_mb(fn: Callable[[], object]) -> float | None:
    # the autograd profiler is what torch.profiler wraps, without its one-off ~1 s import of torch._dynamo
    with torch.autograd.profiler.profile(profile_memory=True) as prof:
        fn()
    try:
        events = [e for e in prof.kineto_results.events() if e.name() == "[memory]"]
        cpu = _compat.AutogradDeviceType.CPU  # a private torch enum
        deltas = [e.nbytes() for e in sorted(events, key=lambda e: e.start_ns()) if e.device_type() == cpu]
    except AttributeError as err:  # the profiler's result API changed
        log.warning("peak_memory_mb: cannot read the profiler memory events (%s)", err)
        return None
    current = peak = 0
    for delta in deltas:
        current += delta
        peak = max(peak, current)
    return peak / MIB


def forward_peak_mem_mb(model: nn.Module, x: Tensor) -> float | None:
    """Peak MiB of one inference forward pass of the batch ``x`` (eval mode, ``torch.inference_mode``)."""
    with eval_mode(model), torch.inference_mode():
        return peak_memory_mb(lambda: model(x), x.device)


def train_step_peak_mem_mb(model: nn.Module, x: Tensor) -> float | None:
    """Peak MiB of one training step on the batch ``x``: forward, loss, backward, SGD step.

    Runs on a deep copy in train mode, so ``model`` keeps its weights, buffers and mode. The loss is
    cross-entropy against random labels for ``(B, classes)`` outputs, the mean square otherwise.
    """
    clone = copy.deepcopy(model).train()
    optimizer = torch.optim.SGD(clone.parameters(), lr=0.01)
    target_seed = torch.Generator(device="cpu").manual_seed(0)

    def step() -> None:
        out = clone(x)
        if out.dim() == 2:
            target = torch.randint(out.shape[1], (out.shape[0],), generator=target_seed).to(out.device)
            loss = F.cross_entropy(out, target)
        else:
            loss = out.float().pow(2).mean()
        loss.backward()
        optimizer.step()

    return peak_memory_mb(step, x.device)
