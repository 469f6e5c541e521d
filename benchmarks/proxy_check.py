"""Check our zero-cost proxies against NASLib's on the 724 NAS-Bench-201 cells of its published scores.

    .venv/bin/python benchmarks/proxy_check.py               # all 724 cells, fails if synflow/naswot miss
    .venv/bin/python benchmarks/proxy_check.py --limit 50    # a quick run on the first 50 cells
    .venv/bin/python benchmarks/proxy_check.py --no-fail     # report only
    .venv/bin/python benchmarks/proxy_check.py --input gauss --proxies naswot --no-fail   # a variant

For every cell of ``benchmarks/data/nb201/naslib_zero_cost_cifar10.json`` this builds the nb201 network
(``build(space, params, seed=0)``), scores it with ``synflow``, ``naswot``, ``snip``, ``grad_norm`` and
``params``, and prints a markdown table: each proxy's Spearman ρ with the cells' ``val_accuracy``, the ρ of
NASLib's own scores in the JSON (recomputed with scipy on the same cells), the published figure, and
|Δ| = |our ρ - published|. A last column gives the rank agreement (ρ) of our scores with NASLib's, cell by
cell. Exits 1 when synflow or naswot misses the published ρ by more than 0.05 (``--no-fail``: report only).
On a ``--limit`` run the band is checked against NASLib's ρ on the same cells, since the published figures
are for all 724.

The batch: NASLib scored its networks on one CIFAR-10 batch, which is not on this machine (offline). We use
a fixed batch of ``--batch`` random images with random labels, from ``--seed``: by default U[0, 1) pixels
(``--input gauss``: N(0, 1)). synflow does not read it (all-ones input by definition); naswot, snip and
grad_norm do. naswot is the one that cares: on every third cell (242), with NASLib's own nwot at ρ 0.812,
U[0, 1) gave ρ 0.80 at batch 16, 32 and 64 and for two seeds, but zero-mean inputs gave 0.74 (N(0, 1) at
batch 32, and the same uniform batch standardized to mean 0), 0.765 at batch 64, and N(1, 1) 0.79. Pixels
that share a positive mean, as real images share structure, make the samples' activation patterns overlap,
which is where architectures differ; i.i.d. zero-mean noise gives near-orthogonal codes for every cell.
BatchNorm runs in train mode, as in NASLib (eval mode dropped ρ by about 0.06 on a 60-cell sample).
snip and grad_norm share one backward pass here (``nas.proxies.gradient.weight_gradients``), exactly what
each registered proxy computes on its own.

Key mapping: the JSON's keys are tuples of op indices in NASLib's op order (0 skip_connect, 1 none,
2 nor_conv_3x3, 3 nor_conv_1x1, 4 avg_pool_3x3) and NASLib's edge order ((1,2), (1,3), (1,4), (2,3), (2,4),
(3,4) over its nodes 1-4), i.e. our edges 1<-0, 2<-0, 3<-0, 2<-1, 3<-1, 3<-2. Param counts cannot tell
edge orders apart (they count ops); this order makes every cell's ``val_accuracy`` agree with
``cifar10_valid_acc`` of nb201_cifar10.csv within 2.5 points (median 0.3), the official string order does
not (errors up to 79 points). Each built network's param count must equal the cell's ``params`` score.

Scores are cached per cell (``--cache``, default under ``~/.cache/nas``), keyed by the batch settings and
torch version and the proxy code, so a rerun only computes what is missing (``--no-cache`` recomputes all). Cells run in
``--jobs`` worker processes with one torch thread each (on a busy 2-core box, one process with 2
torch threads is several times slower than 2 processes with one thread each). Ends with the time each proxy takes on a digits CNN and on the
largest NB201 cell (one thread).
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import math
import multiprocessing as mp
import os
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from scipy.stats import spearmanr

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nas.builders import build  # noqa: E402
from nas.proxies import compute_proxy  # noqa: E402
from nas.proxies.gradient import grad_norm_score, snip_score, weight_gradients  # noqa: E402
from nas.space import load_space  # noqa: E402

DATA = ROOT / "benchmarks" / "data" / "nb201" / "naslib_zero_cost_cifar10.json"
SPACE = ROOT / "search_spaces" / "nb201.yaml"
SHAPE = (3, 32, 32)
CLASSES = 10
NASLIB_OPS = ("skip_connect", "none", "nor_conv_3x3", "nor_conv_1x1", "avg_pool_3x3")
NASLIB_EDGES = ("edge_1_0", "edge_2_0", "edge_3_0", "edge_2_1", "edge_3_1", "edge_3_2")
#: our proxy -> (the JSON's key, NASLib's published Spearman ρ with val_accuracy on the 724 cells)
PUBLISHED: dict[str, tuple[str, float]] = {
    "synflow": ("synflow", 0.736),
    "naswot": ("nwot", 0.787),
    "snip": ("snip", 0.608),
    "grad_norm": ("grad_norm", 0.607),
    "params": ("params", 0.738),
}
CHECKED = ("synflow", "naswot")
INPUTS = ("uniform", "gauss")
BAND = 0.05
LARGEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|"


def cell_params(key: str) -> dict[str, str]:
    """The nb201 edge params of a NASLib key such as ``"(0, 2, 3, 2, 3, 1)"``."""
    idx = [int(i) for i in key.strip("()").split(",")]
    return {edge: NASLIB_OPS[i] for edge, i in zip(NASLIB_EDGES, idx, strict=True)}


def make_batch(n: int, kind: str, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` images of 3x32x32 (U[0, 1) or N(0, 1) pixels) and random labels, from a private generator."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand((n, *SHAPE), generator=g) if kind == "uniform" else torch.randn((n, *SHAPE), generator=g)
    return x, torch.randint(0, CLASSES, (n,), generator=g)


_WORKER: dict[str, Any] = {}


def _init_worker(batch: int, kind: str, seed: int) -> None:
    torch.set_num_threads(1)
    _WORKER["space"] = load_space(SPACE)
    _WORKER["x"], _WORKER["y"] = make_batch(batch, kind, seed)


def score_cell(job: tuple[str, tuple[str, ...]]) -> tuple[str, dict[str, float], dict[str, float]]:
    """``(key, scores, seconds)`` of one cell for the proxies named in ``job``; ``params`` always."""
    key, names = job
    x, y = _WORKER["x"], _WORKER["y"]
    scores: dict[str, float] = {}
    seconds: dict[str, float] = {}
    t = time.perf_counter()
    model = build(_WORKER["space"], cell_params(key), seed=0)
    seconds["build"] = time.perf_counter() - t
    for name in ("params", *(n for n in ("synflow", "naswot") if n in names)):
        t = time.perf_counter()
        scores[name] = compute_proxy(name, model, x, y)
        seconds[name] = time.perf_counter() - t
    if "snip" in names or "grad_norm" in names:
        t = time.perf_counter()
        pairs = weight_gradients(model, x, y)
        scores["snip"], scores["grad_norm"] = snip_score(pairs), grad_norm_score(pairs)
        seconds["snip+grad_norm"] = time.perf_counter() - t
    return key, scores, seconds


def code_fingerprint(path: Path) -> str:
    """The code of a Python file without its comments and docstrings: editing prose keeps the cache."""
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr):
            if isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]  # type: ignore[attr-defined]
    return ast.dump(tree)


def cache_path(args: argparse.Namespace) -> Path:
    """One cache file per batch setting, torch version and version of the proxy and nb201 code."""
    if args.cache:
        return Path(args.cache)
    sources = [*sorted((ROOT / "nas" / "proxies").glob("*.py")), ROOT / "nas" / "builders" / "nb201.py"]
    digest = hashlib.sha256("".join(code_fingerprint(p) for p in sources).encode()).hexdigest()[:8]
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "nas" / "proxy_check"
    return base / f"b{args.batch}-{args.input}-s{args.seed}-torch{torch.__version__}-{digest}.json"


def run_cells(jobs: list[tuple[str, tuple[str, ...]]], args: argparse.Namespace) -> Iterator:
    """Score ``jobs`` (cell key, proxies to compute) in ``args.jobs`` processes, yielding as they finish."""
    if not jobs:
        return
    init = (args.batch, args.input, args.seed)
    if args.jobs <= 1:
        _init_worker(*init)
        yield from map(score_cell, jobs)
        return
    with mp.get_context("spawn").Pool(args.jobs, initializer=_init_worker, initargs=init) as pool:
        yield from pool.imap_unordered(score_cell, jobs, chunksize=4)


def rho(a: list[float], b: list[float]) -> float:
    return float(spearmanr(a, b).statistic)


def time_proxies(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, repeats: int = 5
) -> dict[str, float]:
    """Median wall time (s) of each proxy on ``model``, one thread, after one warm-up."""
    out = {}
    for name in PUBLISHED:
        compute_proxy(name, model, x, y)
        runs = []
        for _ in range(repeats):
            t = time.perf_counter()
            compute_proxy(name, model, x, y)
            runs.append(time.perf_counter() - t)
        out[name] = statistics.median(runs)
    return out


def timing_report(args: argparse.Namespace) -> None:
    from nas.data import load_data

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        splits = load_data("digits", seed=0)
        xd, yd = (t[: args.batch] for t in splits.train.tensors)
        cnn_space = load_space(ROOT / "search_spaces" / "cnn.yaml")
        cnn = build(cnn_space, cnn_space.sample_random(4), seed=0)  # the largest of the first few samples
        xn, yn = make_batch(args.batch, args.input, args.seed)
        nb = build(load_space(SPACE), {"arch": LARGEST}, seed=0)
        rows = [
            ("digits CNN", f"{sum(p.numel() for p in cnn.parameters()):,}", time_proxies(cnn, xd, yd)),
            (
                "NB201, all conv3x3",
                f"{sum(p.numel() for p in nb.parameters()):,}",
                time_proxies(nb, xn, yn, 3),
            ),
        ]
    finally:
        torch.set_num_threads(threads)
    print(f"\nTime per proxy call (median, 1 thread, batch {args.batch}; includes the deep copy):\n")
    print("| model | params | " + " | ".join(PUBLISHED) + " |")
    print("|---|---:|" + "---:|" * len(PUBLISHED))
    for label, n, t in rows:
        print(f"| {label} | {n} | " + " | ".join(f"{t[p] * 1e3:.0f} ms" for p in PUBLISHED) + " |")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--limit", type=int, default=None, help="only the first N cells")
    ap.add_argument("--no-fail", action="store_true", help="report only; exit 0 even outside the band")
    ap.add_argument("--batch", type=int, default=32, help="batch size for naswot, snip and grad_norm")
    ap.add_argument("--input", choices=INPUTS, default="uniform", help="U[0,1) or N(0,1) images")
    ap.add_argument("--seed", type=int, default=0, help="seed of the batch")
    ap.add_argument("--proxies", default=",".join(PUBLISHED), help="comma-separated subset to score")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="worker processes")
    ap.add_argument("--cache", default=None, help="cache file (default under ~/.cache/nas/proxy_check)")
    ap.add_argument("--no-cache", action="store_true", help="recompute every cell")
    ap.add_argument("--no-timing", action="store_true", help="skip the per-proxy timing table")
    args = ap.parse_args(argv)
    names = tuple(n for n in PUBLISHED if n in {p.strip() for p in args.proxies.split(",")})
    unknown = {p.strip() for p in args.proxies.split(",")} - set(PUBLISHED)
    if unknown or not names:
        ap.error(f"--proxies: unknown {sorted(unknown)}; choose from {', '.join(PUBLISHED)}")

    cells: dict[str, dict[str, Any]] = json.loads(DATA.read_text())
    keys = list(cells)[: args.limit] if args.limit else list(cells)
    path = cache_path(args)
    cached: dict[str, dict[str, float]] = {}
    if not args.no_cache and path.exists():
        cached = {k: v for k, v in json.loads(path.read_text()).items() if k in cells}
    jobs = [(k, missing) for k in keys if (missing := tuple(n for n in names if n not in cached.get(k, {})))]
    print(
        f"{len(keys)} cells; batch {args.batch} x {args.input}, seed {args.seed}; {args.jobs} job(s); "
        f"cache {path} ({len(keys) - len(jobs)} cells complete)",
        flush=True,
    )

    t0 = time.perf_counter()
    times: dict[str, list[float]] = {}
    for i, (key, scores, seconds) in enumerate(run_cells(jobs, args), start=1):
        cached.setdefault(key, {}).update(scores)
        for name, sec in seconds.items():
            times.setdefault(name, []).append(sec)
        if i % 100 == 0 or i == len(jobs):
            print(f"  {i}/{len(jobs)} cells scored, {time.perf_counter() - t0:.0f} s", flush=True)
    if jobs:
        per = ", ".join(f"{n} {statistics.mean(v) * 1e3:.0f} ms" for n, v in times.items())
        print(f"scored {len(jobs)} cells in {time.perf_counter() - t0:.0f} s; mean per cell: {per}")
        if not args.no_cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(cached))

    bad = [k for k in keys if not math.isclose(cached[k]["params"] / 1e6, cells[k]["params"]["score"])]
    if bad:
        print(f"MAPPING ERROR: {len(bad)} cells' param counts differ from the JSON's, e.g. {bad[0]}")
        return 2

    acc = [cells[k]["val_accuracy"] for k in keys]
    full = len(keys) == len(cells)
    print(f"\nSpearman ρ with val_accuracy on {len(keys)} NAS-Bench-201 cells (CIFAR-10):\n")
    print("| proxy | our ρ | NASLib's ρ (its JSON scores) | published | \\|Δ\\| | ρ(ours, NASLib's scores) |")
    print("|---|---:|---:|---:|---:|---:|")
    failed = []
    for name in names:
        json_key, published = PUBLISHED[name]
        ours = [cached[k][name] for k in keys]
        theirs = [cells[k][json_key]["score"] for k in keys]
        r_ours, r_theirs = rho(ours, acc), rho(theirs, acc)
        mark = ""
        if name in CHECKED:
            ok = abs(r_ours - (published if full else r_theirs)) <= BAND
            mark = " ✓" if ok else " ✗"
            failed += [] if ok else [name]
        print(
            f"| {name}{mark} | {r_ours:.3f} | {r_theirs:.3f} | {published:.3f} | {abs(r_ours - published):.3f} "
            f"| {rho(ours, theirs):.3f} |"
        )
    checked = [n for n in CHECKED if n in names]
    ref = "the published ρ" if full else f"NASLib's ρ on these {len(keys)} cells"
    print(f"\nBand: |our ρ - {ref}| <= {BAND} for {', '.join(checked) or 'nothing scored here'}.")
    if not args.no_timing:
        timing_report(args)
    if failed:
        print(f"\nOUTSIDE THE BAND: {', '.join(failed)}")
        return 0 if args.no_fail else 1
    if checked:
        print(f"\n{' and '.join(checked)} within the band.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
