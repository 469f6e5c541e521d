"""``cifar10``, ``mnist``, ``fashion_mnist``: the classic image sets, read through torchvision.

torchvision is optional (``pip install 'nas[vision]'``); it is imported only when one of these is loaded. Files
are read from ``data_dir`` (default ``~/.cache/nas/torchvision``) and downloaded only with ``download=True``.
Pixels are scaled to [0, 1] and held in memory as float32: CIFAR-10 takes about 740 MB, MNIST about 190 MB.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from nas.data.base import DataError, Splits, cache_dir, split_sizes, splits_with_official_test
from nas.data.preprocess import preprocessing
from nas.data.registry import LoaderFn, register_dataset


@dataclass(frozen=True)
class TorchvisionSet:
    """How to read one torchvision dataset: its class in ``torchvision.datasets``, the array layout of its
    ``.data`` attribute (``"NHWC"`` or ``"NHW"``), the per-sample input shape and the folder it expects under
    its root."""

    cls_name: str
    layout: str
    input_shape: tuple[int, ...]
    num_classes: int
    files: str


TORCHVISION_SETS: dict[str, TorchvisionSet] = {
    "cifar10": TorchvisionSet("CIFAR10", "NHWC", (3, 32, 32), 10, "cifar-10-batches-py/"),
    "mnist": TorchvisionSet("MNIST", "NHW", (1, 28, 28), 10, "MNIST/raw/"),
    "fashion_mnist": TorchvisionSet("FashionMNIST", "NHW", (1, 28, 28), 10, "FashionMNIST/raw/"),
}

_TO_NCHW = {
    "NHWC": lambda a: a.transpose(0, 3, 1, 2),
    "NHW": lambda a: a[:, None, :, :],
}


def _torchvision_datasets(name: str) -> Any:
    try:
        return importlib.import_module("torchvision.datasets")
    except ImportError as err:
        raise DataError(f"dataset {name!r} needs torchvision, which is not installed ({err}). Install it with "
                        "pip install 'nas[vision]' (or: pip install torchvision pillow), or use a dataset that "
                        "needs none: digits, mnist1d, csv, image_folder.") from err


def _read(name: str, spec: TorchvisionSet, root: os.PathLike[str], *, train: bool, download: bool) -> Any:
    cls = getattr(_torchvision_datasets(name), spec.cls_name)
    try:
        return cls(root=str(root), train=train, download=download)
    except RuntimeError as err:
        raise DataError(f"dataset {name!r}: no usable {spec.cls_name} files under {root} ({err}). Put the files in "
                        f"{os.path.join(root, spec.files)}, pass data_dir=<folder holding {spec.files}>, or pass "
                        "download=True to fetch them (needs internet).") from err


def _arrays(ds: Any, spec: TorchvisionSet) -> tuple[np.ndarray, np.ndarray]:
    data = ds.data.numpy() if hasattr(ds.data, "numpy") else np.asarray(ds.data)
    targets = ds.targets.numpy() if hasattr(ds.targets, "numpy") else np.asarray(ds.targets)
    x = _TO_NCHW[spec.layout](data).astype(np.float32) / 255.0
    return x, targets.astype(np.int64)


def _make_loader(name: str, spec: TorchvisionSet) -> LoaderFn:
    def load(
        *,
        seed: int,
        data_dir: str | os.PathLike[str] | None,
        val_fraction: float,
        test_fraction: float,
        download: bool = False,
    ) -> Splits:
        root = cache_dir(data_dir, "torchvision")
        train = _read(name, spec, root, train=True, download=download)
        test = _read(name, spec, root, train=False, download=download)
        x_train, y_train = _arrays(train, spec)
        x_test, y_test = _arrays(test, spec)
        _, n_val, _ = split_sizes(len(y_train), val_fraction, 0.0, name=name)
        return splits_with_official_test(
            x_train, y_train, x_test, y_test, name=name, seed=seed, n_val=n_val, num_classes=spec.num_classes,
            info={"source": f"torchvision.datasets.{spec.cls_name}", "root": str(root),
                  "normalization": "pixel / 255 -> [0, 1]", "preprocessing": preprocessing(divisor=255.0), "class_names": [str(c) for c in train.classes],
                  "val_fraction": val_fraction, "test_fraction_ignored": test_fraction},
        )

    load.__name__ = f"load_{name}"
    load.__doc__ = (
        f"{spec.cls_name} via torchvision, input {spec.input_shape}, {spec.num_classes} classes, pixels in [0, 1].\n\n"
        "The test set is the official one (``test_fraction`` is ignored); ``val_fraction`` of the official\n"
        "training set, stratified and chosen by ``seed``, is the validation set. ``download=True`` fetches the\n"
        "files into ``data_dir`` (default ``~/.cache/nas/torchvision``)."
    )
    return load


for _name, _spec in TORCHVISION_SETS.items():
    register_dataset(_name)(_make_loader(_name, _spec))
