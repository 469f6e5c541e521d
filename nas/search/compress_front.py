"""``nas compress RUN_ID``: compress the Pareto models of a finished search, re-measure, merge the fronts.

Each Pareto model is compressed with each chosen method (pruning, int8, low rank; optional fine-tuning after
pruning and low rank), measured again (accuracy evaluated on the search's validation split, FLOPs counted, size
and latency measured) and logged as a child run of the search, tagged with its method and source trial. The
merged front of trials and compressed models is tagged ``nas.pareto_merged`` (``nas.load_model(..., front=
"merged")`` loads from it), written as ``pareto_compressed.csv``/``.png`` on the parent run, and the compute spent
compressing is added to the search's bill (``nas_cost/compress_tflops``).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nas.compress.plan import apply_plan
from nas.config.objectives import Direction
from nas.pareto import pareto_mask
from nas.report.figures import pareto_png
from nas.tracking.models import load_model_dir
from nas.tracking.tracker import (
    TAG_MERGED,
    client_for,
    default_tracking_uri,
    download_model_dir,
    get_search_run,
    log_compressed,
    log_parent_extras,
    set_run_tags,
    trial_runs,
)
from nas.training.checkpoint import MODULE_FILE, SCRIPT_FILE, save_module
from nas.training.trial import cached_splits

log = logging.getLogger(__name__)

#: method name -> compression plan (nas/compress/plan.py)
PLANS: dict[str, dict[str, Any]] = {
    "prune": {"prune": 0.5},
    "int8": {"quantize": True},
    "lowrank": {"rank_energy": 0.9},
}
METRIC_KEYS = ("val_accuracy", "mflops", "effective_mflops", "params", "size_mb", "latency_ms")


@dataclass
class CompressedRow:
    source_trial: int
    method: str
    before: dict[str, float]
    after: dict[str, float]
    run_id: str
    on_merged_front: bool = False


def compress_search(run_id: str, *, methods: list[str], finetune_epochs: int = 0,
                    tracking_uri: str | None = None, trust_code: bool = False) -> tuple[list[CompressedRow], list[dict[str, Any]]]:
    """Compress every Pareto model of search ``run_id`` with each of ``methods``; returns the compressed rows and
    the merged front (rows of trials and compressed models that no other row dominates)."""
    unknown = [m for m in methods if m not in PLANS]
    if unknown:
        raise ValueError(f"unknown method(s) {unknown}; choose from {', '.join(PLANS)} or all")
    client = client_for(tracking_uri or default_tracking_uri())
    search = get_search_run(client, run_id)
    objectives: list[tuple[str, Direction]] = [
        (name, direction) for name, direction in (o.split(":") for o in search.data.params["objectives"].split(","))]
    pareto = trial_runs(client, search, pareto_only=True)
    if not pareto:
        raise ValueError(f"search {run_id} has no Pareto models to compress (did it finish?)")
    rows: list[CompressedRow] = []
    spent_mflops, t0 = 0.0, time.perf_counter()
    for run in pareto:
        source = int(run.data.tags["nas.trial_number"])
        with tempfile.TemporaryDirectory() as d:
            src_dir = download_model_dir(client, run.info.run_id, d)
            if Path(src_dir, MODULE_FILE).is_file() or Path(src_dir, SCRIPT_FILE).is_file():
                log.info("trial %d was compressed during the search; skipped", source)
                continue
            model = load_model_dir(src_dir, trust_code=trust_code)
            arch = model.nas_arch
            splits = cached_splits(arch["data"])
            before = {k: float(run.data.metrics[k]) for k in METRIC_KEYS if k in run.data.metrics}
            for method in methods:
                plan = {**PLANS[method], "finetune_epochs": finetune_epochs if method != "int8" else 0}
                done = apply_plan(model, plan, splits, seed=int(arch.get("seed", 0)),
                                  lr=float(arch.get("training", {}).get("lr", 1e-3)))
                spent_mflops += done.compute_mflops
                after = {k: v for k, v in done.metrics().items() if k != "compress_mflops"}
                out = Path(d, f"out-{method}")
                out.mkdir()
                save_module(done.model, out, tuple(splits.input_shape))
                for name in ("arch.json", "space.yaml"):
                    Path(out, name).write_text(Path(src_dir, name).read_text())
                rid = log_compressed(client, search, source_trial=source, source_run=run.info.run_id, method=method,
                                     metrics={**after, "compress_flops": done.compute_mflops * 1e6},
                                     settings={"plan": plan, "steps": done.methods}, notes=done.notes,
                                     model_dir=str(out))
                rows.append(CompressedRow(source, method, before, after, rid))
    merged = _merge(client, pareto, rows, objectives)
    table = [{"source_trial": r.source_trial, "method": r.method,
              **{f"{k}_before": r.before.get(k) for k in METRIC_KEYS}, **{f"{k}_after": r.after.get(k) for k in METRIC_KEYS},
              "on_merged_front": r.on_merged_front, "run_id": r.run_id} for r in rows]
    all_rows = [{**{k: float(v) for k, v in p.data.metrics.items()}, "label": f"trial {p.data.tags['nas.trial_number']}"}
                for p in pareto] + [{**r.after, "label": f"{r.method} of {r.source_trial}"} for r in rows]
    mask = [row["label"] in {m["label"] for m in merged} for row in all_rows]
    log_parent_extras(client, run_id, {"nas_cost/compress_tflops": spent_mflops / 1e6,
                                       "nas_cost/compress_s": time.perf_counter() - t0},
                      {"compressed.json": json.dumps(table, indent=2),
                       "pareto_compressed.png": pareto_png(all_rows, objectives,
                                                           f"{len(merged)} on the merged front of "
                                                           f"{len(pareto)} trials + {len(rows)} compressed",
                                                           pareto=mask)})
    return rows, merged


def _merge(client: Any, pareto: list[Any], rows: list[CompressedRow],
           objectives: list[tuple[str, Direction]]) -> list[dict[str, Any]]:
    """Tag the merged front (trials and compressed models) and return its rows."""
    candidates = [({k: float(v) for k, v in p.data.metrics.items()}, p.info.run_id,
                   f"trial {p.data.tags['nas.trial_number']}") for p in pareto]
    candidates += [(r.after, r.run_id, f"{r.method} of {r.source_trial}") for r in rows]
    usable = [(m, rid, label) for m, rid, label in candidates if all(o in m for o, _ in objectives)]
    mask = pareto_mask([m for m, _, _ in usable], objectives)
    merged = []
    for (metrics, rid, label), on in zip(usable, mask, strict=True):
        set_run_tags(client, rid, {TAG_MERGED: "true" if on else "false"})
        if on:
            merged.append({"label": label, "run_id": rid, **{k: metrics.get(k) for k in METRIC_KEYS}})
    by_id = {r.run_id: r for r in rows}
    for m in merged:
        if m["run_id"] in by_id:
            by_id[m["run_id"]].on_merged_front = True
    return merged

