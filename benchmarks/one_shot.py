"""One-shot (weight-sharing) search against full training and Pareto-ASHA on the digits ``cnn`` search.

For each seed, three searches of ``experiments/digits_cnn.yaml`` run through ``nas search``'s library entry (real
Ray, MLflow sqlite in a temp dir, Optuna):

* **full**: ``--trials`` trials, each trained for the experiment's epochs;
* **Pareto-ASHA**: up to 3x the trials, early stopping after 1 epoch (eta 3), with a training-compute budget of
  1/3 of what the full search spent (the pair is ``benchmarks/early_stopping.py``'s ``full_and_asha``);
* **one-shot**: the supernet (``--supernet-epochs``), ``--subnets`` subnets scored with inherited weights, the
  ``--top-k`` best plus ``--controls`` random ones trained stand-alone; with tau below 0.5 the remaining trials
  (``--trials`` minus those) run as Pareto-ASHA (the self-check's fallback).

Hypervolume: accuracy reference = the best **test** accuracy of the classical baselines
(``nas.report.baselines``: logistic regression, gradient-boosted trees), so a model counts only above it; MFLOPs
reference = the full run's. Compute = training FLOPs of every trial plus, for one-shot, the supernet's training
and the scoring's forward passes. Reported: final HV against compute, compute to 95% of the full search's HV, and
Kendall's tau. Goal: one-shot >= 95% of the full search's final HV at <= 1/10 of its compute.

    python benchmarks/one_shot.py [--seeds 3] [--trials 24] [--supernet-epochs 30] [--subnets 300] [--out NAME]
"""

from __future__ import annotations

import argparse
import datetime
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import early_stopping  # noqa: E402


def curve(records, objectives, reference, start_flops: float = 0.0) -> list[tuple[float, float]]:
    """(cumulative compute FLOPs, HV of the completed trials) from (start_flops, 0) on, after each finished trial."""
    return [(start_flops, 0.0), *early_stopping.curve(records, objectives, reference, start_flops)]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", default=str(ROOT / "experiments" / "digits_cnn.yaml"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--supernet-epochs", type=int, default=30)
    ap.add_argument("--subnets", type=int, default=300)
    ap.add_argument("--top-k", type=int, default=3)
    ap.add_argument("--controls", type=int, default=2)
    ap.add_argument("--out", default="one_shot")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    args.commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                 text=True).stdout.strip()  # the code that runs: taken at the start

    from nas.config.experiment import load_experiment
    from nas.config.one_shot import OneShotConfig
    from nas.report.baselines import fit_baselines
    from nas.search.api import run_search
    from nas.search.backends.ray import init_ray
    from nas.training.trial import cached_splits

    base = load_experiment(args.experiment)
    objectives = [(o.name, o.direction) for o in base.objectives]
    splits = cached_splits(asdict(base.data))
    baselines = fit_baselines(splits, seed=0)
    acc_ref = max(b.test_accuracy for b in baselines)
    init_ray(num_cpus=2)
    rows: list[dict[str, Any]] = []
    t_start = time.perf_counter()
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as d:
            # full, then Pareto-ASHA at 1/3 of its compute: the pair benchmarks/early_stopping.py measures
            pair = early_stopping.full_and_asha(base, seed=seed, trials=args.trials, workdir=d)
            exp, full, asha = pair.exp, pair.full, pair.asha
            ref = {**full.reference, "val_accuracy": acc_ref}
            full_c = pair.full_flops
            t2 = time.perf_counter()
            os_exp = replace(exp, search=replace(exp.search, strategy="one-shot"), one_shot=OneShotConfig(
                epochs=args.supernet_epochs, subnets=args.subnets, top_k=args.top_k, controls=args.controls))
            one = run_search(os_exp, storage_path=str(Path(d) / "ray"), register_models=False)
            t3 = time.perf_counter()
        info = one.one_shot or {}
        pre = info.get("supernet_flops", 0.0) + info.get("scoring_flops", 0.0)
        row = {"seed": seed, "acc_reference": acc_ref, "full_tflops": full_c / 1e12, "full_wall_s": pair.full_wall_s,
               "asha_wall_s": pair.asha_wall_s, "one_shot_wall_s": t3 - t2}
        # two accuracy references: the strict one (above the classical baselines) and 0 (the search's own)
        for tag, reference in (("", ref), ("lenient_", {**ref, "val_accuracy": 0.0})):
            full_curve = curve(full.records, objectives, reference)
            full_hv = full_curve[-1][1]
            row[f"{tag}full_hv"] = full_hv
            for name, recs, start in (("asha", asha.records, 0.0), ("one_shot", one.records, pre)):
                c = curve(recs, objectives, reference, start)
                r95 = early_stopping.compute_to_reach(c, 0.95 * full_hv) if full_hv > 0 else None
                row.update({f"{tag}{name}_hv_ratio": c[-1][1] / full_hv if full_hv > 0 else None,
                            f"{tag}{name}_to95_ratio": None if r95 is None else r95 / full_c})
                row[f"{name}_compute_ratio"] = c[-1][0] / full_c
        row.update({"tau": info.get("tau"), "trusted": info.get("trusted"),
                    "supernet_share": info.get("supernet_flops", 0.0) / full_c,
                    "one_shot_trials": len(one.records),
                    "pass": (row["one_shot_hv_ratio"] or 0.0) >= 0.95 and row["one_shot_compute_ratio"] <= 0.1})
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        _write(rows, args, argv, acc_ref, time.perf_counter() - t_start, seeds_planned=args.seeds)
    return 0


