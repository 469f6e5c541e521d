"""Stamped results: every file a benchmark writes under benchmarks/results/ says where its figures came from.

A stamp holds the git commit (and whether the work tree had uncommitted changes), the exact command, the
machine (host, CPU model, cores, platform, Python, torch), the date (UTC) and the wall time in seconds, plus the
load average at start and end, since this project's machine is shared. :func:`write_results` writes
``NAME.json`` (``{"stamp": {...}, "readme": [...], ...data}``) and, given markdown, ``NAME.md`` opening with the
stamp. ``readme`` rows (``{"what": ..., "figure": ...}``) are what ``benchmarks/readme_figures.py`` copies
into the README's measured-figures table; the README quotes nothing else from this folder.

    started = Stamp.start()          # at the top of main()
    ...
    write_results("latency_stability", data, markdown=text, stamp=started.finish(), readme=[...])
"""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
STAMP_KEYS = ("commit", "dirty", "command", "machine", "date", "wall_s")


def _git(*args: str) -> str:
    try:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    """Where the figures were measured: host, CPU model and logical cores, OS, Python and torch versions."""
    try:
        import torch

        torch_version: str | None = torch.__version__
        gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:
        torch_version = gpu = None
    return {"host": platform.node(), "cpu": _cpu_model(), "cores": os.cpu_count(), "gpu": gpu,
            "platform": platform.platform(), "python": platform.python_version(), "torch": torch_version}


def command(argv: list[str] | None = None) -> str:
    """The command as typed from the repository root: ``python <script> <args>`` (``sys.argv`` by default)."""
    argv = sys.argv if argv is None else argv
    script = Path(argv[0]).resolve() if argv else Path("?")
    try:
        shown = str(script.relative_to(ROOT))
    except ValueError:
        shown = str(argv[0]) if argv else "?"
    return shlex.join(["python", shown, *argv[1:]])


@dataclass
class Stamp:
    """A benchmark run's provenance; :meth:`start` at the beginning, :meth:`finish` when the figures are in."""

    commit: str
    dirty: bool
    command: str
    machine: dict[str, Any]
    date: str
    wall_s: float | None = None
    load_start: tuple[float, ...] = ()
    load_end: tuple[float, ...] = ()
    _t0: float = field(default=0.0, repr=False)

    @classmethod
    def start(cls, argv: list[str] | None = None) -> Stamp:
        """Stamp for a run starting now; ``argv`` defaults to ``sys.argv`` (script first)."""
        return cls(
            commit=_git("rev-parse", "HEAD") or "unknown",
            dirty=bool(_git("status", "--porcelain", "--untracked-files=no")),
            command=command(argv), machine=machine(),
            date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            load_start=os.getloadavg() if hasattr(os, "getloadavg") else (), _t0=time.perf_counter(),
        )

    def finish(self) -> Stamp:
        """Record the wall time and the load average now; returns self."""
        self.wall_s = round(time.perf_counter() - self._t0, 1)
        self.load_end = os.getloadavg() if hasattr(os, "getloadavg") else ()
        return self

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("_t0")
        return d

    def markdown(self) -> str:
        """A header block for a results markdown file."""
        m = self.machine
        load = "" if not self.load_start else (f"; load average {self.load_start[0]:.1f} at start, "
                                               f"{self.load_end[0]:.1f} at end" if self.load_end else "")
        return (f"`{self.command}`\n\ncommit `{self.commit}`{' (with uncommitted changes)' if self.dirty else ''}, "
                f"{self.date}, wall time {self.wall_s} s; {m['host']}: {m['cpu']}, {m['cores']} cores"
                f"{', ' + m['gpu'] if m.get('gpu') else ''}, Python {m['python']}, torch {m['torch']}{load}\n")


def write_results(name: str, data: dict[str, Any], *, stamp: Stamp, markdown: str | None = None,
                  readme: list[dict[str, str]] | None = None, folder: Path | str = RESULTS) -> Path:
    """Write ``folder/NAME.json`` (stamp, readme rows, data) and, given ``markdown``, ``folder/NAME.md``.

    ``stamp`` must be finished (wall time set). Returns the JSON path.
    """
    if stamp.wall_s is None:
        raise ValueError("write_results: call stamp.finish() first, so the wall time is recorded")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.json"
    path.write_text(json.dumps({"stamp": stamp.as_dict(), "readme": readme or [], **data}, indent=1) + "\n")
    if markdown is not None:
        (folder / f"{name}.md").write_text(f"{stamp.markdown()}\n{markdown.strip()}\n")
    return path


def is_stamped(doc: dict[str, Any]) -> bool:
    """Whether a results JSON carries a complete stamp."""
    s = doc.get("stamp")
    return isinstance(s, dict) and all(s.get(k) not in (None, "", "unknown") for k in STAMP_KEYS if k != "dirty")
