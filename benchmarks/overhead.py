"""Per-trial overhead of the engine (dispatch + profiling + logging) against a plain in-process Optuna loop.

Both loops run the SAME trials in one process run: a seeded RandomSampler over the same space gives the same
architectures in the same order, each trained for the same epochs on the same data with one CPU thread. The plain
loop does ask -> sample -> build -> train -> tell and nothing else. The engine does everything `nas search` does
(profiling, constraint checks, Ray Tune dispatch to a reused actor, MLflow child runs, parent metrics, Pareto
artifacts) on a warm Ray cluster (started, and warmed with one short search, before the clock starts).

    python benchmarks/overhead.py [--trials 25] [--base 5] [--epochs 1]

Per-trial overhead is marginal: both loops run ``--base`` and ``--trials`` trials, and the overhead is
((nas_big - nas_small) - (plain_big - plain_small)) / (trials - base), so per-search fixed costs (parent run,
reference point, final model logging) cancel out; they are printed separately. Target: <= 50 ms per trial.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import optuna
import torch
import yaml

ROOT = Path(__file__).resolve().parent.parent
SPACE = ROOT / "search_spaces" / "mlp.yaml"


def experiment_file(tmp: Path, trials: int, epochs: int) -> Path:
    doc = {
        "name": "overhead", "space": str(SPACE), "data": {"name": "digits", "seed": 0},
        "objectives": [{"name": "val_accuracy", "direction": "maximize"}, {"name": "mflops", "direction": "minimize"}],
        "training": {"epochs": epochs, "lr": 0.003},
        "search": {"sampler": "random", "trials": trials, "concurrency": 1, "seed": 0},
        "tracking": {"uri": f"sqlite:///{tmp / 'mlflow.db'}", "experiment": "overhead"},
    }
    p = tmp / "exp.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def plain_loop(exp, trials: int) -> tuple[float, list[float]]:
    """ask -> sample -> build -> train -> tell, in process: the floor any engine has to add to."""
    from nas.space import load_space
    from nas.trial import TrialSpec, cached_splits, run_trial

    space = load_space(exp.space)
    cached_splits(asdict(exp.data))
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    accs = []
    t0 = time.perf_counter()
    for _ in range(trials):
        trial = study.ask()
        params = space.sample(trial)
        spec = TrialSpec(number=trial.number, params=params, space_yaml=SPACE.read_text(), space_source=str(SPACE),
                         space_hash=space.hash, data=asdict(exp.data),
                         training={"epochs": exp.training.epochs, "lr": exp.training.lr, "optimizer": "adam"},
                         seed=trial.number, mflops=0.0, cpu_threads=1)
        _, _, final = run_trial(spec)
        study.tell(trial, [final["val_accuracy"], 0.0])
        accs.append(final["val_accuracy"])
    return time.perf_counter() - t0, accs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=25)
    ap.add_argument("--base", type=int, default=5)
    ap.add_argument("--epochs", type=int, default=1)
    args = ap.parse_args()
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    torch.set_num_threads(1)

    from nas.experiment import load_experiment
    from nas.runner import init_ray
    from nas.search import run_search

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        exp = load_experiment(experiment_file(tmp, args.trials, args.epochs))
        init_ray(num_cpus=2)
        run_search(exp.with_overrides(trials=2), storage_path=str(tmp / "ray"))  # warm: imports, caches
        plain_loop(exp, 2)  # warm: the first optimizer step imports torch._dynamo (~2 s)

        walls: dict[tuple[str, int], float] = {}
        results = {}
        for n in (args.base, args.trials):
            walls["plain", n], _ = plain_loop(exp, n)
            t0 = time.perf_counter()
            results[n] = run_search(exp.with_overrides(trials=n), storage_path=str(tmp / "ray"))
            walls["nas", n] = time.perf_counter() - t0
            done = sum(r.status == "complete" for r in results[n].records)
            if done != n:
                raise SystemExit(f"only {done}/{n} trials completed: {[r.reason for r in results[n].records]}")

    lo, hi = args.base, args.trials
    plain_ms = (walls["plain", hi] - walls["plain", lo]) / (hi - lo) * 1000
    nas_ms = (walls["nas", hi] - walls["nas", lo]) / (hi - lo) * 1000
    fixed_s = walls["nas", lo] - lo * nas_ms / 1000
    print(f"| loop | wall, {lo} trials (s) | wall, {hi} trials (s) | marginal per trial (ms) |")
    print("|---|---|---|---|")
    print(f"| plain Optuna, in process | {walls['plain', lo]:.2f} | {walls['plain', hi]:.2f} | {plain_ms:.0f} |")
    print(f"| nas search (warm Ray, concurrency 1) | {walls['nas', lo]:.2f} | {walls['nas', hi]:.2f} | {nas_ms:.0f} |")
    print()
    print(f"engine overhead per trial: {nas_ms - plain_ms:.0f} ms (target <= 50 ms); "
          f"ratio nas/plain per trial = {nas_ms / plain_ms:.2f}; fixed cost per search: {fixed_s:.2f} s")
    o, n = results[hi].overhead_s, hi
    print(f"driver-side parts of the {n}-trial search, ms per trial: " + ", ".join(
        f"{k[:-2]} {v / n * 1000:.0f}" for k, v in o.items() if k.endswith("_s") and k != "total_s"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
