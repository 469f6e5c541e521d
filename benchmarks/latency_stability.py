"""Latency you can trust: measure every model of a small search twice, under load, and rank-correlate the passes.

The models are those a random-sampler search of ``--experiment`` (default: the demo, experiments/digits_cnn.yaml)
would train: ``--models`` architectures drawn with ``Space.sample_random`` (the draw the controller uses), built
for the experiment's data. Each model's latency is measured with :func:`nas.profile.measure_latency` (batch
``profile.batch_size``; warm-up and repeats per setting below), in two passes, the second in the reverse order,
while ``--load`` extra processes spin on the CPU (the machine itself is shared, too). Per setting it reports:

- Spearman's rho between the two passes' medians (the issue's goal: >= 0.9), and between the two passes'
  first quartiles, for comparison;
- the median over models of the relative spread (IQR / median) within one measurement;
- the median over models of |pass 2 / pass 1 - 1| and the worst ratio max/min of a model's two medians;
- the wall time per measurement.

Settings: ``trial`` is what a trial measured before (warm-up 2, 5 repeats); ``profile`` the experiment's
``profile:`` section (warm-up and repeats) on 1 thread; further ones from ``--settings W:R``.

    python benchmarks/latency_stability.py                     # 24 models of the demo space, 2 spinning processes
    python benchmarks/latency_stability.py --models 8 --load 0 # a quick look
    python benchmarks/latency_stability.py --out latency_stability   # also benchmarks/results/latency_stability.*
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks._stamp` importable
    sys.path.insert(0, str(ROOT))

from benchmarks._stamp import Stamp, write_results  # noqa: E402
from nas.builders import build  # noqa: E402
from nas.config.experiment import load_experiment  # noqa: E402
from nas.profile import measure_latency  # noqa: E402
from nas.space.space import load_space  # noqa: E402
from nas.training.trial import cached_splits  # noqa: E402

EXPERIMENT = ROOT / "experiments" / "digits_cnn.yaml"


def _spin(stop: Any) -> None:
    x = 0
    while not stop.is_set():
        for _ in range(100_000):
            x += 1


def models(experiment: Path, n: int, first_seed: int = 0) -> tuple[list[torch.nn.Module], tuple[int, ...], Any]:
    """``n`` architectures of the experiment's space (random draws ``first_seed``..), built for its data."""
    exp = load_experiment(experiment)
    space = load_space(exp.space)
    splits = cached_splits(asdict(exp.data))
    out = []
    seed = first_seed
    while len(out) < n:
        try:
            out.append(build(space, space.sample_random(seed), input_shape=splits.input_shape,
                             num_classes=splits.num_classes))
        except Exception:  # an unbuildable draw is a failed trial in a search; skip it here
            pass
        seed += 1
    return out, tuple(splits.input_shape), exp


def passes(nets: list[torch.nn.Module], shape: tuple[int, ...], batch: int, warmup: int, repeats: int,
           threads: int) -> tuple[list[Any], list[Any], float]:
    """Two passes over ``nets`` (the second reversed); each model's :class:`Latency` per pass, and seconds per
    measurement."""
    x = torch.randn(batch, *shape)
    t0 = time.perf_counter()
    first = [measure_latency(m, x, warmup=warmup, repeats=repeats, threads=threads) for m in nets]
    second = [measure_latency(m, x, warmup=warmup, repeats=repeats, threads=threads) for m in reversed(nets)][::-1]
    return first, second, (time.perf_counter() - t0) / (2 * len(nets))


