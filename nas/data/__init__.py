"""Datasets behind one interface: ``load_data(name, seed=..., ...) -> Splits``, all in memory as tensors.

Built in: ``digits`` (the offline default), ``mnist1d`` (generated locally), ``cifar10``/``mnist``/
``fashion_mnist`` (through torchvision, optional), ``image_folder`` (pillow, optional) and ``csv``. Add one with
``@register_dataset("name")``, or pass ``"package.module:function"`` as the name to call your own loader.
Optional dependencies (sklearn's bundled data aside) are imported only when their dataset is loaded.
"""

from __future__ import annotations

from nas.data import digits, folder, mnist1d, tabular, vision  # noqa: F401  (registers the built-in datasets)
from nas.data.base import DataError, Splits
from nas.data.registry import (
    DatasetSpec,
    dataset_names,
    get_dataset,
    load_data,
    register_dataset,
    unregister_dataset,
)

__all__ = [
    "DataError",
    "DatasetSpec",
    "Splits",
    "dataset_names",
    "get_dataset",
    "load_data",
    "register_dataset",
    "unregister_dataset",
]
