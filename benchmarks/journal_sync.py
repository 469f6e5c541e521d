"""Per-trial cost of the study journal's durability settings (nas/durable/journal.py).

One trial as the search writes it: ask, six suggested params, the status and a ~1.5 kB record as user attributes,
tell with two values (the same journal records `nas search` appends per trial). The loops run back to back in
one process, each on a fresh journal in the same folder, alternated over ``--repeats`` rounds; the median ms per
trial is reported with its range.

* ``optuna``: Optuna's own JournalFileBackend (fsync after every append);
* ``nas sync=always``: nas's backend with an fsync after every append;
* ``nas sync=trial`` (the default): fsync when a trial finishes (and when a study is created);
* ``nas sync=never``: flushed to the OS only.

    python benchmarks/journal_sync.py [--trials 200] [--repeats 5] [--dir DIR] [--out benchmarks/results/journal_sync.md]

``--dir`` picks the file system (the default is the system temp dir; fsync cost depends on the disk).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from nas.durable.journal import DurableJournalFile

RECORD = json.dumps({"number": 0, "params": {f"p{i}": i for i in range(6)}, "metrics": {f"m{i}": 0.5 for i in range(40)},
                     "profile": {"mflops": 1.0, "params": 1000}, "reason": "", "status": "complete"} | {"pad": "x" * 600})


def _backend(kind: str, path: str) -> optuna.storages.journal.BaseJournalBackend:
    if kind == "optuna":
        return optuna.storages.journal.JournalFileBackend(path)
    return DurableJournalFile(path, sync=kind.split("=")[1])  # type: ignore[arg-type]


def run(kind: str, folder: Path, trials: int) -> float:
    """Milliseconds per trial for ``trials`` trials on a fresh journal."""
    path = folder / f"{kind.replace('=', '-')}-{time.monotonic_ns()}.journal"
    study = optuna.create_study(directions=["maximize", "minimize"], storage=optuna.storages.JournalStorage(
        _backend(kind, str(path))), sampler=optuna.samplers.RandomSampler(seed=0))
    t0 = time.perf_counter()
    for _ in range(trials):
        t = study.ask()
        for i in range(6):
            t.suggest_int(f"p{i}", 0, 10)
        t.set_user_attr("nas_status", "complete")
        t.set_user_attr("nas_record", RECORD)
        study.tell(t, [0.5, 1.0])
    ms = 1000 * (time.perf_counter() - t0) / trials
    path.unlink()
    return ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--trials", type=int, default=200)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--dir", default=tempfile.gettempdir())
    ap.add_argument("--out", default=None, help="write a markdown table here too")
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    kinds = ["optuna", "nas sync=always", "nas sync=trial", "nas sync=never"]
    folder = Path(tempfile.mkdtemp(dir=args.dir))
    times: dict[str, list[float]] = {k: [] for k in kinds}
    for _ in range(args.repeats):
        for k in kinds:
            times[k].append(run(k.replace("nas ", ""), folder, args.trials))
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = [f"# Study journal: ms per trial ({args.trials} trials x {args.repeats} rounds, median [min-max])", "",
             f"- commit: {commit}", f"- command: python {' '.join(sys.argv)}",
             f"- machine: {platform.node()} {platform.machine()} {platform.processor() or ''}, "
             f"python {platform.python_version()}, optuna {optuna.__version__}, journal dir {args.dir}",
             f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}", "",
             "| backend | ms per trial | vs optuna |", "|---|---|---|"]
    base = statistics.median(times["optuna"])
    for k in kinds:
        med = statistics.median(times[k])
        lines.append(f"| {k} | {med:.2f} [{min(times[k]):.2f}-{max(times[k]):.2f}] | {med / base:.2f}x |")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