def figures(first: list[Any], second: list[Any]) -> dict[str, float]:
    """Rank agreement and spread of two passes (see the module docstring)."""
    a, b = [m.median_ms for m in first], [m.median_ms for m in second]

    def rho(stat: Any) -> float:
        return float(spearmanr([stat(m.times_ms) for m in first], [stat(m.times_ms) for m in second])[0])

    return {
        "spearman_median": float(spearmanr(a, b)[0]),
        "spearman_q1": rho(lambda t: statistics.quantiles(t, n=4, method="inclusive")[0] if len(t) > 1 else t[0]),
        "spearman_min": rho(min),
        "median_latency_ms": statistics.median(a + b),
        "rel_iqr_median": statistics.median(m.iqr_ms / m.median_ms for m in first + second),
        "rel_change_median": statistics.median(abs(y / x - 1) for x, y in zip(a, b, strict=True)),
        "worst_ratio": max(max(x, y) / min(x, y) for x, y in zip(a, b, strict=True)),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default=str(EXPERIMENT))
    ap.add_argument("--models", type=int, default=24, help="architectures drawn from the space (default 24)")
    ap.add_argument("--load", type=int, default=2, help="extra CPU-spinning processes during the passes")
    ap.add_argument("--threads", type=int, default=1, help="torch threads of the measurement (default 1)")
    ap.add_argument("--settings", nargs="*", default=["20:50"], help="more WARMUP:REPEATS settings to compare")
    ap.add_argument("--out", help="write benchmarks/results/OUT.json and .md (stamped)")
    args = ap.parse_args(argv)
    stamp = Stamp.start(None if argv is None else [__file__, *argv])
    nets, shape, exp = models(Path(args.experiment), args.models)
    p = exp.profile
    settings = {"trial (2, 5)": (2, 5), f"profile ({p.warmup}, {p.repeats})": (p.warmup, p.repeats)}
    for s in args.settings:
        w, r = (int(v) for v in s.split(":"))
        settings[f"({w}, {r})"] = (w, r)
    ctx = mp.get_context("spawn")
    stop = ctx.Event()
    spinners = [ctx.Process(target=_spin, args=(stop,), daemon=True) for _ in range(args.load)]
    for proc in spinners:
        proc.start()
    rows: dict[str, dict[str, Any]] = {}
    try:
        for name, (warmup, repeats) in settings.items():
            first, second, per = passes(nets, shape, p.batch_size, warmup, repeats, args.threads)
            rows[name] = {"warmup": warmup, "repeats": repeats, "threads": first[0].threads,
                          "seconds_per_measurement": per, **figures(first, second)}
    finally:
        stop.set()
        for proc in spinners:
            proc.join(5)
    stamp.finish()
    lines = [f"{len(nets)} models of {Path(args.experiment).name}'s space (batch {p.batch_size}, input {shape}), "
             f"two passes each (the second reversed), {args.load} extra spinning processes on "
             f"{os.cpu_count()} cores, {args.threads} torch thread(s)\n",
             "| setting (warm-up, repeats) | Spearman rho of the medians, pass 1 vs 2 | rho of 25th percentiles "
             "| rho of minima | median latency (ms) | spread IQR/median (median) | change between passes (median) "
             "| worst ratio | s per measurement |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['spearman_median']:.3f} | {r['spearman_q1']:.3f} | {r['spearman_min']:.3f} | "
                     f"{r['median_latency_ms']:.3f} | "
                     f"{100 * r['rel_iqr_median']:.1f}% | {100 * r['rel_change_median']:.1f}% | "
                     f"{r['worst_ratio']:.2f} | {r['seconds_per_measurement']:.3f} |")
    text = "\n".join(lines)
    print(text)
    print(f"\nwall time {stamp.wall_s} s")
    result = {"experiment": args.experiment, "models": len(nets), "load_processes": args.load,
              "threads": args.threads, "settings": rows}
    if args.out:
        prof = rows[f"profile ({p.warmup}, {p.repeats})"]
        readme = [{"what": f"latency stability: {len(nets)} models of the demo space measured twice under load "
                           f"({args.load} spinning processes), Spearman rho between passes (goal >= 0.9)",
                   "figure": "; ".join(f"{n}: {r['spearman_median']:.3f}" for n, r in rows.items())
                             + f" (profile setting: spread {100 * prof['rel_iqr_median']:.1f}% IQR/median)"}]
        write_results(args.out, result, stamp=stamp, markdown=text, readme=readme)
    return result


if __name__ == "__main__":
    main()
