"""One trial, pure torch: rebuild the architecture, train it, evaluate every epoch, hand back weights.

The runner calls :func:`run_trial` inside a Ray worker; nothing here imports Ray or MLflow, so a trial can be
replayed in-process (tests, benchmarks, ``nas export``). A :class:`TrialSpec` is plain data that crosses the
process boundary as a dict.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from torch import nn

from nas.builders import build
from nas.data import Splits, load_data
from nas.profile import training_flops
from nas.profile.measure import measure_latency, model_size_mb
from nas.space import Space, parse_space
from nas.training.train import TrainResult, train

log = logging.getLogger(__name__)

#: TrialSpec.extra keys. SNAPSHOT_AT: save a resumable training state after each of these epochs (the rung a
#: pareto-promote promotion resumes at). RESUME_FROM / RESUME_EPOCH: a promotion, resuming from the
#: SNAPSHOT_FILE of this checkpoint folder, saved after that many epochs.
SNAPSHOT_AT, RESUME_FROM, RESUME_EPOCH = "snapshot_at", "resume_from", "resume_epoch"
#: the file, in a rung checkpoint folder, holding the model's weights and the training state
SNAPSHOT_FILE = "snapshot.pt"

#: A step after training (compression in the loop: :func:`nas.compress.in_loop.compress_trained`), given the
#: trained model, the architecture's resolved values (its ``compression:`` plan among them), the splits, the spec
#: and the final metrics. Returns the model to keep (saved whole) and the metrics that replace the final ones, or
#: None to keep the trained model as it is. Training sits below compression, so the caller passes the step in.
PostTrain = Callable[[nn.Module, Mapping[str, Any], Splits, "TrialSpec", dict[str, float]],
                     "tuple[nn.Module, dict[str, float]] | None"]


@dataclass(frozen=True)
class TrialSpec:
    """Everything a worker needs to run one trial. ``params`` is the flat architecture dict of the space;
    ``training`` the resolved training settings (sampled ``lr``/``weight_decay`` included)."""

    number: int
    params: dict[str, Any]
    space_yaml: str
    space_source: str
    space_hash: str
    data: dict[str, Any]
    training: dict[str, Any]
    seed: int
    mflops: float
    cpu_threads: int = 1
    device: str = "auto"
    extra: dict[str, Any] = field(default_factory=dict)
    latency: dict[str, int] = field(default_factory=lambda: {"batch_size": 1, "warmup": 2, "repeats": 5})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrialSpec:
        return cls(**d)


_SPLITS_CACHE: dict[tuple, Splits] = {}
_SPACE_CACHE: dict[str, Space] = {}


def cached_splits(data: dict[str, Any]) -> Splits:
    """Load a dataset once per process (reused Ray actors keep it across trials)."""
    key = (data["name"], data.get("seed", 0), data.get("val_fraction"), data.get("test_fraction"),
           data.get("data_dir"), repr(sorted((data.get("options") or {}).items())))
    if key not in _SPLITS_CACHE:
        _SPLITS_CACHE[key] = load_data(
            data["name"], seed=data.get("seed", 0), data_dir=data.get("data_dir"),
            val_fraction=data.get("val_fraction", 0.2), test_fraction=data.get("test_fraction", 0.2),
            **(data.get("options") or {}),
        )
    return _SPLITS_CACHE[key]


def use_import_paths(folders: Iterable[str]) -> None:
    """Put ``folders`` on ``sys.path`` (after what is there: PYTHONPATH wins), once each, so that a
    ``module:function`` builder or dataset beside the experiment or space file imports in this process."""
    for folder in folders:
        if folder and folder not in sys.path:
            sys.path.append(folder)


def space_from_spec(spec: TrialSpec) -> Space:
    """The trial's space, parsed from the YAML text it carries (workers need no shared filesystem)."""
    if spec.space_hash not in _SPACE_CACHE:
        space = parse_space(yaml.safe_load(spec.space_yaml), source=spec.space_source)
        if space.hash != spec.space_hash:
            raise ValueError(f"space hash mismatch: {space.hash} != {spec.space_hash} ({spec.space_source})")
        _SPACE_CACHE[spec.space_hash] = space
    return _SPACE_CACHE[spec.space_hash]


