"""The data contract: :class:`Splits`, :class:`DataError`, and the split and path helpers every loader shares.

A loader turns a source (a generator, a file, a folder) into three in-memory ``TensorDataset`` objects whose
tensors are ``(x float32, y int64)``. The training loop indexes those tensors directly, so everything here is
sized for data that fits in memory.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import TensorDataset


class DataError(ValueError):
    """A dataset that cannot be loaded. The message names the dataset (or file), what is wrong and how to fix it."""


@dataclass(frozen=True)
class Splits:
    """Train, validation and test sets of one dataset, all in memory.

    Each set is a ``TensorDataset(x, y)`` with ``x`` float32 of shape ``(n, *input_shape)`` and ``y`` int64 class
    indices in ``[0, num_classes)``. ``input_shape`` is per sample, e.g. ``(1, 8, 8)`` or ``(40,)``. ``info`` holds
    plain-value provenance (source, sizes, seed, normalization, class names, options) for tracking.
    """

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    input_shape: tuple[int, ...]
    num_classes: int
    name: str
    info: dict[str, Any]

    def sizes(self) -> dict[str, int]:
        """Number of samples per split: ``{"train": n, "val": n, "test": n}``."""
        return {part: len(getattr(self, part)) for part in ("train", "val", "test")}


def split_sizes(n: int, val_fraction: float, test_fraction: float, *, name: str) -> tuple[int, int, int]:
    """``(n_train, n_val, n_test)`` for ``n`` samples; a fraction > 0 gets at least one sample.

    Fractions are of all ``n`` samples, each in ``[0, 1)``, with ``val_fraction + test_fraction < 1``.
    """
    for label, frac in (("val_fraction", val_fraction), ("test_fraction", test_fraction)):
        if not 0.0 <= frac < 1.0:
            raise DataError(f"dataset {name!r}: {label}={frac} is outside [0, 1). Pass a fraction such as 0.2.")
    if val_fraction + test_fraction >= 1.0:
        raise DataError(f"dataset {name!r}: val_fraction + test_fraction = {val_fraction + test_fraction:g} "
                        "leaves no training data. Make their sum less than 1.")
    n_val = max(round(n * val_fraction), 1) if val_fraction > 0 else 0
    n_test = max(round(n * test_fraction), 1) if test_fraction > 0 else 0
    n_train = n - n_val - n_test
    if n_train < 1:
        raise DataError(f"dataset {name!r}: {n} samples are too few for val_fraction={val_fraction} and "
                        f"test_fraction={test_fraction}. Add samples or lower the fractions.")
    return n_train, n_val, n_test


def stratified_indices(y: np.ndarray, sizes: tuple[int, ...], seed: int) -> list[np.ndarray]:
    """Split ``range(len(y))`` into parts of exactly ``sizes`` samples, each part stratified by label.

    Each class's samples are shuffled (seeded). Parts are filled from the smallest to the largest: a part takes
    from each class its proportional share of what is left, rounded by largest remainder (ties broken at
    random), and the largest part takes the rest. Every class then has within 2 samples of its proportional
    share in every part (within 1 in the smallest). Returns sorted index arrays, one per entry of ``sizes``.
    """
    if sum(sizes) != len(y):
        raise ValueError(f"sizes {sizes} do not add up to {len(y)} samples")
    rng = np.random.default_rng(seed)
    pools = [rng.permutation(np.flatnonzero(y == label)) for label in np.unique(y)]
    left = np.array([len(pool) for pool in pools])
    taken = np.zeros_like(left)
    parts: list[np.ndarray] = [np.empty(0, dtype=np.int64)] * len(sizes)
    order = sorted(range(len(sizes)), key=lambda i: sizes[i])
    for rank, part in enumerate(order):
        counts = _largest_remainder(left, sizes[part], rng) if rank < len(order) - 1 else left.copy()
        chosen = [pool[t:t + c] for pool, t, c in zip(pools, taken, counts, strict=True)]
        parts[part] = np.sort(np.concatenate(chosen)).astype(np.int64)
        taken += counts
        left -= counts
    return parts


def _largest_remainder(counts: np.ndarray, total: int, rng: np.random.Generator) -> np.ndarray:
    """Integers summing to ``total``, each within 1 of ``counts * total / counts.sum()`` and at most ``counts``."""
    ideal = counts * (total / max(int(counts.sum()), 1))
    base = np.floor(ideal).astype(np.int64)
    order = np.lexsort((rng.random(len(counts)), base - ideal))  # largest remainder first, random among ties
    base[order[: total - int(base.sum())]] += 1
    return base


def tensor_dataset(x: np.ndarray | torch.Tensor, y: np.ndarray | torch.Tensor) -> TensorDataset:
    """A ``TensorDataset`` of contiguous ``x`` float32 and ``y`` int64."""
    xt = torch.as_tensor(np.ascontiguousarray(x) if isinstance(x, np.ndarray) else x).to(torch.float32)
    yt = torch.as_tensor(np.ascontiguousarray(y) if isinstance(y, np.ndarray) else y).to(torch.int64)
    return TensorDataset(xt.contiguous(), yt.contiguous())


def splits_from_arrays(
    x: np.ndarray,
    y: np.ndarray,
    *,
    name: str,
    seed: int,
    val_fraction: float,
    test_fraction: float,
    num_classes: int,
    info: dict[str, Any],
) -> Splits:
    """Stratified train/val/test :class:`Splits` of ``(x, y)`` for data with no official split.

    ``x`` is ``(n, *input_shape)``, ``y`` holds class indices. ``info`` is extended with the split sizes, the
    seed and the fractions.
    """
    sizes = split_sizes(len(y), val_fraction, test_fraction, name=name)
    train, val, test = (tensor_dataset(x[i], y[i]) for i in stratified_indices(y, sizes, seed))
    return Splits(
        train=train, val=val, test=test, input_shape=tuple(x.shape[1:]), num_classes=num_classes, name=name,
        info={**info, "split": "stratified", "seed": seed, "val_fraction": val_fraction,
              "test_fraction": test_fraction, "sizes": dict(zip(("train", "val", "test"), sizes, strict=True))},
    )


def splits_with_official_test(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    name: str,
    seed: int,
    n_val: int,
    num_classes: int,
    info: dict[str, Any],
) -> Splits:
    """:class:`Splits` whose test set is a dataset's official one; ``n_val`` samples of its official training
    set, stratified by label and chosen by ``seed``, become the validation set."""
    if not 0 <= n_val < len(y_train):
        raise DataError(f"dataset {name!r}: a validation set of {n_val} samples does not fit in the "
                        f"{len(y_train)} training samples. Lower val_fraction.")
    train_idx, val_idx = stratified_indices(y_train, (len(y_train) - n_val, n_val), seed)
    sizes = {"train": len(train_idx), "val": len(val_idx), "test": len(y_test)}
    return Splits(
        train=tensor_dataset(x_train[train_idx], y_train[train_idx]),
        val=tensor_dataset(x_train[val_idx], y_train[val_idx]),
        test=tensor_dataset(x_test, y_test),
        input_shape=tuple(x_train.shape[1:]), num_classes=num_classes, name=name,
        info={**info, "split": "official test, stratified val from official train", "seed": seed, "sizes": sizes},
    )


def cache_dir(data_dir: str | os.PathLike[str] | None, sub: str) -> Path:
    """Where generated or downloaded files of ``sub`` live: ``data_dir`` when given, else
    ``$XDG_CACHE_HOME/nas/<sub>`` (``~/.cache/nas/<sub>`` when unset). The folder is not created here."""
    if data_dir is not None:
        return Path(data_dir).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nas" / sub


def resolve_path(
    name: str, path: str | os.PathLike[str] | None, data_dir: str | os.PathLike[str] | None, what: str
) -> Path:
    """The file or folder a loader reads: ``path`` (relative to ``data_dir`` when both are given), else
    ``data_dir`` itself. ``what`` says what is expected (``"a CSV file"``) for the error message."""
    if path is None and data_dir is None:
        raise DataError(f"dataset {name!r} needs {what}: pass path=... (or data_dir=...) to load_data.")
    if path is None:
        return Path(data_dir).expanduser()  # type: ignore[arg-type]
    p = Path(path).expanduser()
    return p if p.is_absolute() or data_dir is None else Path(data_dir).expanduser() / p
