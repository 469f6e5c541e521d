"""NAS-Bench-201 search efficiency: compute to reach 95, 99 and 100 % of the true Pareto hypervolume, for nas and
its peers, on CIFAR-10 and CIFAR-100, at two references and in two billing modes.

    python benchmarks/nb201_search.py --jobs 2                      # seeds 10-19, everything (hours on 2 cores)
    python benchmarks/nb201_search.py --jobs 2 --seeds 3 --out nb201_search   # a reduced run, stamped in results/
    python benchmarks/nb201_search.py --first-seed 0 --methods sha moasha --sha-eta 4   # tuning, seeds 0-9

Pairs: accuracy vs FLOPs on both datasets, accuracy vs Pixel 3 latency on CIFAR-10. The accuracy is the 200-epoch
validation accuracy; the low fidelity the 12-epoch validation accuracy on the same split (``*_valid_acc_12ep``).

Billing, the same for every method (full-training equivalents): an evaluation at 12 epochs costs 0.06, a full
training 1, a promotion from 12 epochs 1 (NB201's 12-epoch schedule is a separate run). Repeats (an architecture
asked again at a fidelity it already has): free (``free``, the default: no method needs to retrain) or paid
(``paid``); both are reported.

References: the accuracy reference is the ``--reference-quantile`` (default 0.146) quantile of the table's
accuracies (:mod:`nas.bench.reference`; 80 % on CIFAR-10, 54 % on CIFAR-100), and 0; the cost reference 1.01 × the
table's largest cost. The true hypervolume is the whole table's under the same reference.

Methods:

- ``nas``: experiments/nb201_bench.yaml through the tabular engine (``nas bench``), the table and columns
  swapped as ``nas bench --table --accuracy-column --low-fidelity-column`` does, with the quantile reference (as
  the peers: MOASHA's decisions use it too). Like a peer's, each run is scored four ways from its events: the
  references and billing modes change the bill and the score, not the decisions. Its own bill (repeats free)
  is checked equal to the replay's (:func:`check_replay`).
- peers (benchmarks/peers/): ``random``, ``nsga2``, ``tpe`` (multivariate), ``gp`` (Optuna's GPSampler, with
  ``--gp-max-compute`` because its cost per trial grows with the trials), ``sha`` (successive halving with
  promotion), ``moasha`` (Syne Tune, priority bug patched).

Knobs (``--sha-eta``, ``--moasha-eta``, nas's settings) are chosen on seeds 0-9; the reported seeds are 10-19.
The results file (``--out NAME``: benchmarks/results/NAME.json and .md) is stamped (benchmarks/_stamp.py).
"""

from __future__ import annotations

import argparse
import logging
import sys
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(ROOT))

from benchmarks._stamp import Stamp, write_results  # noqa: E402
from benchmarks.peers import PEERS, PeerTable, run_peer, true_hypervolume  # noqa: E402
from benchmarks.peers.ledger import score  # noqa: E402
from benchmarks.peers.summary import TARGETS, cell, figures  # noqa: E402
from nas.bench.reference import DEFAULT_REFERENCE_QUANTILE, accuracy_reference  # noqa: E402

EXPERIMENT = ROOT / "experiments" / "nb201_bench.yaml"
DATA = ROOT / "benchmarks" / "data" / "nb201"


@dataclass(frozen=True)
class Dataset:
    table: Path
    accuracy: str
    low: str
    pairs: dict[str, str]  # pair name -> cost column


DATASETS = {
    "cifar10": Dataset(DATA / "nb201_cifar10.csv", "cifar10_valid_acc", "cifar10_valid_acc_12ep",
                       {"flops": "flops_M", "latency_pixel3": "latency_ms_pixel3"}),
    "cifar100": Dataset(DATA / "nb201_cifar100.csv", "cifar100_valid_acc", "cifar100_valid_acc_12ep",
                        {"flops": "flops_M"}),
}
REFERENCES = ("quantile", "zero")
BILLING = ("free", "paid")
METHODS = ("nas", *PEERS)


def peer_table(ds: Dataset, pair: str) -> PeerTable:
    return PeerTable.load(ds.table, accuracy_column=ds.accuracy, low_column=ds.low, cost_column=ds.pairs[pair])


