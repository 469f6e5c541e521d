"""Live progress of a search in the terminal (rich): done/running/failed, front size, hypervolume, compute, ETA."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table

from nas.search.loop import SearchState
from nas.training.records import TrialRecord


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "?"
    m, sec = divmod(int(s), 60)
    return f"{m}m{sec:02d}s"


def render(state: SearchState) -> Table:
    t = Table(title=f"nas search {state.run_id[:8]}", show_header=True, header_style="bold")
    cols = ["done", "running", "failed", "stopped early", "rejected", "front", "hypervolume", "train compute",
            "elapsed", "ETA"]
    values = [f"{state.done}/{state.planned}", str(state.running), str(state.failed), str(state.pruned),
              str(state.rejected), str(state.pareto_size), f"{state.hypervolume:.4g}",
              f"{state.train_tflops:.3g} TFLOPs" + (f" ({state.saved_tflops:.3g} saved)" if state.saved_tflops else ""),
              _fmt_s(state.elapsed_s), _fmt_s(state.eta_s)]
    for col in cols:
        t.add_column(col, justify="right")
    t.add_row(*values)
    if state.stop_reason:
        t.caption = f"stopping: {state.stop_reason}"
    return t


class LiveProgress:
    """Context manager whose ``update(state)`` redraws one live table (refreshes at most 4 times a second)."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._live: Live | None = None

    def __enter__(self) -> LiveProgress:
        self._live = Live(console=self.console, refresh_per_second=4, transient=False)
        self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        assert self._live is not None
        self._live.__exit__(*exc)

    def update(self, state: SearchState) -> None:
        if self._live is not None:
            self._live.update(render(state))


def _reason_kind(reason: str) -> str:
    """A failure reason with its numbers blanked, so that the same error in different trials groups together."""
    return re.sub(r"\d+(\.\d+)?(e-?\d+)?", "#", reason.strip().splitlines()[0] if reason.strip() else "(no reason)")


def failure_summary(records: Iterable[TrialRecord]) -> list[str]:
    """One line per kind of failure among the failed trials, most frequent first: the count, the trial numbers
    and one full reason. Empty when no trial failed."""
    groups: dict[str, list[TrialRecord]] = {}
    for r in records:
        if r.status == "failed":
            groups.setdefault(_reason_kind(r.reason or ""), []).append(r)
    lines = []
    for recs in sorted(groups.values(), key=lambda g: (-len(g), g[0].number)):
        numbers = ", ".join(str(r.number) for r in recs[:10]) + (", ..." if len(recs) > 10 else "")
        reason = (recs[0].reason or "(no reason)").strip().splitlines()[0][:500]
        lines.append(f"{len(recs)} x (trial{'s' if len(recs) > 1 else ''} {numbers}): {reason}")
    return lines
