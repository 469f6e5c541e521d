"""``render_report``: one self-contained HTML file (PNGs embedded as base64) with the PNGs written beside it."""

from __future__ import annotations

import base64
import html
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from nas.cost.ledger import PARTS, SearchBill, check_accounting
from nas.report import figures
from nas.report.data import ACCURACY, CURVES, ReportData, curve_points, resolved_scaling

log = logging.getLogger(__name__)

SECTIONS = ("Pareto front", "Hypervolume against compute", "Bill by part", "Break-even", "Scaling fits")
"""Section headings, in order; every report has all of them (a section without data says so)."""

CSS = """
body { font-family: system-ui, -apple-system, Segoe UI, sans-serif; max-width: 1100px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.45; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.92em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; border: 1px solid #eee; margin: 0.5em 0; }
.note { color: #555; font-size: 0.92em; } .empty { color: #a33; }
nav a { margin-right: 1em; }
"""


def fmt(value: Any, digits: int = 4) -> str:
    """Numbers to ``digits`` significant figures; None as an em dash; everything escaped."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.{digits}g}"
    return html.escape(str(value))


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{fmt(c)}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _anchor(title: str) -> str:
    return title.lower().replace(" ", "-")


class _Page:
    """Collects HTML and PNGs; each image is written to ``out_dir`` and embedded."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.parts: list[str] = []
        self.images: list[Path] = []

    def image(self, name: str, png: bytes, alt: str) -> None:
        path = self.out_dir / name
        path.write_bytes(png)
        self.images.append(path)
        data = base64.b64encode(png).decode("ascii")
        self.parts.append(f'<img src="data:image/png;base64,{data}" alt="{html.escape(alt)}" title="{name}">')

    def add(self, text: str) -> None:
        self.parts.append(text)

    def note(self, text: str, empty: bool = False) -> None:
        self.parts.append(f'<p class="{"empty" if empty else "note"}">{html.escape(text)}</p>')


def _pareto(page: _Page, d: ReportData) -> None:
    costs = [n for n, _ in d.objectives if n != ACCURACY]
    if not d.trials or not costs:
        page.note("No completed trials with accuracy and a cost objective.", empty=True)
        return
    page.note("Every trial in grey, the search's Pareto set (all objectives) in red, the two-objective front as a "
              "step line; classical baselines (fitted on the same split) as labelled blue markers.")
    for cost in costs:
        page.image(f"pareto_{cost}.png", figures.pareto_png(d.trials, d.objectives, f"{d.title}: accuracy against {cost}",
                                                             costs=[cost], baselines=d.baselines),
                   f"accuracy against {cost}")
    front = [r for r in d.trials if r.get("pareto")]
    if front:
        def pct(v: Any) -> float | None:
            return 100 * v if isinstance(v, (int, float)) else None

        page.add(table(["Pareto trial", "validation accuracy (%)", "test accuracy (%)", "MFLOPs per sample",
                        "parameters"],
                       [(r.get("trial"), pct(r.get(ACCURACY)), pct(r.get("test_accuracy")), r.get("mflops"),
                         r.get("params")) for r in sorted(front, key=lambda r: -(r.get(ACCURACY) or 0.0))]))
        page.note("Test accuracy: on the held-out test split, measured once per Pareto model after the search; "
                  "never used to choose.")
    if d.baselines:
        rows = [(b.get("name", b.get("trial")), 100 * b[ACCURACY] if isinstance(b.get(ACCURACY), float) else None,
                 b.get("mflops"), b.get("params")) for b in d.baselines]
        page.add(table(["baseline", "validation accuracy (%)", "MFLOPs per sample", "parameters"], rows))


def _hypervolume(page: _Page, d: ReportData) -> None:
    if not d.hypervolume:
        page.note("No hypervolume history recorded.", empty=True)
        return
    page.image("hypervolume.png", figures.hypervolume_png(d.hypervolume, d.objectives,
                                                          f"{d.title}: hypervolume against compute"),
               "hypervolume against cumulative training compute")
    page.note("Hypervolume of the completed trials (under the search's fixed reference point) after each trial, "
              "against the training FLOPs spent so far, failed trials included.")


def _bill(page: _Page, d: ReportData) -> None:
    b = d.bill
    if b is None:
        page.note("No bill recorded for this run.", empty=True)
        return
    page.image("bill.png", figures.bill_png(b, f"{d.title}: where the slot time went"), "slot-seconds by part")
    cur = b.currency.upper()
    page.add(table(["quantity", "value"], [
        ("training compute (FLOPs)", b.train_flops),
        ("compute saved by rejecting candidates before training (FLOPs)", b.flops_saved_by_rejections),
        ("wall time (s)", b.wall_s), ("worker slots", b.workers),
        ("trial compute (slot-s)", b.trial_s), ("machinery (slot-s)", b.machinery_s),
        ("overhead ratio (machinery / trial compute)", b.overhead_ratio),
        ("machinery attributed to measured parts", f"{b.attributed_fraction:.0%}"),
        ("accounting residual (fraction of capacity)", check_accounting(b)),
        ("device-hours held", b.device_hours), ("CPU core-hours", b.cpu_core_hours), ("GPU-hours", b.gpu_hours),
        (f"energy, {b.energy_method} (kWh)", b.energy_kwh), ("of which trials (kWh)", b.trial_energy_kwh),
        ("of which machinery (kWh)", b.machinery_energy_kwh), ("CO2 (g)", b.co2_g), (f"cost ({cur})", b.cost),
    ]))
    page.add(_parts_table(b))
    if b.idle_by_phase_s:
        page.note("Idle slot time by phase, outside every trial's span (it contains the driver parts and the "
                  "unattributed remainder): " + ", ".join(f"{k.replace('_', ' ')} {v:.4g} slot-s"
                                                          for k, v in b.idle_by_phase_s.items()) + ".")
    cfg = b.energy_config
    page.note(f"Energy method: {b.energy_method} ({'; '.join(f'{k}: {v}' for k, v in sorted(b.energy_details.items()))}). "
              f"Assumptions: {cfg['cpu_watts_per_core']:g} W per CPU core and {cfg['gpu_watts']:g} W per GPU where not "
              f"measured, PUE {cfg['pue']:g}, {cfg['grid_g_co2_per_kwh']:g} g CO2/kWh, "
              f"{cfg['price_per_cpu_core_hour']:g} {cur} per CPU core-hour, {cfg['price_per_gpu_hour']:g} {cur} per GPU-hour.")


