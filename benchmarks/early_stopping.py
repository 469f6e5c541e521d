"""Pareto-ASHA against full training on real searches: hypervolume bought per training compute.

For each seed, the demo search (``experiments/digits_cnn.yaml``: the ``cnn`` space on digits, NSGA-II, 24 trials of
12 epochs) runs twice through ``nas search``'s library entry (real Ray, MLflow sqlite in a temp dir, Optuna): once
training every trial fully, once with ``early_stopping: pareto-asha``. The ASHA search may propose more trials
(``--asha-trials``, default 3x) but gets a training-compute budget (``budget.train_tflops``) of 1/3 of what the
full search spent, so it stops there by itself. Both hypervolumes use the full run's reference point; compute is
the training FLOPs the trials really ran (early-stopped trials billed for the epochs they ran).

The target (issue 4): the ASHA search reaches >= 95% of the full search's final hypervolume with <= 1/3 of its
training compute.

    python benchmarks/early_stopping.py [--seeds 3] [--trials 24] [--asha-trials 72] [--eta 3] [--rungs 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def curve(records, objectives, reference, start_flops: float = 0.0) -> list[tuple[float, float]]:
    """(cumulative training FLOPs from ``start_flops``, hypervolume of the completed trials) after each finished
    trial, in end order. Search compute that trains no candidate (records numbered < 0, e.g. a one-shot
    supernet's training) is left to ``start_flops``."""
    from nas.pareto import hypervolume_curve

    ended = sorted((r for r in records if r.number >= 0 and r.status in ("complete", "pruned", "failed")),
                   key=lambda r: r.end_time)
    steps = [(r.metrics.get("train_flops", 0.0), r.metrics if r.status == "complete" else None) for r in ended]
    return hypervolume_curve(steps, objectives, reference, start=start_flops)


def compute_to_reach(points: list[tuple[float, float]], target: float) -> float | None:
    """The first cost on ``points`` at which the hypervolume reaches ``target`` (None if never)."""
    return next((c for c, hv in points if hv >= target), None)


@dataclass
class FullAndAsha:
    """One seed's pair of searches: ``full`` trains every trial; ``asha`` stops early (Pareto-ASHA) and may
    propose more trials, within a training budget of ``budget_share`` of what ``full`` spent."""

    exp: Any  # the full search's experiment (seed, trials, tracking store applied)
    full: Any  # its SearchResult
    asha: Any
    full_flops: float  # training FLOPs the full search's trials ran
    full_wall_s: float
    asha_wall_s: float


def full_and_asha(base: Any, *, seed: int, trials: int, workdir: str | Path, asha_trials: int | None = None,
                  eta: float = 3.0, rungs: Sequence[int] = (1,), budget_share: float = 1 / 3) -> FullAndAsha:
    """Run the full search of ``base`` (``trials``, ``seed``; MLflow sqlite and Ray storage in ``workdir``),
    then the Pareto-ASHA one: up to ``asha_trials`` (default 3 x ``trials``) trials, judged at ``rungs`` epochs
    with ``eta``, stopping at ``budget_share`` of the full search's training FLOPs."""
    from nas.config.experiment import BudgetConfig, EarlyStoppingConfig
    from nas.search.api import run_search

    uri = f"sqlite:///{Path(workdir) / 'mlflow.db'}"
    ray = str(Path(workdir) / "ray")
    exp = base.with_overrides(trials=trials, seed=seed, tracking_uri=uri)
    t0 = time.perf_counter()
    full = run_search(exp, storage_path=ray, register_models=False)
    t1 = time.perf_counter()
    spent = sum(r.metrics.get("train_flops", 0.0) for r in full.records if r.number >= 0)
    asha_exp = replace(exp.with_overrides(trials=asha_trials or 3 * trials),
                       early_stopping=EarlyStoppingConfig(method="pareto-asha", eta=eta, rungs=list(rungs)),
                       budget=BudgetConfig(train_tflops=budget_share * spent / 1e12))
    asha = run_search(asha_exp, storage_path=ray, register_models=False)
    return FullAndAsha(exp, full, asha, spent, t1 - t0, time.perf_counter() - t1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--experiment", default=str(ROOT / "experiments" / "digits_cnn.yaml"))
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--asha-trials", type=int, default=None, help="default: 3 x --trials")
    ap.add_argument("--budget-share", type=float, default=1 / 3, help="ASHA budget as a share of the full compute")
    ap.add_argument("--eta", type=float, default=3.0)
    ap.add_argument("--rungs", type=int, nargs="*", default=[1], help="epochs (default 1: judge after one epoch)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)

    from nas.config.experiment import load_experiment
    from nas.search.backends.ray import init_ray

    base = load_experiment(args.experiment)
    objectives = [(o.name, o.direction) for o in base.objectives]
    init_ray(num_cpus=2)
    rows, t_start = [], time.perf_counter()
    for seed in range(args.seeds):
        with tempfile.TemporaryDirectory() as d:
            pair = full_and_asha(base, seed=seed, trials=args.trials, workdir=d, asha_trials=args.asha_trials,
                                 eta=args.eta, rungs=args.rungs, budget_share=args.budget_share)
        full, asha = pair.full, pair.asha
        ref = full.reference
        full_curve, asha_curve = curve(full.records, objectives, ref), curve(asha.records, objectives, ref)
        full_hv, full_c = full_curve[-1][1], full_curve[-1][0]
        reach = compute_to_reach(asha_curve, 0.95 * full_hv)
        rows.append({
            "seed": seed, "full_hv": full_hv, "full_tflops": full_c / 1e12, "full_wall_s": pair.full_wall_s,
            "asha_hv": asha_curve[-1][1], "asha_hv_ratio": asha_curve[-1][1] / full_hv,
            "asha_tflops": asha_curve[-1][0] / 1e12, "asha_wall_s": pair.asha_wall_s,
            "asha_pruned": sum(r.status == "pruned" for r in asha.records),
            "asha_trials": sum(r.status in ("complete", "pruned") for r in asha.records),
            "asha_stop": asha.state.stop_reason,
            "compute_to_95": None if reach is None else reach / full_c,
            "pass": reach is not None and reach <= full_c / 3,
        })
        print(f"seed {seed}: full HV {full_hv:.4f} for {full_c / 1e12:.3f} TFLOPs; ASHA {asha_curve[-1][1]:.4f} "
              f"({rows[-1]['asha_hv_ratio']:.3f}) for {asha_curve[-1][0] / 1e12:.3f} TFLOPs", file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps({"rows": rows, "wall_s": time.perf_counter() - t_start}, indent=2))
        return 0
    print(f"\nPareto-ASHA (eta {args.eta:g}, rungs {args.rungs or 'epochs/eta^k'}, budget {args.budget_share:.2f} of "
          f"the full search's compute) vs full training ({args.trials} trials of {base.training.epochs} epochs), "
          f"{base.search.sampler}, {base.data.name}:\n")
    print("| seed | full: HV | full: TFLOPs | ASHA: final HV (share of full) | ASHA: TFLOPs (share) | trials stopped early "
          "| compute to 95% of full HV (share of full) | <= 1/3 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        c95 = "not reached" if r["compute_to_95"] is None else f"{r['compute_to_95']:.2f}"
        print(f"| {r['seed']} | {r['full_hv']:.4f} | {r['full_tflops']:.3f} | {r['asha_hv']:.4f} ({r['asha_hv_ratio']:.3f}) "
              f"| {r['asha_tflops']:.3f} ({r['asha_tflops'] / r['full_tflops']:.2f}) | {r['asha_pruned']}/{r['asha_trials']} "
              f"| {c95} | {'yes' if r['pass'] else 'no'} |")
    print(f"\n{sum(r['pass'] for r in rows)}/{len(rows)} seeds meet the target; wall {time.perf_counter() - t_start:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
