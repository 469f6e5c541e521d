"""The control plane at scale: the real SearchLoop + Ray backend driving many concurrent cheap trials.

Each trial is a tiny MLP (``nas.testing.faults:faulty``, mode ``sleep``: 20 ms per training batch) on digits,
one epoch; ``resources.cpu`` is 2/concurrency, so that ``concurrency`` trials run at once on a 2-CPU Ray cluster.
For each concurrency level the full ``run_search`` runs (controller, profiling, Optuna journal, Tune, MLflow on
sqlite) and the driver is measured in its steady state, from the ``concurrency``-th finished trial to the last:

- ``driver ms/trial``: CPU seconds of the driver process (every thread: the loop, Tune's controller, Ray's core
  worker, the MLflow writer) per finished trial. Target: <= 50 ms, flat in concurrency.
- ``nas ms/trial``: the parts nas itself does (propose = sample + profile + constraints, Tune callbacks, the
  writer's MLflow time) per trial, over the whole search.
- ``results/s``: finished trials per wall second, against the ideal ``concurrency / trial seconds``.

    python benchmarks/control_plane.py [--levels 1 8 32 64] [--trials-per-slot 4] [--min-trials 32]

A level is skipped (and said so) when the machine lacks the memory for that many Ray workers (~0.15 GB each).
Results are written to benchmarks/results/control_plane.{json,md}, stamped with commit, command, machine, date.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
WORKER_GB = 0.15  # measured: ~110 MB resident per Ray worker with torch loaded


def mem_available_gb() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) / 2**20
    return 0.0


def experiment(tmp: Path, concurrency: int, trials: int, cpus: float) -> Path:
    space = {"builder": "nas.testing.faults:faulty", "input_shape": [1, 8, 8], "num_classes": 10,
             "params": {"width": {"type": "int", "low": 4, "high": 64}, "mode": "sleep"}}
    (tmp / "space.yaml").write_text(yaml.safe_dump(space))
    doc = {"name": f"control-plane-{concurrency}", "space": "space.yaml", "data": {"name": "digits", "batch_size": 128},
           "objectives": [{"name": "val_accuracy", "direction": "maximize"},
                          {"name": "mflops", "direction": "minimize"}],
           "training": {"epochs": 1}, "search": {"sampler": "random", "trials": trials, "concurrency": concurrency},
           "resources": {"cpu": cpus / concurrency, "gpu": 0},
           "tracking": {"uri": f"sqlite:///{tmp / 'mlflow.db'}", "experiment": "control-plane"}}
    p = tmp / "exp.yaml"
    p.write_text(yaml.safe_dump(doc))
    return p


def run_level(concurrency: int, trials: int, cpus: float) -> dict[str, float]:
    from nas.config.experiment import load_experiment
    from nas.search.api import run_search

    marks: list[tuple[int, float, float]] = []  # (done, wall s, driver cpu s)

    def on_update(state) -> None:
        if not marks or marks[-1][0] != state.done:
            marks.append((state.done, time.perf_counter(), time.process_time()))

    with tempfile.TemporaryDirectory() as d:
        exp = load_experiment(experiment(Path(d), concurrency, trials, cpus))
        t0, c0 = time.perf_counter(), time.process_time()
        result = run_search(exp, storage_path=str(Path(d, "ray")), on_update=on_update, register_models=False)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    done = [r for r in result.records if r.status == "complete"]
    start = next((m for m in marks if m[0] >= concurrency), marks[0])
    end = marks[-1]
    n = max(1, end[0] - start[0])
    o = result.overhead_s
    trial_s = sorted(r.metrics.get("trial_seconds", 0.0) for r in done)[len(done) // 2] if done else float("nan")
    return {
        "concurrency": concurrency, "trials": len(result.records), "complete": len(done),
        "driver_ms_per_trial": 1000 * (end[2] - start[2]) / n,
        "nas_ms_per_trial": 1000 * (o["sampler_s"] + o["profile_s"] + o["propose_s"] + o["callbacks_s"]
                                    + o["tracking_s"]) / max(1, len(result.records)),
        "propose_ms_per_trial": 1000 * (o["sampler_s"] + o["profile_s"] + o["propose_s"]) / max(1, len(result.records)),
        "callbacks_ms_per_trial": 1000 * o["callbacks_s"] / max(1, len(result.records)),
        "tracking_ms_per_trial": 1000 * o["tracking_s"] / max(1, len(result.records)),
        "results_per_s": n / max(1e-9, end[1] - start[1]),
        "ideal_results_per_s": concurrency / trial_s if done else float("nan"),
        "median_trial_s": trial_s, "search_wall_s": wall, "search_driver_cpu_s": cpu,
    }


def stamp(command: str) -> dict[str, str]:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    return {"commit": commit + ("+dirty" if dirty else ""), "command": command,
            "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, "
                       f"{platform.processor() or platform.platform()}, load {os.getloadavg()[0]:.1f} at start",
            "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def table(rows: list[dict[str, float]]) -> str:
    head = ("| concurrency | trials | driver ms/trial | nas ms/trial (propose / callbacks / tracking) | results/s "
            "| ideal results/s |\n|---:|---:|---:|---|---:|---:|\n")
    return head + "".join(
        f"| {r['concurrency']} | {r['trials']} | {r['driver_ms_per_trial']:.1f} | {r['nas_ms_per_trial']:.1f} "
        f"({r['propose_ms_per_trial']:.1f} / {r['callbacks_ms_per_trial']:.1f} / {r['tracking_ms_per_trial']:.1f}) "
        f"| {r['results_per_s']:.2f} | {r['ideal_results_per_s']:.1f} |\n" for r in rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 8, 32, 64])
    ap.add_argument("--trials-per-slot", type=int, default=4, help="trials = max(min-trials, this x concurrency)")
    ap.add_argument("--min-trials", type=int, default=32)
    ap.add_argument("--cpus", type=float, default=2.0, help="CPUs the local Ray cluster advertises")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/control_plane"))
    args = ap.parse_args()
    command = "python benchmarks/control_plane.py " + " ".join(sys.argv[1:])
    meta = stamp(command)
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    from nas.search.backends.ray import init_ray

    init_ray(num_cpus=int(args.cpus))
    rows, skipped = [], []
    for c in args.levels:
        need = c * WORKER_GB + 2.0
        if mem_available_gb() < need:
            skipped.append(f"concurrency {c}: needs ~{need:.0f} GB free for its Ray workers, "
                           f"{mem_available_gb():.1f} GB available")
            print("skipped", skipped[-1], flush=True)
            continue
        trials = max(args.min_trials, args.trials_per_slot * c)
        row = run_level(c, trials, args.cpus)
        rows.append(row)
        print(json.dumps(row), flush=True)
        write(Path(args.out), meta, rows, skipped)  # after every level: a run cut short keeps what it measured
    print(table(rows))
    for s in skipped:
        print("skipped:", s)
    write(Path(args.out), meta, rows, skipped)
    return 0


def write(out: Path, meta: dict[str, str], rows: list[dict[str, float]], skipped: list[str]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps({**meta, "rows": rows, "skipped": skipped}, indent=2))
    out.with_suffix(".md").write_text(
        f"# Control plane at scale\n\ncommit {meta['commit']}, `{meta['command']}`, {meta['machine']}, {meta['date']}\n\n"
        + table(rows) + "".join(f"\nskipped: {s}\n" for s in skipped))


if __name__ == "__main__":
    sys.exit(main())