def references(table: PeerTable, quantile: float) -> dict[str, tuple[float, float]]:
    """(accuracy, cost) references: the quantile rule and 0 for the accuracy, 1.01 × the largest cost."""
    cost = 1.01 * float(table.cost.max())
    return {"quantile": (accuracy_reference(table.accuracy, quantile), cost), "zero": (0.0, cost)}


def nas_run(ds: Dataset, pair: str, table: PeerTable, seed: int, ref: tuple[float, float], max_compute: float,
            experiment: str) -> tuple[list[Any], list[tuple[int, bool, bool]]]:
    """One run of the shipped experiment on ``ds``: the table, columns and reference swapped as the ``nas bench``
    flags do. Returns its trajectory (points with ``compute`` and ``hypervolume``) and its events (row of
    ``table``, in full, answered from a known result) for :func:`score`."""
    import nas.bench
    from nas.bench import load_table
    from nas.bench.overrides import with_bench_overrides
    from nas.config.experiment import load_experiment

    run_bench = nas.bench.search_table  # one seed of `nas bench`: the search loop over the table backend

    exp = with_bench_overrides(load_experiment(experiment), table=str(ds.table), cost_column=ds.pairs[pair])
    metric = next(o.name for o in exp.objectives if o.name != "val_accuracy")
    bench = replace(exp.bench, accuracy_columns={200: ds.accuracy, 12: ds.low},
                    cost_columns={metric: ds.pairs[pair]}, reference={"val_accuracy": ref[0], metric: ref[1]})
    exp = replace(exp, bench=bench)
    run = run_bench(exp, load_table(exp), seed=seed, max_evaluations=10**7, max_compute=max_compute)
    return run.trajectory, [(table.rows[arch], full, repeat) for arch, full, repeat in run.events]


def _task(task: tuple[str, str, str, int, dict[str, Any]]) -> tuple[tuple[str, str, str, int], dict[str, Any]]:
    dataset, pair, method, seed, opts = task
    logging.getLogger("optuna").setLevel(logging.WARNING)
    ds = DATASETS[dataset]
    table = peer_table(ds, pair)
    refs = references(table, opts["quantile"])
    budget = opts["gp_max_compute"] if method == "gp" else opts["max_compute"]
    if method == "nas":
        own, events = nas_run(ds, pair, table, seed, refs["quantile"], budget, opts["experiment"])
        check_replay(own, score(events, table, refs["quantile"], repeats_paid=False, max_compute=budget))
    else:
        knobs = {"sha": {"eta": opts["sha_eta"]}, "moasha": {"eta": opts["moasha_eta"]}}.get(method, {})
        events = run_peer(method, table, seed, reference=refs["quantile"], max_compute=budget, **knobs).events
    out = {f"{ref_name}/{billing}": score(events, table, refs[ref_name], repeats_paid=billing == "paid",
                                          max_compute=budget)
           for ref_name in REFERENCES for billing in BILLING}
    return (dataset, pair, method, seed), out


def check_replay(own: list[Any], replay: list[Any]) -> None:
    """nas's own bill (its search loop's curve) and the replay of its events under the benchmark's rules must end
    at the same compute and hypervolume: one billing for every method."""
    a, b = own[-1], replay[-1]
    if abs(a.compute - b.compute) > 1e-6 or abs(a.hypervolume - b.hypervolume) > 1e-9 * max(1.0, a.hypervolume):
        raise AssertionError(f"nas's bill and the replay of its events differ: {a} vs {b}")