def pick_device(preference: str) -> torch.device:
    """``auto`` means CUDA when this process was given a GPU, else CPU."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(preference)


def run_trial(
    spec: TrialSpec, on_epoch: Callable[[dict[str, float]], bool | None] | None = None,
    on_snapshot: Callable[[int, dict[str, Any]], None] | None = None, post_train: PostTrain | None = None,
) -> tuple[TrainResult, dict[str, torch.Tensor] | torch.nn.Module, dict[str, float]]:
    """Build, train and evaluate one architecture; then run ``post_train`` (compression, when its space has a
    ``compression:`` block: a space with one and no ``post_train`` is refused, never trained uncompressed).

    ``on_epoch`` receives each epoch's metrics (``val_accuracy`` etc., plus ``train_flops`` so far) and may return
    True to stop early. Returns the training result, the final weights (CPU tensors; the whole module when it was
    compressed, since its structure no longer follows from the params) and the final metrics. After compression
    the objectives (``val_accuracy``, ``mflops``, ``params``, ``size_mb``, ``latency_ms``) are the compressed
    model's, re-measured; ``uncompressed_val_accuracy`` and ``compress_flops`` keep the rest of the story.

    ``on_snapshot(epoch, state)`` is called after each epoch of ``extra[SNAPSHOT_AT]`` with everything a
    promotion needs (``{"model": weights, "train": training state}``: save it as :data:`SNAPSHOT_FILE`). With
    ``extra[RESUME_FROM]``, the trial loads that snapshot and trains on from its epoch: its ``train_flops`` and
    ``samples_seen`` count only the epochs it ran. Latency (when not profiled before) is measured with
    ``spec.latency``'s batch size, warm-up and repeats (the experiment's ``profile`` section).
    """
    torch.set_num_threads(max(1, int(spec.cpu_threads)))
    use_import_paths([*spec.extra.get("import_paths", ()), str(Path(spec.space_source).parent)])
    splits = cached_splits(spec.data)
    space = space_from_spec(spec)
    arch = space.resolve(spec.params)
    if arch.get("compression") and post_train is None:
        raise ValueError(f"{spec.space_source}: this space compresses after training (its `compression:` block), "
                         "and run_trial was given no post_train step: pass nas.compress.in_loop.compress_trained")
    model = build(space, spec.params, input_shape=splits.input_shape, num_classes=splits.num_classes, seed=spec.seed)
    resume = None
    if spec.extra.get(RESUME_FROM):
        snap = torch.load(Path(spec.extra[RESUME_FROM], SNAPSHOT_FILE), map_location="cpu", weights_only=True)
        model.load_state_dict(snap["model"])
        resume = snap["train"]

    def _snapshot(epoch: int, state: dict[str, Any]) -> None:
        if on_snapshot is not None:
            on_snapshot(epoch, {"model": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "train": state})

    device = pick_device(spec.device)
    flops_per_sample = spec.mflops * 1e6

    def _on_epoch(ep: Any) -> bool | None:
        if on_epoch is None:
            return None
        return on_epoch({
            "epoch": ep.epoch,
            "train_loss": ep.train_loss,
            "train_accuracy": ep.train_accuracy,
            "val_loss": ep.val_loss,
            "val_accuracy": ep.val_accuracy,
            "samples_seen": ep.samples_seen,
            "epoch_seconds": ep.epoch_seconds,
            "train_flops": training_flops(flops_per_sample, ep.samples_seen),
        })

    t = spec.training
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    result = train(
        model, splits, epochs=int(t["epochs"]), batch_size=int(spec.data.get("batch_size", 64)),
        optimizer=t.get("optimizer", "adam"), lr=float(t["lr"]), weight_decay=float(t.get("weight_decay", 0.0)),
        momentum=float(t.get("momentum", 0.9)), lr_schedule=t.get("lr_schedule", "cosine"),
        device=device, amp=bool(t.get("amp", False)), seed=spec.seed, max_seconds=t.get("max_seconds"),
        on_epoch=_on_epoch, resume=resume, snapshot_at=[int(e) for e in spec.extra.get(SNAPSHOT_AT, ())],
        on_snapshot=_snapshot if on_snapshot is not None else None,
    )
    final = {
        "val_accuracy": result.final_val_accuracy,
        "train_seconds": result.train_seconds,
        "trial_seconds": time.perf_counter() - start,
        "samples_seen": float(result.samples_seen),
        "train_flops": training_flops(flops_per_sample, result.samples_seen),
        "epochs_run": float(len(result.epochs)),
        "on_gpu": float(device.type == "cuda"),  # where it really trained (1 = CUDA), not where it was asked to
    }
    if device.type == "cuda":
        final["gpu_peak_mem_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    final["size_mb"] = model_size_mb(model)
    if "latency_ms" not in spec.extra.get("profiled", ()):
        # measured here, on the trial's device, when the driver did not need it before training
        lat_cfg = spec.latency
        x = torch.zeros(int(lat_cfg.get("batch_size", 1)), *splits.input_shape, device=device)
        lat = measure_latency(model, x, warmup=int(lat_cfg.get("warmup", 2)), repeats=int(lat_cfg.get("repeats", 5)))
        final.update(latency_ms=lat.median_ms, latency_iqr_ms=lat.iqr_ms, latency_threads=float(lat.threads))
    if post_train is not None:
        done = post_train(model, arch, splits, spec, final)
        if done is not None:
            return result, done[0], done[1]
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return result, state, final
