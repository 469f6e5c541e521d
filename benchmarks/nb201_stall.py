"""Why nas stalls short of 99 % of the true hypervolume on CIFAR-100 (issue 14): where the cells of the true front
sit at the low fidelity.

    python benchmarks/nb201_stall.py --out nb201_stall

For each dataset (accuracy vs FLOPs, the quantile reference), every cell of the true front: its FLOPs, its
200-epoch and 12-epoch validation accuracy, its non-dominated layer at 12 epochs over the whole table (0: on the
12-epoch front), how many cells are the same network (isomorphic, :func:`nb201_cell`), and the share of the true
hypervolume lost without it. A search that trains in full only what ranks in the first few layers at 12 epochs
cannot find a cell that sits deeper; 99 % allows losing 1 % in all.

Then what a search that never trains a network twice can reach: NB201 trained isomorphic cells separately, so
their accuracies differ by seed noise and the true front takes the luckiest; the hypervolume of one random
member per network (``--draws`` draws) is the most such a search can expect.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import moocore
import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make `benchmarks.*` importable
    sys.path.insert(0, str(ROOT))

from benchmarks._stamp import Stamp, write_results  # noqa: E402
from benchmarks.nb201_search import DATASETS, peer_table, references  # noqa: E402
from benchmarks.peers import PeerTable  # noqa: E402
from benchmarks.peers.ledger import Front, true_hypervolume  # noqa: E402
from nas.bench.reference import DEFAULT_REFERENCE_QUANTILE  # noqa: E402
from nas.search.controller.repeats import nb201_cell  # noqa: E402


def networks(table: PeerTable) -> dict[str, list[int]]:
    """The rows of each network (its canonical cell, :func:`nb201_cell`): isomorphic cells together."""
    members: dict[str, list[int]] = {}
    for i, arch in enumerate(table.archs):
        members.setdefault(nb201_cell(arch), []).append(i)
    return members


def front_cells(table: PeerTable, ref: tuple[float, float], members: dict[str, list[int]]) -> list[dict[str, Any]]:
    """The true front's cells of ``table`` (accuracy vs cost) under ``ref`` and where each sits at 12 epochs."""
    full = np.column_stack([-table.accuracy, table.cost])
    low = np.column_stack([-table.low_accuracy, table.cost])
    front = np.flatnonzero(moocore.is_nondominated(full) & (table.accuracy > ref[0]))
    layer_all = moocore.pareto_rank(low)
    total = true_hypervolume(table, ref)
    rows = []
    for i in sorted(front, key=lambda i: table.cost[i]):
        rest = Front(ref)
        for j in front:
            if j != i:
                rest.add(float(table.accuracy[j]), float(table.cost[j]))
        rows.append({"arch": table.archs[i], "flops_M": float(table.cost[i]),
                     "acc_200": 100 * float(table.accuracy[i]), "acc_12": 100 * float(table.low_accuracy[i]),
                     "layer_12": int(layer_all[i]), "same_network": len(members[nb201_cell(table.archs[i])]),
                     "hv_share_lost_pct": 100 * (total - rest.hypervolume) / total})
    return rows


def one_per_network(table: PeerTable, ref: tuple[float, float], members: dict[str, list[int]], draws: int,
                    seed: int = 0) -> list[float]:
    """The hypervolume of one random member per network, as a share of the true one (%), ``draws`` times."""
    total, rng, out = true_hypervolume(table, ref), np.random.default_rng(seed), []
    for _ in range(draws):
        front = Front(ref)
        for rows in members.values():
            i = int(rng.choice(rows))
            front.add(float(table.accuracy[i]), float(table.cost[i]))
        out.append(100 * front.hypervolume / total)
    return out


def study(dataset: str, quantile: float, draws: int) -> dict[str, Any]:
    """Both parts of the study for ``dataset`` (accuracy vs FLOPs, the quantile reference)."""
    table = peer_table(DATASETS[dataset], "flops")
    ref = references(table, quantile)["quantile"]
    members = networks(table)
    return {"front_cells": front_cells(table, ref, members),
            "one_per_network_pct": one_per_network(table, ref, members, draws)}


def markdown(result: dict[str, dict[str, Any]]) -> str:
    lines = []
    for d, res in result.items():
        rows, share = res["front_cells"], res["one_per_network_pct"]
        deep = [r for r in rows if r["layer_12"] >= 3]
        lines += [f"\n**{d}**: {len(rows)} front cells; {len(deep)} sit at layer 3 or deeper at 12 epochs, worth "
                  f"{sum(r['hv_share_lost_pct'] for r in deep):.2f}% of the true hypervolume (each alone). One random "
                  f"member per network reaches {np.median(share):.2f}% of it (median of {len(share)} draws; "
                  f"{min(share):.2f} to {max(share):.2f}).\n",
                  "| MFLOPs | acc 200 ep % | acc 12 ep % | layer at 12 ep | cells of its network | "
                  "HV lost without it % |", "|---|---|---|---|---|---|"]
        lines += [f"| {r['flops_M']:.2f} | {r['acc_200']:.2f} | {r['acc_12']:.2f} | {r['layer_12']} | "
                  f"{r['same_network']} | {r['hv_share_lost_pct']:.2f} |" for r in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reference-quantile", type=float, default=DEFAULT_REFERENCE_QUANTILE)
    ap.add_argument("--draws", type=int, default=20)
    ap.add_argument("--out", help="write benchmarks/results/OUT.json and OUT.md, stamped")
    args = ap.parse_args(argv)
    stamp = Stamp.start(None if argv is None else [__file__, *argv])
    result = {d: study(d, args.reference_quantile, args.draws) for d in DATASETS}
    text = markdown(result)
    stamp.finish()
    print(text)
    if args.out:
        write_results(args.out, {"datasets": result}, stamp=stamp, markdown=text)
    return result


if __name__ == "__main__":
    main()