def goals(summary: dict[str, Any], datasets: list[str]) -> list[dict[str, Any]]:
    """The issue's goals for nas (quantile reference, repeats free, accuracy vs FLOPs), met or not, with figures."""
    rows = []
    for d in datasets:
        block = summary.get(d, {}).get("flops", {}).get("quantile/free", {})
        nas = block.get("nas")
        if nas is None:
            continue
        peers = {m: f["hv99"]["median"] for m, f in block.items() if m != "nas" and f["hv99"]["median"] is not None}
        best = min(peers, key=peers.__getitem__) if peers else None
        n99, n95 = nas["hv99"], nas["hv95"]
        within = n99["reached"]
        ratio = (peers[best] / n99["median"]) if best and n99["median"] else None
        rows += [
            {"dataset": d, "goal": "95% at <= 25 FTE (median)", "figure": n95["median"],
             "met": n95["median"] is not None and n95["median"] <= 25},
            {"dataset": d, "goal": "99% at median <= 100 FTE", "figure": n99["median"],
             "met": n99["median"] is not None and n99["median"] <= 100},
            {"dataset": d, "goal": ">= 80% of seeds reach 99% within the budget",
             "figure": f"{within}/{nas['seeds']}", "met": within >= 0.8 * nas["seeds"]},
            {"dataset": d, "goal": ">= 3x less compute to 99% than the best peer",
             "figure": (f"{ratio:.2f}x vs {best} ({peers[best]:.1f})" if ratio else
                        f"no ratio: nas median {'-' if n99['median'] is None else format(n99['median'], '.1f')}, "
                        f"no peer reached 99% (median) within its budget" if best is None else
                        f"no ratio: nas did not reach 99% (median); best peer {best} {peers[best]:.1f}"),
             "met": ratio is not None and ratio >= 3},
        ]
    return rows


def readme_rows(result: dict[str, Any]) -> list[dict[str, str]]:
    """The README rows of a results file: per dataset, pair and method, at both references with repeats free,
    compute to 95 and 99 % (median over the seeds) and the final hypervolume; then the goals for nas."""
    seeds = result["seeds"]
    span = f"seed {seeds[0]}" if len(seeds) == 1 else f"seeds {seeds[0]}-{seeds[-1]}"
    rows = []
    for d, pairs in result["summary"].items():
        for pair, modes in pairs.items():
            for m in modes.get("quantile/free", {}):
                figs = []
                for mode in ("quantile/free", "zero/free"):
                    f = modes.get(mode, {}).get(m)
                    if f is None:
                        continue
                    figs.append(f"reference {mode.split('/')[0]} ({f['reference'][0]:.3f}): 95% at {cell(f, 'hv95')}, "
                                f"99% at {cell(f, 'hv99')} ({f['hv99']['reached']}/{f['seeds']} seeds), final "
                                f"{100 * f['final_hv_median']:.2f}%")
                budget = next(iter(modes.values()))[m]["budget"]
                rows.append({"what": f"NB201 {d}, accuracy vs {pair}, {m} ({span}, budget {budget:g} FTE, repeats free)",
                             "figure": "; ".join(figs)})
    for g in result.get("goals", []):
        fig = g["figure"] if not isinstance(g["figure"], float) else f"{g['figure']:.1f}"
        rows.append({"what": f"NB201 {g['dataset']}, goal for nas: {g['goal']} ({span})",
                     "figure": f"{fig}: {'met' if g['met'] else 'not met'}"})
    return rows


