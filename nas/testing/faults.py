"""Fault-injection builder: a small MLP that fails in a chosen way, to prove a search survives failing trials.

Use it from a space file as ``builder: nas.testing.faults:faulty`` (an explicit ``module:function`` reference, so
Ray workers import it like any user builder) with a ``mode`` dimension. Faults fire only while training (the
model in train mode with gradients on) and never in the driver's check step (``NAS_PREFLIGHT`` set, see
:mod:`nas.search.preflight`), so the driver can still build, profile and check the candidate, except
``unbuildable``, which refuses to build for small inputs as a real architecture would.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn


def _nan(x: torch.Tensor) -> torch.Tensor:
    return x * float("nan")


def _raise(x: torch.Tensor) -> torch.Tensor:
    raise RuntimeError("injected failure: exception in forward")


def _oom(x: torch.Tensor) -> torch.Tensor:
    raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB (injected)")


def _slow(x: torch.Tensor) -> torch.Tensor:
    time.sleep(2.0)
    return x


SLEEP_PER_BATCH_S = 0.02


def _sleep(x: torch.Tensor) -> torch.Tensor:
    time.sleep(SLEEP_PER_BATCH_S)  # a trial of known duration: batches x this, plus the (tiny) real work
    return x


def _kill(x: torch.Tensor) -> torch.Tensor:
    os.kill(os.getpid(), signal.SIGKILL)
    return x  # unreachable


#: mode -> what happens to the logits while training; "ok" and "unbuildable" do nothing here.
FAULTS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "nan": _nan, "raise": _raise, "oom": _oom, "slow": _slow, "kill": _kill, "sleep": _sleep,
}
MODES = ("ok", "unbuildable", *FAULTS)


class FaultyMLP(nn.Module):
    def __init__(self, in_features: int, width: int, num_classes: int, mode: str) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, num_classes))
        self.mode = mode

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(x)
        fault = FAULTS.get(self.mode)
        if fault is not None and self.training and torch.is_grad_enabled() and not os.environ.get("NAS_PREFLIGHT"):
            out = fault(out)
        return out


def faulty(*, input_shape: Sequence[int], num_classes: int, width: int = 16, mode: str = "ok",
           min_input_size: int = 16) -> nn.Module:
    """An MLP of ``width`` hidden units that fails in ``mode`` (one of :data:`MODES`) while training.

    ``unbuildable`` raises ``ValueError`` when the input's last dimension is below ``min_input_size``.
    """
    if mode not in MODES:
        raise ValueError(f"unknown fault mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "unbuildable" and input_shape[-1] < min_input_size:
        raise ValueError(f"cannot build for input shape {tuple(input_shape)}: needs a last dimension of at least "
                         f"{min_input_size}")
    n = 1
    for d in input_shape:
        n *= int(d)
    return FaultyMLP(n, width, num_classes, mode)
