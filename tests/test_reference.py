"""The per-dataset accuracy reference rule, by hand and on both NB201 tables."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from nas.bench.reference import DEFAULT_REFERENCE_QUANTILE, accuracy_reference
from nas.cli import main

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



def test_nas_bench_runs_on_cifar100_from_the_shipped_experiment_with_flags_only(capsys):
    root = DATA.parent.parent.parent
    base = ["bench", str(root / "experiments" / "nb201_bench.yaml"), "--table", str(DATA / "nb201_cifar100.csv")]
    flags = ["--accuracy-column", "cifar100_valid_acc", "--low-fidelity-column", "cifar100_valid_acc_12ep",
             "--cost-column", "flops_M", "--reference-quantile", "0.146", "--seeds", "1", "--first-seed", "10",
             "--max-compute", "3", "--json"]
    assert main([*base, *flags]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["reference"]["val_accuracy"] == pytest.approx(0.5405, abs=0.001)
    assert out["columns"]["accuracy"] == {"200": "cifar100_valid_acc", "12": "cifar100_valid_acc_12ep"}
    assert out["true_hypervolume"] > 0
    run = out["runs"][0]
    # 3 full trainings' worth of 12-epoch evaluations at 0.06 each (the shipped experiment promotes after 300)
    assert run["seed"] == 10 and 3 <= run["compute"] < 3.06 + 1e-9 and run["evaluations"] == 50
    # without the column flags, the CIFAR-10 columns are missing from this table: refused (exit code 2)
    assert main([*base, "--max-compute", "1"]) == 2
