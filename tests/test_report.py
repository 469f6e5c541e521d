"""nas.report: renders every section to self-contained HTML, writes the PNGs beside it, every plot labelled."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pytest

from nas.cost.breakeven import break_even
from nas.cost.ledger import bill_search
from nas.report import (
    SECTIONS,
    ReportData,
    curve_points,
    figures,
    hypervolume_history,
    pareto_flags,
    render_report,
)
from nas.training.records import TrialRecord

OBJECTIVES = [("val_accuracy", "maximize"), ("mflops", "minimize"), ("params", "minimize")]


class Res:
    cpu, gpu = 1.0, 0.0


def _records(n: int = 30) -> list[TrialRecord]:
    rng = np.random.default_rng(0)
    out, t = [], 0.0
    for i in range(n):
        mflops = float(10 ** rng.uniform(-2, 0.5))
        acc = float(np.clip(0.98 - 0.05 * math.exp(-mflops / 0.1) - abs(rng.normal(0, 0.01)), 0, 1))
        secs = 1 + 4 * mflops
        status = "failed" if i == 7 else "complete"
        metrics = {"mflops": mflops, "params": 1e4 * mflops}
        if status == "complete":
            metrics.update(val_accuracy=acc, train_flops=3 * mflops * 1e6 * 10_000, trial_seconds=secs)
        out.append(TrialRecord(i, {}, {}, {"mflops": mflops}, status=status, metrics=metrics,
                               start_time=t, end_time=t + secs + 0.2))
        t += secs + 0.5
    return out


def _data() -> ReportData:
    recs = _records()
    rows = [r.row() for r in recs]
    bill = bill_search(recs, {"sampler_s": 0.5, "profile_s": 2.0, "tracking_s": 1.0}, wall_s=recs[-1].end_time + 3,
                       workers=1, resources=Res())
    flags = pareto_flags(rows, OBJECTIVES)
    front = [r for r, f in zip(rows, flags, strict=True) if f]
    return ReportData(
        title="test search", run_id="abc123", trials=rows, objectives=OBJECTIVES,
        experiment={"space hash": "0123456789abcdef", "seed": 0},
        baselines=[{"trial": "baseline:logreg", "name": "logreg", "val_accuracy": 0.96, "mflops": 0.00065,
                    "params": 650}],
        hypervolume=hypervolume_history(rows, OBJECTIVES, {"val_accuracy": 0.0, "mflops": 5.0, "params": 5e4}),
        bill=bill, break_even=break_even(front, bill.train_flops, bill.energy_kwh, energy_per_flop_kwh=1e-12),
    )


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    """One report of :func:`_data`, and every figure it drew (inspected before being closed)."""
    figs = []
    real = figures._png

    def keep(fig):
        figs.append(fig)
        return real(fig)

    out = tmp_path_factory.mktemp("report")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(figures, "_png", keep)
        path = render_report(_data(), out)
    return path, figs


def test_report_renders_every_section(rendered):
    path, figs = rendered
    text = path.read_text()
    assert path.name == "report.html"
    for heading in SECTIONS:
        assert f">{heading}</h2>" in text, heading
    imgs = re.findall(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    pngs = sorted(p.name for p in path.parent.glob("*.png"))
    assert pngs == sorted(["pareto_mflops.png", "pareto_params.png", "hypervolume.png", "bill.png",
                           "scaling_inference.png", "scaling_training.png", "scaling_search.png"])
    assert len(imgs) == len(pngs) == len(figs)
    for name in pngs:
        assert (path.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    for heading in ("logreg", "the reference", "overhead ratio", "unattributed", "polynomial", "0123456789abcdef"):
        assert heading in text, heading
    assert "http://" not in text and "https://" not in text  # self-contained


def test_every_plot_has_title_labels_with_units_and_legend(rendered):
    _, figs = rendered
    for fig in figs:
        ax = fig.axes[0]
        assert ax.get_title(), "no title"
        assert ax.get_ylabel(), f"no y label in {ax.get_title()!r}"
        numeric = [ax.get_xlabel()] + ([ax.get_ylabel()] if ax.get_ylabel() != "part of the search" else [])
        for label in numeric:
            assert re.search(r"\(.+\)", label), f"no unit in {label!r}"
        assert ax.get_legend() is not None and ax.get_legend().get_texts(), f"no legend in {ax.get_title()!r}"


def test_pngs_are_readable_size(rendered):
    from PIL import Image

    path, _ = rendered
    for png in path.parent.glob("*.png"):
        w, h = Image.open(png).size
        assert 600 <= w <= 2000 and 300 <= h <= 1600, (png.name, w, h)


def test_empty_sections_say_so(tmp_path):
    data = ReportData(title="empty", run_id="x", trials=[], scaling={})
    text = render_report(data, tmp_path).read_text()
    for heading in SECTIONS:
        assert f">{heading}</h2>" in text
    assert text.count('class="empty"') == len(SECTIONS)
    assert not list(tmp_path.glob("*.png"))


def test_helpers():
    rows = [{"trial": 0, "status": "complete", "val_accuracy": 0.9, "mflops": 1.0, "train_flops": 10.0},
            {"trial": 1, "status": "failed", "mflops": 0.5, "train_flops": 5.0},
            {"trial": 2, "status": "complete", "val_accuracy": 0.95, "mflops": 2.0, "train_flops": 20.0},
            {"trial": 3, "status": "complete", "val_accuracy": 0.8, "mflops": 3.0, "train_flops": 30.0}]
    objectives = [("val_accuracy", "maximize"), ("mflops", "minimize")]
    assert pareto_flags(rows, objectives) == [True, False, True, False]
    hv = hypervolume_history(rows, objectives, {"val_accuracy": 0.0, "mflops": 4.0})
    assert [c for c, _ in hv] == [10.0, 15.0, 35.0, 65.0]
    assert hv[0][1] == pytest.approx(0.9 * 3) and hv[2][1] == pytest.approx(0.9 * 1 + 0.95 * 2)
    assert hv[3][1] == hv[2][1]
    c, e = curve_points("search", rows)
    assert list(c) == [10.0, 15.0, 35.0, 65.0] and list(e) == pytest.approx([0.1, 0.1, 0.05, 0.05])
    c, e = curve_points("inference", rows)
    assert list(c) == [1.0, 2.0, 3.0] and list(e) == pytest.approx([0.1, 0.05, 0.2])
    assert figures.axis_label("mflops") == "forward MFLOPs per sample (MFLOPs)"
    assert figures.axis_label("val_accuracy") == "validation accuracy (%)"
    assert figures.axis_label("size_mb") == "size of the saved weights (MiB)"


def test_report_from_the_nb201_table(tmp_path):
    import pandas as pd

    csv = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "nb201" / "nb201_cifar10.csv"
    df = pd.read_csv(csv).sample(n=300, random_state=0)
    rows = [{"trial": i, "status": "complete", "val_accuracy": r.cifar10_valid_acc / 100, "mflops": r.flops_M,
             "params": r.params_M * 1e6, "train_flops": 3 * r.flops_M * 1e6 * 25_000 * 200}
            for i, r in enumerate(df.itertuples())]
    data = ReportData(title="NB201", run_id="nb201", trials=rows, objectives=OBJECTIVES,
                      hypervolume=hypervolume_history(rows, OBJECTIVES, {"val_accuracy": 0, "mflops": 250, "params": 2e6}))
    text = render_report(data, tmp_path).read_text()
    assert text.count("<img ") == 6  # 2 Pareto, hypervolume, 3 scaling
    assert "No bill recorded" in text


def test_search_plots_one_panel_per_cost_with_given_flags():
    """The search loop's and the compress stage's calls: flags given, every cost objective its own panel."""
    import io

    from matplotlib.image import imread

    from nas.report.figures import hypervolume_png, pareto_png

    rows = [{"val_accuracy": 0.9, "mflops": 2.0, "params": 10}, {"val_accuracy": 0.8, "mflops": 1.0, "params": 30},
            {"val_accuracy": 0.7, "mflops": 3.0, "params": 20}]
    objectives = [("val_accuracy", "maximize"), ("mflops", "minimize"), ("params", "minimize")]
    png = pareto_png(rows, objectives, "t", pareto=[True, True, False])
    assert imread(io.BytesIO(png)).shape[1] > 1.5 * imread(io.BytesIO(pareto_png(rows, objectives[:2], "t"))).shape[1]
    assert hypervolume_png([(1e12, 0.1), (3e12, 0.2)], objectives, "hv", stop="budget reached").startswith(b"\x89PNG")