def _write(rows: list[dict[str, Any]], args: argparse.Namespace, argv: list[str] | None, acc_ref: float,
           wall: float, seeds_planned: int) -> None:
    """Write the table (after every seed, so a cut-short run keeps what it measured)."""
    table = ["| seed | reference | full: HV, TFLOPs | ASHA: HV share, compute share, to 95% | one-shot: HV share, "
             "compute share (supernet share), to 95% | tau (trusted) | goal met |", "|---|---|---|---|---|---|---|"]

    def fmt(v: float | None) -> str:
        return "-" if v is None else f"{v:.2f}"

    for r in rows:
        for tag, label in (("", f"strict ({r['acc_reference']:.3f})"), ("lenient_", "0")):
            table.append(
                f"| {r['seed']} | {label} | {r[f'{tag}full_hv']:.4f}, {r['full_tflops']:.3f} | "
                f"{fmt(r[f'{tag}asha_hv_ratio'])}, {r['asha_compute_ratio']:.2f}, {fmt(r[f'{tag}asha_to95_ratio'])} | "
                f"{fmt(r[f'{tag}one_shot_hv_ratio'])}, {r['one_shot_compute_ratio']:.2f} ({r['supernet_share']:.3f}), "
                f"{fmt(r[f'{tag}one_shot_to95_ratio'])} | {fmt(r['tau'])} ({r['trusted']}) | "
                f"{'yes' if r['pass'] else 'no'} |")
    commit = args.commit
    command = "python benchmarks/one_shot.py " + " ".join(argv if argv is not None else sys.argv[1:])
    header = (f"# One-shot vs full training vs Pareto-ASHA (digits `cnn`)\n\ncommit {commit}; `{command}`; "
              f"{platform.node()} ({platform.machine()}, {platform.processor() or 'cpu'}), CPU only (no GPU this "
              f"session; shared box, load average {os.getloadavg()[0]:.0f} at the end); "
              f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC; wall {wall:.0f} s.\n"
              f"HV accuracy reference: strict = {acc_ref:.4f} (best classical baseline test accuracy; HV 0 when no "
              f"model beats it, then shares are undefined: -), lenient = 0; shares are of the full search's final "
              f"HV and compute ({args.trials} trials); 'to 95%': compute to 95% of the full search's final HV, as a "
              f"share of the full search's compute. Goal: strict HV share >= 0.95 at compute share <= 0.1.\n\n")
    text = header + "\n".join(table) + (f"\n\n{sum(r['pass'] for r in rows)}/{len(rows)} seeds meet the goal "
                                         f"({len(rows)} of {seeds_planned} seeds run).\n")
    out = ROOT / "benchmarks" / "results"
    (out / f"{args.out}.md").write_text(text)
    (out / f"{args.out}.json").write_text(json.dumps({"commit": commit, "command": command, "rows": rows,
                                                       "machine": platform.node(), "wall_s": wall}, indent=2))
    print(text, flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
