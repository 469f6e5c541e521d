"""Fractional GPUs for real: a short `nas search` with `resources.gpu: 0.25`, so up to 4 trials share one GPU.

Runs the engine end to end (local Ray cluster with the machine's GPU, Optuna, MLflow sqlite in a temp dir) on the
digits CNN space, twice: fp32 and AMP. While it runs, a thread samples ``nvidia-smi`` for the processes holding
the GPU. It prints, and writes as JSON under ``--out``: how many trials ran at once (from their start/end times
and from nvidia-smi), that every trial trained on CUDA (``on_gpu``), each trial's peak GPU memory, the wall time,
and the energy the search bill measured (NVML where available).

    python benchmarks/gpu_share.py [--trials 8] [--epochs 6] [--out DIR]

Needs a CUDA machine; the results of the run recorded in the README are in benchmarks/results/gpu_share.md.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


class SmiSampler(threading.Thread):
    """Samples the PIDs of compute processes on the GPU every ``period`` seconds."""

    def __init__(self, period: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.period, self.samples, self.stop_flag = period, [], threading.Event()

    def run(self) -> None:
        while not self.stop_flag.is_set():
            try:
                out = subprocess.run(["nvidia-smi", "--query-compute-apps=pid,used_memory", "--format=csv,noheader"],
                                     capture_output=True, text=True, timeout=5).stdout
                self.samples.append((time.time(), [ln for ln in out.splitlines() if ln.strip()]))
            except (OSError, subprocess.TimeoutExpired):
                pass
            self.stop_flag.wait(self.period)


def max_overlap(intervals: list[tuple[float, float]]) -> int:
    events = sorted([(s, 1) for s, _ in intervals] + [(e, -1) for _, e in intervals], key=lambda x: (x[0], x[1]))
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def one_search(tmp: Path, trials: int, epochs: int, amp: bool) -> dict:
    from nas.config.experiment import load_experiment
    from nas.search.api import run_search

    doc = {
        "name": f"gpu-share-{'amp' if amp else 'fp32'}", "space": str(ROOT / "search_spaces" / "cnn.yaml"),
        "data": {"name": "digits", "seed": 0, "batch_size": 64},
        "objectives": [{"name": "val_accuracy", "direction": "maximize"}, {"name": "mflops", "direction": "minimize"}],
        "constraints": {"params": {"max": 200000}},
        "training": {"epochs": epochs, "lr": 0.003, "amp": amp},
        "search": {"sampler": "random", "trials": trials, "concurrency": 4, "seed": 0},
        "resources": {"cpu": 2, "gpu": 0.25},
        "tracking": {"uri": f"sqlite:///{tmp / 'mlflow.db'}", "experiment": "gpu-share"},
    }
    path = tmp / f"exp-{amp}.yaml"
    path.write_text(yaml.safe_dump(doc))
    exp = load_experiment(path)
    smi = SmiSampler()
    smi.start()
    t0 = time.perf_counter()
    result = run_search(exp, storage_path=str(tmp / "ray"), register_models=False)
    wall = time.perf_counter() - t0
    smi.stop_flag.set()
    smi.join()
    done = [r for r in result.records if r.status == "complete"]
    bill = result.bill
    return {
        "amp": amp, "trials": trials, "completed": len(done), "wall_s": wall,
        "max_concurrent_trials": max_overlap([(r.start_time, r.end_time) for r in done]),
        "max_gpu_processes_seen": max((len(p) for _, p in smi.samples), default=0),
        "smi_samples": len(smi.samples),
        "all_on_gpu": all(r.metrics.get("on_gpu") == 1.0 for r in done),
        "gpu_peak_mem_mb": [round(r.metrics.get("gpu_peak_mem_mb", float("nan")), 1) for r in done],
        "trial_seconds": [round(r.end_time - r.start_time, 2) for r in done],
        "best_val_accuracy": max((r.metrics["val_accuracy"] for r in done), default=None),
        "pareto_size": len(result.pareto),
        "energy_method": getattr(bill, "energy_method", None) if bill else None,
        "energy_kwh": getattr(bill, "energy_kwh", None) if bill else None,
        "failed_reasons": [r.reason for r in result.records if r.status == "failed"],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=8)
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--out", default=os.environ.get("OUT"))
    args = ap.parse_args()
    import torch

    from nas.search.backends.ray import cluster_resources, init_ray

    if not torch.cuda.is_available():
        raise SystemExit("no CUDA device here: run this on a GPU machine")
    init_ray()
    info = {"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "cluster": cluster_resources()}
    rows = []
    with tempfile.TemporaryDirectory() as d:
        for amp in (False, True):
            rows.append(one_search(Path(d), args.trials, args.epochs, amp))
            print(json.dumps(rows[-1]), flush=True)
    report = {"machine": info, "runs": rows}
    print(f"\n{info['gpu']}, torch {info['torch']}, Ray cluster {info['cluster']}; resources.gpu 0.25, concurrency 4\n")
    print("| precision | trials | wall (s) | max trials at once (start/end times) | max processes on the GPU (nvidia-smi) "
          "| all trained on CUDA | peak GPU MiB per trial (max) | best val_accuracy | energy |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        peak = max((m for m in r["gpu_peak_mem_mb"] if m == m), default=float("nan"))
        energy = f"{r['energy_kwh']:.3g} kWh ({r['energy_method']})" if r["energy_kwh"] is not None else "n/a"
        print(f"| {'AMP' if r['amp'] else 'fp32'} | {r['completed']}/{r['trials']} | {r['wall_s']:.1f} | "
              f"{r['max_concurrent_trials']} | {r['max_gpu_processes_seen']} | {r['all_on_gpu']} | {peak:.1f} | "
              f"{r['best_val_accuracy']:.3f} | {energy} |")
    if args.out:
        Path(args.out, "gpu_share.json").write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
