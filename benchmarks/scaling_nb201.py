"""Scaling fits on NAS-Bench-201 (CIFAR-10): error against forward MFLOPs, in both of Thompson et al.'s forms.

Per model: error = 1 - cifar10_valid_acc / 100 against ``flops_M`` (forward MFLOPs per 32×32 image), over
  - all 15,625 cells,
  - the connected cells (a cell whose output node no non-``none`` path reaches trains to chance whatever its
    FLOPs; those 341 points say nothing about compute),
  - the Pareto front of (min flops_M, max valid accuracy).
Per search: a simulated random search over the table (``--trials`` cells drawn without replacement, ``--seed``),
with cumulative estimated training compute (3 × forward FLOPs × 25,000 training images × 200 epochs per trial, the
NB201 cifar10-valid protocol) against the best validation error so far.

For each curve it prints slope, R², the slope's 95% CI, which form fits better, the compute extrapolated for
``--target-error`` and the plateau flag. Run: ``.venv/bin/python benchmarks/scaling_nb201.py``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from nas.pareto import pareto_mask
from nas.report.scaling import ScalingReport, errors_from_accuracy, fit_scaling, fit_search_scaling

CSV = Path(__file__).parent / "data" / "nb201" / "nb201_cifar10.csv"
TRAIN_IMAGES, EPOCHS = 25_000, 200


def connected(arch_str: str) -> bool:
    """True when a path of non-``none`` ops leads from the cell's input (node 0) to its output (node 3)."""
    groups = arch_str.split("+")
    reach = {0}
    for j, group in enumerate(groups, start=1):
        for edge in filter(None, group.split("|")):
            op, src = edge.split("~")
            if op != "none" and int(src) in reach:
                reach.add(j)
    return 3 in reach


def row(label: str, r: ScalingReport) -> str:
    cells = [f"{label:<22} n={r.n:<6}"]
    for form in ("polynomial", "exponential"):
        f = r.fits[form]
        cells.append(f"{form[:4]}: slope {f.slope:+.4f} [{f.slope_ci[0]:+.4f}, {f.slope_ci[1]:+.4f}] R² {f.r2:.3f}")
    need = r.compute_for_target
    need_s = "never" if need is None else ("inf" if math.isinf(need) else f"{need:.3g}")
    cells.append(f"best {r.best.form[:4]}; {r.target_error:g} err needs {need_s} {r.compute_unit}; "
                 f"gain/10x {r.marginal_gain_at_max:.4f} -> {'PLATEAU' if r.plateau else 'no plateau'}")
    return " | ".join(cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", type=Path, default=CSV)
    ap.add_argument("--target-error", type=float, default=0.05, help="error (fraction) to extrapolate to")
    ap.add_argument("--threshold", type=float, default=0.005, help="plateau threshold, error per 10x compute")
    ap.add_argument("--trials", type=int, default=500, help="trials of the simulated random search")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    df = pd.read_csv(args.csv)
    df["error"] = errors_from_accuracy(df["cifar10_valid_acc"], percent=True)
    df["test_error"] = errors_from_accuracy(df["cifar10_test_acc"], percent=True)
    df["connected"] = df["arch_str"].map(connected)
    rows = df[["flops_M", "cifar10_valid_acc"]].to_dict("records")
    df["pareto"] = pareto_mask(rows, [("flops_M", "minimize"), ("cifar10_valid_acc", "maximize")])
    kw = {"target_error": args.target_error, "plateau_threshold": args.threshold}

    subsets = {
        "all cells": df,
        "connected cells": df[df["connected"]],
        "Pareto front": df[df["pareto"]],
    }
    print(f"NAS-Bench-201 CIFAR-10: {len(df)} cells, {int(df['connected'].sum())} connected, "
          f"{int(df['pareto'].sum())} on the Pareto front; {df['flops_M'].nunique()} distinct flops_M values "
          f"({df['flops_M'].min():.3g}..{df['flops_M'].max():.3g} MFLOPs)\n")
    print("Per model: validation error against forward MFLOPs")
    reports = {}
    for label, sub in subsets.items():
        reports[label] = fit_scaling(sub["flops_M"], sub["error"], compute_unit="MFLOPs", **kw)
        print(row(label, reports[label]))
    test = fit_scaling(df.loc[df["connected"], "flops_M"], df.loc[df["connected"], "test_error"],
                       compute_unit="MFLOPs", **kw)
    print(row("connected, test error", test))

    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(df))[: args.trials]
    train_flops = 3.0 * df["flops_M"].to_numpy()[order] * 1e6 * TRAIN_IMAGES * EPOCHS
    search = fit_search_scaling(train_flops, df["error"].to_numpy()[order], compute_unit="FLOPs", **kw)
    print(f"\nPer search: random search, {args.trials} trials (seed {args.seed}), cumulative training FLOPs "
          "against best validation error so far")
    print(row("random search", search))

    print("\nSummaries")
    for label, r in {**reports, "random search": search}.items():
        print(f"- {label}: {r.summary}")


if __name__ == "__main__":
    main()
