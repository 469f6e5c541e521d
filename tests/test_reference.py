"""The per-dataset accuracy reference rule, by hand and on both NB201 tables."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from nas.reference import DEFAULT_REFERENCE_QUANTILE, accuracy_reference

DATA = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "nb201"


def test_quantile_by_hand():
    assert accuracy_reference([0.1, 0.2, 0.3, 0.4, 0.5], 0.25) == pytest.approx(0.2)
    assert accuracy_reference([0.1, 0.2, float("nan"), 0.3], 0.5) == pytest.approx(0.2)
    assert accuracy_reference([0.5, 0.7], 0.0) == 0.5
    for bad in (-0.1, 1.0):
        with pytest.raises(ValueError):
            accuracy_reference([0.5], bad)
    with pytest.raises(ValueError):
        accuracy_reference([float("nan")])


def test_default_gives_80_percent_on_cifar10_and_a_positive_volume_on_cifar100():
    c10 = pd.read_csv(DATA / "nb201_cifar10.csv")["cifar10_valid_acc"] / 100
    c100 = pd.read_csv(DATA / "nb201_cifar100.csv")["cifar100_valid_acc"] / 100
    assert accuracy_reference(c10) == pytest.approx(0.80, abs=0.001)
    ref100 = accuracy_reference(c100, DEFAULT_REFERENCE_QUANTILE)
    assert ref100 == pytest.approx(0.5405, abs=0.001) and ref100 < c100.max()
    assert (c100 < ref100).mean() == pytest.approx(DEFAULT_REFERENCE_QUANTILE, abs=0.001)
