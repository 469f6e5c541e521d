"""``nas report RUN_ID``: gather a finished search from the tracking store into a report, render it, log it.

Reads the trials (child runs), the search card (the bill), the objectives and the hypervolume reference from the
parent run; fits the scaling curves; optionally trains the classical baselines on the search's data split; writes
``report.html`` with its PNGs to ``out_dir`` and logs them on the parent run under ``report/``.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from nas.cost.breakeven import break_even
from nas.cost.ledger import SearchBill
from nas.report import ReportData, hypervolume_history, render_report
from nas.tracking.tracker import (
    client_for,
    default_tracking_uri,
    get_search_run,
    log_parent_extras,
    trial_runs,
)

log = logging.getLogger(__name__)


def _rows(runs: list[Any]) -> list[dict[str, Any]]:
    rows = []
    for r in runs:
        tags = r.data.tags
        rows.append({"trial": int(tags["nas.trial_number"]), "status": tags.get("nas.status", "complete"),
                     "pareto": tags.get("nas.pareto") == "true", **{k: float(v) for k, v in r.data.metrics.items()
                                                                    if "/" not in k}})
    return sorted(rows, key=lambda r: r["trial"])


def build_report(run_id: str, out_dir: str | Path, *, tracking_uri: str | None = None, baselines: bool = True,
                 reference: int | None = None) -> Path:
    """Render the report of search ``run_id`` into ``out_dir`` and log it on the parent run; returns the HTML."""
    client = client_for(tracking_uri or default_tracking_uri())
    search = get_search_run(client, run_id)
    params, tags = search.data.params, search.data.tags
    objectives = [tuple(o.split(":")) for o in params["objectives"].split(",")]
    rows = _rows(trial_runs(client, search))
    bill = None
    with tempfile.TemporaryDirectory() as d:
        try:
            card = json.loads(Path(client.download_artifacts(search.info.run_id, "search_card.json", d)).read_text())
            bill = SearchBill.from_dict(card["bill"])
        except Exception as e:  # a search from before the ledger, or one that stopped early
            log.warning("no search card on %s (%s): the report has no bill", run_id, e)
        one_shot = None
        if tags.get("nas.strategy") == "one-shot":
            from nas.oneshot.report import finalists_from_csv

            try:
                table_path = client.download_artifacts(search.info.run_id, "one_shot_subnets.csv", d)
                one_shot = finalists_from_csv(Path(table_path).read_text())
            except Exception as e:  # a one-shot search that stopped before its table
                log.warning("no one_shot_subnets.csv on %s (%s): the report has no one-shot section", run_id, e)
    pareto = [r for r in rows if r["pareto"]]
    cost_flops = bill.train_flops if bill else sum(r.get("train_flops", 0.0) for r in rows)
    per_flop = (bill.trial_energy_kwh / bill.train_flops) if bill and bill.train_flops else None
    be = break_even(pareto, cost_flops, bill.energy_kwh if bill else None, reference, per_flop, all_rows=rows)
    base_rows: list[dict[str, Any]] = []
    if baselines:
        from nas.data import load_data
        from nas.report.baselines import fit_baselines

        data = json.loads(params.get("data_config", "{}")) or {"name": params.get("data", "digits"),
                                                                 "seed": int(params.get("data_seed", 0))}
        try:
            splits = load_data(data.get("name", "digits"), seed=int(data.get("seed", 0)))
            base_rows = [b.row() for b in fit_baselines(splits)]
        except Exception as e:  # data not available here: the report says so by leaving them out
            log.warning("classical baselines skipped: %s", e)
    reference_point = json.loads(params["hv_reference"])
    data = ReportData(
        title=f"nas search {search.info.run_name}", run_id=search.info.run_id, trials=rows,
        objectives=objectives,  # type: ignore[arg-type]
        experiment={"experiment": params.get("experiment"), "space": params.get("space"),
                    "space hash": tags.get("nas.space_hash"), "sampler": params.get("sampler"),
                    "seed": params.get("seed"), "trials": params.get("trials"), "data": params.get("data"),
                    "hardware": tags.get("nas.hardware")},
        baselines=base_rows, hypervolume=hypervolume_history(rows, objectives, reference_point), bill=bill,
        break_even=be, one_shot=one_shot,
    )
    html = render_report(data, out_dir)
    files: dict[str, str | bytes] = {f"report/{p.name}": p.read_bytes() for p in Path(out_dir).iterdir() if p.is_file()}
    log_parent_extras(client, search.info.run_id, {}, files)
    return html