def _parts_table(b: SearchBill) -> str:
    def share(v: float) -> str:
        return f"{v / b.capacity_s:.1%}"

    rows = [("trial compute", b.trial_s, share(b.trial_s), "training and evaluation in the workers")]
    rows += [(k, v, share(v), PARTS[k].description if k in PARTS else "measured by the driver")
             for k, v in b.machinery_by_part_s.items()]
    rows += [(f"{k} (concurrent, not added)", v, None, PARTS[k].description if k in PARTS else "overlaps trials")
             for k, v in b.concurrent_by_part_s.items()]
    return table(["part", "slot-seconds", "share of capacity", "what"], rows)


def _break_even(page: _Page, d: ReportData) -> None:
    if not d.break_even:
        page.note("No break-even rows (no Pareto models, or no bill).", empty=True)
        return
    ref = d.break_even[0]
    page.note(f"Reference: trial {ref.reference_trial} ({100 * ref.reference_val_accuracy:.2f}% accuracy, "
              f"{ref.reference_mflops_per_inference:.4g} MFLOPs per inference). A cheaper model repays the search "
              "after this many inferences: search FLOPs / FLOPs saved per inference; in energy, search kWh / kWh "
              "saved per inference.")
    rows = [(r.trial, 100 * r.val_accuracy, r.mflops_per_inference, r.saved_mflops_per_inference,
             100 * r.accuracy_given_up, r.inferences_to_repay_flops, r.inferences_to_repay_energy, r.reason)
            for r in d.break_even]
    page.add(table(["trial", "validation accuracy (%)", "MFLOPs per inference", "MFLOPs saved per inference",
                    "accuracy given up (points)", "inferences to repay (FLOPs)", "inferences to repay (energy)",
                    "note"], rows))


def _scaling(page: _Page, d: ReportData) -> None:
    entries = resolved_scaling(d)
    if not entries:
        page.note("No scaling fit: fewer than 3 usable trials, or compute that does not vary.", empty=True)
        return
    page.note("Error (1 - validation accuracy) against compute in the two forms of Thompson et al. (2020): "
              "polynomial (a straight line on these log-log axes) and exponential (error linear in log compute). "
              "Solid where observed, dashed where extrapolated.")
    for name, entry in entries.items():
        pts = curve_points(name, d.trials) if "points" not in entry else _points(entry["points"])
        label = CURVES.get(name, (None, name))[1]
        page.add(f"<h3>{html.escape(name)}: {html.escape(label)}</h3>")
        page.image(f"scaling_{name}.png", figures.scaling_png(name, entry, pts, f"{d.title}: error against {label}"),
                   f"scaling fit: {name}")
        page.note(str(entry.get("summary", "")))


def _points(points: Sequence[Sequence[float]]) -> tuple[np.ndarray, np.ndarray]:
    arr = np.asarray(points, dtype=float).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def _one_shot(page: _Page, finalists: list[dict[str, Any]]) -> None:
    from nas.oneshot.report import ranking_png, summary

    pairs, tau = summary(finalists)
    page.add('<h2 id="one-shot">One-shot: supernet against stand-alone accuracy</h2>')
    page.image("one_shot_ranking.png", ranking_png(pairs, tau, 0.5), "supernet against stand-alone accuracy")
    page.add(table(["role", "supernet accuracy (%)", "stand-alone accuracy (%)", "MFLOPs per sample"],
                   [(f["role"], 100 * f["supernet_accuracy"], 100 * f["standalone_accuracy"], f["mflops"])
                    for f in finalists]))


_SECTION_RENDERERS: dict[str, Callable[[_Page, ReportData], None]] = {
    "Pareto front": _pareto, "Hypervolume against compute": _hypervolume, "Bill by part": _bill,
    "Break-even": _break_even, "Scaling fits": _scaling,
}


def render_report(data: ReportData, out_dir: str | os.PathLike[str]) -> Path:
    """Write ``out_dir/report.html`` (self-contained) and its PNGs beside it; returns the HTML path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    page = _Page(out)
    nav = " ".join(f'<a href="#{_anchor(s)}">{html.escape(s)}</a>' for s in SECTIONS)
    page.add(f"<h1>{html.escape(data.title)}</h1><p class='note'>run {html.escape(data.run_id)} · "
             f"{len(data.trials)} trials · generated {time.strftime('%Y-%m-%d %H:%M:%S')}</p><nav>{nav}</nav>")
    if data.experiment:
        page.add(table(["experiment", ""], [(k, v) for k, v in data.experiment.items()]))
    for title in SECTIONS:
        page.add(f'<h2 id="{_anchor(title)}">{html.escape(title)}</h2>')
        _SECTION_RENDERERS[title](page, data)
    if data.one_shot is not None:
        _one_shot(page, data.one_shot)
    doc = (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(data.title)}</title>"
           f"<style>{CSS}</style></head><body>{''.join(page.parts)}</body></html>")
    path = out / "report.html"
    path.write_text(doc, encoding="utf-8")
    log.info("report: %s (%d images)", path, len(page.images))
    return path
