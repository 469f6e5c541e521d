"""Errors about user input: each names the file, the place inside it, what is wrong and how to fix it."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class ConfigError(ValueError):
    """A refused input file or flag.

    ``file`` is the file (or flag) at fault, ``path`` the '/'-joined location inside it ('' for the top level),
    ``problem`` what is wrong and ``fix`` how to fix it. ``str(err)`` is one readable paragraph.
    """

    def __init__(self, file: str, path: str, problem: str, fix: str) -> None:
        self.file, self.path, self.problem, self.fix = str(file), path, problem, fix
        super().__init__(f"{self.file}: {path or '<top>'}: {problem}. Fix: {fix}")

    def __reduce__(self) -> tuple[object, ...]:
        # picklable: Ray ships exceptions between processes
        return (type(self), (self.file, self.path, self.problem, self.fix))


def closest(word: object, options: Iterable[str], cutoff: float = 0.6) -> str | None:
    """The option closest to ``word`` (difflib ratio >= ``cutoff``), or None: the one did-you-mean of nas."""
    close = difflib.get_close_matches(str(word), list(options), n=1, cutoff=cutoff)
    return close[0] if close else None


def did_you_mean(word: object, options: Iterable[str], *, sentence: bool = False) -> str:
    """`` (did you mean 'x'?)`` when a close option exists, else ''; with ``sentence``, `` Did you mean 'x'?`` (to
    follow a full stop). The one did-you-mean of nas: every message suggests through it."""
    close = closest(word, options, cutoff=0.5)
    if not close:
        return ""
    return f" Did you mean {close!r}?" if sentence else f" (did you mean {close!r}?)"
