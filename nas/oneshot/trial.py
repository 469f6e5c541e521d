"""The supernet's training as one trial: plain spec in, per-epoch metrics and checkpoints out (pure torch).

The Ray backend (:func:`nas.search.backends.ray.train_supernet_trial`) runs :func:`run_supernet` as one Tune
trial; a checkpoint directory holds ``supernet.pt``: the supernet's ``state_dict``, the optimizer's, and the
number of epochs done, so a restarted trial resumes where the last checkpoint left it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import yaml

from nas.oneshot.supernet import Supernet
from nas.oneshot.train import SupernetEpoch, train_supernet
from nas.space import Space, parse_space
from nas.training.trial import cached_splits, pick_device

CHECKPOINT_FILE = "supernet.pt"


@dataclass(frozen=True)
class SupernetSpec:
    """Everything a worker needs to train the supernet (plain values; crosses the process boundary as a dict)."""

    space_yaml: str
    space_source: str
    space_hash: str
    data: dict[str, Any]
    epochs: int
    batch_size: int
    lr: float
    optimizer: str = "adam"
    weight_decay: float = 0.0
    sandwich: bool = False
    seed: int = 0
    cpu_threads: int = 1
    device: str = "auto"
    checkpoint_every: int = 5

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SupernetSpec:
        return cls(**d)

    def space(self) -> Space:
        space = parse_space(yaml.safe_load(self.space_yaml), source=self.space_source)
        if space.hash != self.space_hash:
            raise ValueError(f"space hash mismatch: {space.hash} != {self.space_hash} ({self.space_source})")
        return space


def new_supernet(spec: SupernetSpec) -> Supernet:
    """The untrained supernet of ``spec`` (initialized under ``spec.seed``), shaped for its data."""
    splits = cached_splits(spec.data)
    return Supernet(spec.space(), splits.input_shape, splits.num_classes, seed=spec.seed)


def load_supernet(spec: SupernetSpec, checkpoint_dir: str | Path, device: str | torch.device = "cpu") -> Supernet:
    """The supernet saved in ``checkpoint_dir`` by :func:`run_supernet`, on ``device``, eval mode."""
    supernet = new_supernet(spec)
    saved = torch.load(Path(checkpoint_dir, CHECKPOINT_FILE), map_location="cpu", weights_only=True)
    supernet.load_state_dict(saved["state"])
    return supernet.to(device).eval()


def write_checkpoint(directory: str | Path, supernet: Supernet, optimizer: torch.optim.Optimizer, epoch: int,
                     metrics: Mapping[str, float]) -> None:
    """Save what :func:`load_supernet` and a resumed :func:`run_supernet` read."""
    state = {k: v.detach().cpu() for k, v in supernet.state_dict().items()}
    torch.save({"state": state, "optimizer": optimizer.state_dict(), "epoch": epoch, "metrics": dict(metrics)},
               Path(directory, CHECKPOINT_FILE))


def run_supernet(spec: SupernetSpec, report: Callable[[dict[str, float], bool, Supernet, torch.optim.Optimizer], None],
                 resume_from: str | Path | None = None) -> dict[str, float]:
    """Train the supernet of ``spec``; ``report(metrics, checkpoint_due, supernet, optimizer)`` after every epoch
    (``checkpoint_due`` every ``checkpoint_every`` epochs and at the last). ``resume_from``: a checkpoint directory
    to continue from. Returns the final metrics (``train_flops``, ``trial_seconds``, ``on_gpu``, ...)."""
    torch.set_num_threads(max(1, int(spec.cpu_threads)))
    splits = cached_splits(spec.data)
    device = pick_device(spec.device)
    supernet = new_supernet(spec)
    start_epoch, opt_state, before = 0, None, 0.0
    if resume_from is not None:
        saved = torch.load(Path(resume_from, CHECKPOINT_FILE), map_location="cpu", weights_only=True)
        supernet.load_state_dict(saved["state"])
        start_epoch, opt_state = int(saved["epoch"]), saved["optimizer"]
        before = float(saved["metrics"].get("trial_seconds", 0.0))
    t0 = time.perf_counter()
    last: dict[str, float] = {}

    def on_epoch(ep: SupernetEpoch, opt: torch.optim.Optimizer) -> None:
        nonlocal last
        last = {**ep.metrics(), "trial_seconds": before + time.perf_counter() - t0,
                "on_gpu": float(device.type == "cuda")}
        due = ep.epoch % max(1, spec.checkpoint_every) == 0 or ep.epoch == spec.epochs
        report(last, due, supernet, opt)

    train_supernet(supernet, splits, epochs=spec.epochs, batch_size=spec.batch_size, optimizer=spec.optimizer,
                   lr=spec.lr, weight_decay=spec.weight_decay, sandwich=spec.sandwich, seed=spec.seed,
                   device=device, start_epoch=start_epoch, optimizer_state=opt_state, on_epoch=on_epoch)
    if not last:  # nothing to train (epochs 0, or resumed at the end): report the supernet as it is
        last = {"epoch": float(start_epoch), "train_flops": 0.0, "samples_seen": 0.0,
                "trial_seconds": before + time.perf_counter() - t0, "on_gpu": float(device.type == "cuda")}
        report(last, True, supernet, torch.optim.SGD(supernet.parameters(), lr=spec.lr))
    return last
