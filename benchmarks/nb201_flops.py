"""Check the nb201 builder's FLOPs and params against all 15,625 rows of the NAS-Bench-201 table.

    .venv/bin/python benchmarks/nb201_flops.py            # one model per weighted-edge pattern (729)
    .venv/bin/python benchmarks/nb201_flops.py --full     # build and count every row (15,625 models)

Each model is built with ``build(space, {"arch": ...})`` from search_spaces/nb201.yaml and counted with
``nas.profile.count_flops`` (batch 1, 3x32x32, 10 classes); params are ``sum(p.numel())``. ``none``,
``skip_connect`` and ``avg_pool_3x3`` have no multiply-adds and no params, so all rows that share the
pattern of ``nor_conv`` edges share both numbers: by default one representative row per pattern is built.
``--verify N`` also builds N random rows from scratch and fails if any differs from its pattern's numbers.
Prints the worst relative error of FLOPs and of params with its row; exits 1 if one is above 2%.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TABLE = ROOT / "benchmarks" / "data" / "nb201" / "nb201_cifar10.csv"
SPACE = ROOT / "search_spaces" / "nb201.yaml"
SHAPE = (3, 32, 32)
TOLERANCE = 0.02


def cost_key(arch: str) -> tuple[str, ...]:
    """The ops of the edges that carry weights (the only ones with MACs or params); the rest are 'free'."""
    from nas.builders.nb201 import arch_to_params

    return tuple(op if op.startswith("nor_conv") else "free" for op in arch_to_params(arch).values())


def _init_worker() -> None:
    import optuna
    import torch

    torch.set_num_threads(1)  # batch-1 tracing gains nothing from intra-op threads
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    logging.basicConfig(level=logging.WARNING)


def measure(arch: str) -> tuple[float, float, int]:
    """(MFLOPs, M params, number of uncounted ops) of the NB201 network with cell ``arch``."""
    from nas.builders import build
    from nas.profile import count_flops
    from nas.space import load_space

    model = build(load_space(SPACE), {"arch": arch})
    flops, _, unsupported = count_flops(model, SHAPE)
    return flops / 1e6, sum(p.numel() for p in model.parameters()) / 1e6, sum(unsupported.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=TABLE)
    parser.add_argument("--full", action="store_true", help="build and count every row")
    parser.add_argument("--verify", type=int, default=50, help="random rows also built from scratch")
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    args = parser.parse_args()

    start = time.perf_counter()
    table = pd.read_csv(args.table, usecols=["index", "arch_str", "flops_M", "params_M"])
    archs = table["arch_str"].tolist()
    keys = archs if args.full else [cost_key(a) for a in archs]
    representative = dict(zip(reversed(keys), reversed(archs), strict=True))  # first row of each key
    rng = np.random.default_rng(0)
    verify_rows = (
        [] if args.full else rng.choice(len(archs), size=min(args.verify, len(archs)), replace=False)
    )
    jobs = list(representative.values()) + [archs[i] for i in verify_rows]
    with Pool(args.jobs, initializer=_init_worker) as pool:
        results = pool.map(measure, jobs, chunksize=8)
    by_key = dict(zip(representative, results[: len(representative)], strict=True))

    ours = np.array([by_key[k][:2] for k in keys])
    uncounted = sum(r[2] for r in results)
    differ = sum(results[len(representative) + j][:2] != tuple(ours[i]) for j, i in enumerate(verify_rows))
    print(
        f"rows: {len(archs)}, models built and counted: {len(jobs)} ({len(representative)} patterns"
        f"{'' if args.full else f' + {len(verify_rows)} random rows from scratch, {differ} differ'}), "
        f"uncounted ops: {uncounted}"
    )
    failed = differ > 0 or uncounted > 0
    for j, col in enumerate(("flops_M", "params_M")):
        theirs = table[col].to_numpy()
        rel = np.abs(ours[:, j] - theirs) / theirs
        worst = int(np.argmax(rel))
        row = table.iloc[worst]
        print(
            f"{col}: worst relative error {rel[worst]:.3e} at index {row['index']} {row['arch_str']}: "
            f"ours {ours[worst, j]:.6f}, table {theirs[worst]:.6f}; rows above {TOLERANCE:.0%}: "
            f"{int((rel > TOLERANCE).sum())}"
        )
        failed |= bool(rel[worst] > TOLERANCE)
    print(f"{'FAIL' if failed else 'OK'} in {time.perf_counter() - start:.0f} s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
