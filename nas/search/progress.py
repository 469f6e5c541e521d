"""Progress of a search: a live view on a terminal (counts, running trials, best so far, ticking clock), plain
lines elsewhere; and the summary of failed trials, grouped and counted."""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from nas.search.loop import SearchState
from nas.training.records import TrialRecord


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "?"
    m, sec = divmod(int(max(0.0, s)), 60)
    h, m = divmod(m, 60)
    return f"{h}h{m:02d}m{sec:02d}s" if h else f"{m}m{sec:02d}s"


def _clock(state: SearchState, updated: float, now: float) -> tuple[float, float | None]:
    """Elapsed seconds and ETA at ``now``, ticking between updates (``updated``: when ``state`` was last set)."""
    since = max(0.0, now - updated)
    eta = None if state.eta_s is None else max(0.0, state.eta_s - since)
    return state.elapsed_s + since, eta


def _best(state: SearchState) -> str:
    if not state.best:
        return "best so far: -"
    costs = ", ".join(f"{k} {v:.3g}" for k, v in state.best.items() if k not in ("trial", "val_accuracy"))
    return f"best so far: trial {int(state.best['trial'])}, val_accuracy {state.best['val_accuracy']:.4f}" + (
        f" ({costs})" if costs else "")


def summary_line(state: SearchState, updated: float, now: float) -> str:
    """One plain line (at most ~80 characters before the ETA) of counts, front, hypervolume and clock."""
    elapsed, eta = _clock(state, updated, now)
    parts = [f"{state.done}/{state.planned} done", f"{state.running} running", f"{state.failed} failed"]
    if state.pruned:
        parts.append(f"{state.pruned} stopped early")
    if state.rejected:
        parts.append(f"{state.rejected} rejected")
    parts += [f"front {state.pareto_size}", f"HV {state.hypervolume:.4g}", f"{_fmt_s(elapsed)} elapsed",
              f"ETA {_fmt_s(eta)}"]
    return ", ".join(parts)


def render(state: SearchState, updated: float | None = None, now: float | None = None) -> Group:
    """The live view, built at draw time so that the clock ticks: a summary, the running trials (number, epoch,
    latest val accuracy, running time) and the best trial so far. Fits 80 columns."""
    now = time.time() if now is None else now
    updated = now if updated is None else updated
    head = Text(f"nas search {state.run_id[:8]}: " + summary_line(state, updated, now), overflow="fold")
    parts: list[Any] = [head]
    if state.running_trials:
        t = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        for col in ("trial", "epoch", "val_accuracy", "running for"):
            t.add_column(col, justify="right")
        for number, live in sorted(state.running_trials.items())[:8]:
            acc = live.get("val_accuracy")
            t.add_row(str(number), f"{int(live.get('epoch', 0))}", "-" if acc is None else f"{acc:.4f}",
                      _fmt_s(now - live.get("start", now)))
        if len(state.running_trials) > 8:
            t.caption = f"... and {len(state.running_trials) - 8} more"
        parts.append(t)
    parts.append(Text(_best(state), overflow="fold"))
    parts.append(Text(f"train compute {state.train_tflops:.3g} TFLOPs"
                      + (f" ({state.saved_tflops:.3g} saved by early stopping)" if state.saved_tflops else ""),
                      overflow="fold"))
    if state.stop_reason:
        parts.append(Text(f"stopping: {state.stop_reason}", overflow="fold"))
    return Group(*parts)


class LiveProgress:
    """Context manager whose ``update(state)`` feeds the display.

    On a terminal: a live view redrawn twice a second from the latest state, so elapsed time, ETA and the running
    trials' clocks tick between trial events. Elsewhere (a log file, a pipe): one plain line per change of the
    counts, never glued table fragments.
    """

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)
        self._live: Live | None = None
        self._state: SearchState | None = None
        self._updated = time.time()
        self._last_line = ""

    def __rich__(self) -> Any:
        if self._state is None:
            return Text("nas search: starting (checks, Ray, the first trial)...")
        return render(self._state, self._updated)

    def __enter__(self) -> LiveProgress:
        if self.console.is_terminal:
            self._live = Live(self, console=self.console, refresh_per_second=2, transient=False)
            self._live.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def update(self, state: SearchState) -> None:
        self._state, self._updated = state, time.time()
        if self._live is None:
            line = summary_line(state, self._updated, self._updated)
            key = line.rsplit(", ", 2)[0]  # the counts, without the clock
            if key != self._last_line:
                self._last_line = key
                self.console.print(f"[{time.strftime('%H:%M:%S')}] {line}", markup=False, highlight=False,
                                   soft_wrap=True)


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