def markdown(summary: dict[str, Any], goal_rows: list[dict[str, Any]], opts: dict[str, Any], seeds: range) -> str:
    lines = [f"Seeds {seeds.start}-{seeds.stop - 1}; budget {opts['max_compute']:g} full-training equivalents (GP "
             f"{opts['gp_max_compute']:g}); compute to each share of the true hypervolume: median [25th, 75th "
             "percentile] over seeds, `-` when half the seeds did not reach it; knobs: sha eta "
             f"{opts['sha_eta']:g}, moasha eta {opts['moasha_eta']:g}."]
    for d, pairs in summary.items():
        for pair, modes in pairs.items():
            for mode, methods in modes.items():
                ref_name, billing = mode.split("/")
                lines += [f"\n**{d}, accuracy vs {DATASETS[d].pairs[pair]}**, reference {ref_name} "
                          f"({methods and next(iter(methods.values()))['reference'][0]:.4f}), repeats {billing}\n",
                          "| method | to 95% | to 99% | to 100% | seeds reaching 99% | final HV % (median) |",
                          "|---|---|---|---|---|---|"]
                for m, f in methods.items():
                    lines.append(f"| {m} | {cell(f, 'hv95')} | {cell(f, 'hv99')} | {cell(f, 'hv100')} | "
                                 f"{f['hv99']['reached']}/{f['seeds']} | {100 * f['final_hv_median']:.2f} |")
    if goal_rows:
        lines += ["\n**Goals for nas** (reference quantile, repeats free, accuracy vs FLOPs)\n",
                  "| dataset | goal | figure | met |", "|---|---|---|---|"]
        for g in goal_rows:
            fig = g["figure"] if not isinstance(g["figure"], float) else f"{g['figure']:.1f}"
            lines.append(f"| {g['dataset']} | {g['goal']} | {fig} | {'met' if g['met'] else 'not met'} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--experiment", default=str(EXPERIMENT), help="nas's configuration (default: %(default)s)")
    ap.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS))
    ap.add_argument("--pairs", nargs="+", choices=["flops", "latency_pixel3"], default=["flops", "latency_pixel3"])
    ap.add_argument("--methods", nargs="+", choices=list(METHODS), default=list(METHODS))
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--first-seed", type=int, default=10, help="default 10: knobs were chosen on seeds 0-9")
    ap.add_argument("--max-compute", type=float, default=300.0, help="full-training equivalents per run")
    ap.add_argument("--gp-max-compute", type=float, default=100.0, help="budget of the GP sampler (its cost)")
    ap.add_argument("--reference-quantile", type=float, default=DEFAULT_REFERENCE_QUANTILE)
    ap.add_argument("--sha-eta", type=float, default=16.0, help="chosen on seeds 0-9 among 2-16 (README)")
    ap.add_argument("--moasha-eta", type=float, default=3.0)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes (the box is shared: default 1)")
    ap.add_argument("--out", help="write benchmarks/results/OUT.json and OUT.md, stamped")
    args = ap.parse_args(argv)
    stamp = Stamp.start(None if argv is None else [__file__, *argv])
    opts = {"quantile": args.reference_quantile, "max_compute": args.max_compute, "gp_max_compute": args.gp_max_compute,
            "sha_eta": args.sha_eta, "moasha_eta": args.moasha_eta,
            "experiment": args.experiment}
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    tasks = [(d, p, m, s, opts) for d in args.datasets for p in args.pairs if p in DATASETS[d].pairs
             for m in args.methods for s in seeds]
    tasks.sort(key=lambda t: t[2] != "nas")  # the long ones first
    if args.jobs > 1:
        with ProcessPoolExecutor(args.jobs) as pool:
            done = list(pool.map(_task, tasks))
    else:
        done = [_task(t) for t in tasks]
    runs: dict[tuple[str, str, str], dict[str, list[Any]]] = {}
    for (d, p, m, _), by_mode in done:
        for mode, traj in by_mode.items():
            runs.setdefault((d, p, m), {}).setdefault(mode, []).append(traj)
    summary: dict[str, Any] = {}
    for (d, p, m), by_mode in sorted(runs.items(), key=lambda kv: (kv[0][0], kv[0][1], METHODS.index(kv[0][2]))):
        table = peer_table(DATASETS[d], p)
        refs = references(table, args.reference_quantile)
        for mode, trajs in by_mode.items():
            ref = refs[mode.split("/")[0]]
            fig = {**figures(trajs, true_hypervolume(table, ref)), "reference": ref,
                   "budget": args.gp_max_compute if m == "gp" else args.max_compute}
            summary.setdefault(d, {}).setdefault(p, {}).setdefault(mode, {})[m] = fig
    goal_rows = goals(summary, args.datasets)
    text = markdown(summary, goal_rows, opts, seeds)
    stamp.finish()
    print(text)
    print(f"\nwall time {stamp.wall_s} s ({args.jobs} process{'es' if args.jobs > 1 else ''})")
    result = {"options": {k: v for k, v in opts.items() if k != "experiment"}, "seeds": list(seeds),
              "targets": list(TARGETS), "summary": summary, "goals": goal_rows}
    if args.out:
        readme = readme_rows(result)
        write_results(args.out, result, stamp=stamp, markdown=text, readme=readme)
    return result


if __name__ == "__main__":
    main()
