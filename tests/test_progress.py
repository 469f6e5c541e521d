"""The live display: it ticks between events, lists running trials and the best so far, fits 80 columns, and
prints plain lines when not on a terminal; the failure summary groups and counts."""

from __future__ import annotations

import io

from rich.console import Console

from nas.search.loop import SearchState
from nas.search.progress import LiveProgress, failure_summary, render
from nas.training.records import TrialRecord


def _state() -> SearchState:
    s = SearchState(planned=40, done=12, failed=1, running=2, rejected=3, pruned=4, pareto_size=5,
                    hypervolume=0.8123, train_tflops=1.5, elapsed_s=65.0, eta_s=120.0, run_id="0123456789abcdef" * 2)
    s.running_trials = {13: {"start": 1000.0, "epoch": 3.0, "val_accuracy": 0.9123}, 14: {"start": 1010.0, "epoch": 0.0}}
    s.best = {"trial": 7.0, "val_accuracy": 0.97, "mflops": 0.123}
    return s


def _text(renderable, width: int = 80) -> str:
    console = Console(width=width, file=io.StringIO(), force_terminal=False, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_view_ticks_and_lists_running_trials_at_80_columns():
    s = _state()
    first, later = _text(render(s, updated=1020.0, now=1020.0)), _text(render(s, updated=1020.0, now=1025.0))
    assert "1m05s elapsed" in first and "ETA 2m00s" in first
    assert "1m10s elapsed" in later and "ETA 1m55s" in later  # the clock moves with no new event
    assert max(len(line) for line in first.splitlines()) <= 80
    assert "13" in first and "0.9123" in first and "0m20s" in first  # trial 13: epoch 3, its accuracy, 20 s running
    assert "best so far: trial 7, val_accuracy 0.9700 (mflops 0.123)" in first
    assert "running" in first and "failed" in first and "rejected" in first and "…" not in first


def test_not_a_terminal_gets_plain_lines_once_per_change():
    out = io.StringIO()
    with LiveProgress(Console(file=out, force_terminal=False, width=80)) as live:
        s = _state()
        live.update(s)
        live.update(s)  # same counts: no new line
        s.done += 1
        live.update(s)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and all("12/40 done" in lines[0] or "13/40 done" in line for line in lines)
    assert not any(c in out.getvalue() for c in "┏┃━│")


def test_failure_summary_groups_counts_and_keeps_one_reason():
    recs = [TrialRecord(number=i, params={}, training={}, profile={}, status="failed",
                        reason=f"NonFiniteLossError: training loss is nan at epoch {i}, batch 3 of 17: lower lr")
            for i in range(3)]
    recs.append(TrialRecord(number=5, params={}, training={}, profile={}, status="failed", reason="RuntimeError: boom"))
    recs.append(TrialRecord(number=6, params={}, training={}, profile={}, status="complete"))
    lines = failure_summary(recs)
    assert lines[0].startswith("3 x (trials 0, 1, 2): NonFiniteLossError: training loss is nan at epoch 0")
    assert lines[1] == "1 x (trial 5): RuntimeError: boom"
    assert failure_summary(recs[4:]) == []
