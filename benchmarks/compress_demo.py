"""Compression after the digits demo search: before/after for each Pareto model, and whether any compressed model
dominates an uncompressed Pareto model (or honestly, that none did).

    python benchmarks/compress_demo.py [--run-id ID --tracking-uri URI] [--finetune-epochs 2]

Without --run-id it first runs experiments/digits_cnn.yaml (the `make demo` search) into a temporary store.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def dominates(a: dict, b: dict) -> bool:
    """a is at least as accurate and as cheap as b, and strictly better in one (accuracy up, MFLOPs down)."""
    ge = a["val_accuracy"] >= b["val_accuracy"] and a["mflops"] <= b["mflops"]
    return ge and (a["val_accuracy"] > b["val_accuracy"] or a["mflops"] < b["mflops"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run-id")
    ap.add_argument("--tracking-uri")
    ap.add_argument("--finetune-epochs", type=int, default=2)
    args = ap.parse_args()

    from nas.search.compress_front import PLANS, compress_search

    tmp = tempfile.TemporaryDirectory()
    run_id, uri = args.run_id, args.tracking_uri
    if run_id is None:
        from nas.config.experiment import load_experiment
        from nas.search.api import run_search

        uri = f"sqlite:///{Path(tmp.name, 'mlflow.db')}"
        exp = load_experiment(ROOT / "experiments" / "digits_cnn.yaml").with_overrides(tracking_uri=uri)
        run_id = run_search(exp).run_id
        print(f"searched: run_id {run_id}")
    rows, merged = compress_search(run_id, methods=list(PLANS), finetune_epochs=args.finetune_epochs,
                                   tracking_uri=uri)
    print("| trial | method | val_accuracy before -> after | MFLOPs before -> after | size MiB after | "
          "latency ms before -> after | merged front |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        b, a = r.before, r.after
        print(f"| {r.source_trial} | {r.method} | {b['val_accuracy']:.4f} -> {a['val_accuracy']:.4f} | "
              f"{b['mflops']:.4g} -> {a['mflops']:.4g} | {a['size_mb']:.4f} | "
              f"{b.get('latency_ms', float('nan')):.3f} -> {a['latency_ms']:.3f} | {'yes' if r.on_merged_front else ''} |")
    originals = {r.source_trial: r.before for r in rows}
    wins = [(r, t) for r in rows for t, b in originals.items() if dominates(r.after, b)]
    print()
    if wins:
        for r, t in wins:
            print(f"{r.method} of trial {r.source_trial} ({r.after['val_accuracy']:.4f}, {r.after['mflops']:.4g} "
                  f"MFLOPs) dominates uncompressed trial {t} ({originals[t]['val_accuracy']:.4f}, "
                  f"{originals[t]['mflops']:.4g} MFLOPs)")
    else:
        print("no compressed model dominated an uncompressed Pareto model")
    print(f"merged front: {len(merged)} models, {sum(r.on_merged_front for r in rows)} of them compressed")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
