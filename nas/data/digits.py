"""``digits``: scikit-learn's 8x8 handwritten digits (1,797 images, 10 classes), bundled with scikit-learn, so
it needs no download. The default dataset."""

from __future__ import annotations

import os

import numpy as np

from nas.data.base import Splits, splits_from_arrays
from nas.data.preprocess import preprocessing
from nas.data.registry import register_dataset


@register_dataset("digits")
def load_digits(
    *, seed: int, data_dir: str | os.PathLike[str] | None, val_fraction: float, test_fraction: float
) -> Splits:
    """8x8 handwritten digits from scikit-learn, pixels scaled from 0..16 to [0, 1], input (1, 8, 8), 10 classes.

    No official split: stratified train/val/test by ``seed``. ``data_dir`` is unused (the data ships with
    scikit-learn).
    """
    from sklearn.datasets import load_digits as sk_load_digits

    bunch = sk_load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[:, None, :, :]
    y = bunch.target.astype(np.int64)
    return splits_from_arrays(
        x, y, name="digits", seed=seed, val_fraction=val_fraction, test_fraction=test_fraction, num_classes=10,
        info={"source": "sklearn.datasets.load_digits", "normalization": "pixel / 16 -> [0, 1]",
              "preprocessing": preprocessing(divisor=16.0),
              "class_names": [str(c) for c in bunch.target_names], "total_samples": int(len(y))},
    )
