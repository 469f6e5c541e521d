"""``csv``: a table of numeric features and one label column, read with pandas.

Labels may be numbers or strings; the sorted distinct values become class indices 0..K-1 (the original values
are kept in ``info["class_names"]``). Features are standardized with the mean and standard deviation of the
training split only, so no statistic leaks from validation or test rows.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np

from nas.data.base import (
    DataError,
    Splits,
    resolve_path,
    split_sizes,
    stratified_indices,
    tensor_dataset,
)
from nas.data.preprocess import preprocessing
from nas.data.registry import register_dataset
from nas.errors import did_you_mean


@register_dataset("csv")
def load_csv(
    *,
    seed: int,
    data_dir: str | os.PathLike[str] | None,
    val_fraction: float,
    test_fraction: float,
    path: str | os.PathLike[str] | None = None,
    label_column: str = "label",
    feature_columns: Sequence[str] | None = None,
    sep: str = ",",
) -> Splits:
    """A CSV file at ``path`` (or ``data_dir``): numeric features plus ``label_column``, input (F,).

    ``feature_columns`` picks the features (default: every other column). Features are standardized with
    train-split statistics (a constant feature gets std 1); ``info["normalization"]`` holds the mean and std per
    feature for use at inference. No official split: stratified train/val/test by ``seed``.
    """
    import pandas as pd

    file = resolve_path("csv", path, data_dir, "a CSV file")
    if not file.is_file():
        raise DataError(f"dataset 'csv': file {file} does not exist. Pass path= (or data_dir=) pointing at a CSV "
                        "file with a header row.")
    try:
        frame = pd.read_csv(file, sep=sep)
    except (ValueError, OSError) as err:  # pandas' parser errors subclass ValueError
        raise DataError(f"dataset 'csv': cannot parse {file} ({err}). Check it is a CSV with a header row.") \
            from err
    columns = [str(c) for c in frame.columns]
    frame.columns = columns
    if label_column not in columns:
        raise DataError(f"dataset 'csv': {file} has no label column {label_column!r}."
                        f"{did_you_mean(label_column, columns, sentence=True)} Its columns: {', '.join(columns)}. "
                        "Pass label_column=<name>.")
    features = list(feature_columns) if feature_columns is not None else [c for c in columns if c != label_column]
    x = _features(frame, features, file, columns)
    y, class_names = _labels(frame[label_column], file, label_column)
    sizes = split_sizes(len(y), val_fraction, test_fraction, name="csv")
    parts = stratified_indices(y, sizes, seed)
    mean, std = x[parts[0]].mean(axis=0), x[parts[0]].std(axis=0)
    std = np.where(std > 0, std, 1.0)
    x = ((x - mean) / std).astype(np.float32)
    train, val, test = (tensor_dataset(x[i], y[i]) for i in parts)
    return Splits(
        train=train, val=val, test=test, input_shape=(x.shape[1],), num_classes=len(class_names), name="csv",
        info={"source": str(file), "label_column": label_column, "feature_columns": features,
              "class_names": class_names, "split": "stratified", "seed": seed, "val_fraction": val_fraction,
              "test_fraction": test_fraction, "sizes": dict(zip(("train", "val", "test"), sizes, strict=True)),
              "normalization": {"kind": "standardize with train-split statistics",
                                "mean": mean.tolist(), "std": std.tolist()},
              "preprocessing": preprocessing(mean.tolist(), std.tolist())},
    )


def _features(frame: Any, features: list[str], file: os.PathLike[str], columns: list[str]) -> np.ndarray:
    import pandas as pd

    missing = [c for c in features if c not in columns]
    if missing:
        raise DataError(f"dataset 'csv': {file} has no feature column {missing[0]!r}."
                        f"{did_you_mean(missing[0], columns, sentence=True)} Its columns: {', '.join(columns)}.")
    if not features:
        raise DataError(f"dataset 'csv': {file} has no feature columns besides the label. Add feature columns.")
    text = [c for c in features if not pd.api.types.is_numeric_dtype(frame[c])]
    if text:
        raise DataError(f"dataset 'csv': {file}: feature column(s) {', '.join(map(repr, text))} are not numeric. "
                        "Encode them as numbers, or leave them out with feature_columns=[...].")
    x = frame[features].to_numpy(dtype=np.float64, na_value=np.nan)
    bad = [c for c, n in zip(features, np.isnan(x).sum(axis=0), strict=True) if n]
    if bad:
        raise DataError(f"dataset 'csv': {file}: feature column(s) {', '.join(map(repr, bad))} have empty or NaN "
                        "cells. Fill or drop those rows.")
    return x


def _labels(column: Any, file: os.PathLike[str], label_column: str) -> tuple[np.ndarray, list[str]]:
    """Class indices (int64) in the sorted order of the distinct labels, and the labels as strings."""
    import pandas as pd

    if column.isna().any():
        raise DataError(f"dataset 'csv': {file}: label column {label_column!r} has {int(column.isna().sum())} "
                        "empty cell(s). Fill or drop those rows.")
    values = column if pd.api.types.is_numeric_dtype(column) else column.astype(str)
    classes, y = np.unique(values.to_numpy(), return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"dataset 'csv': {file}: label column {label_column!r} has {len(classes)} distinct "
                        "value(s); a classifier needs at least 2 classes.")
    return y.astype(np.int64).reshape(-1), [str(c) for c in classes]
