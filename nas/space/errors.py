"""``SpaceError``: one validation or replay problem, with where it is and how to fix it."""

from __future__ import annotations

from collections.abc import Iterable

from nas.errors import ConfigError, closest


def _sentence(text: str) -> str:
    """Collapse whitespace so the message stays one paragraph."""
    return " ".join(str(text).split())


class SpaceError(ConfigError):
    """A search space (or a params dict replayed against one) is invalid.

    ``file`` is the source file (or ``'<string>'``), ``path`` the '/'-joined location inside it ('' for the
    top level; for a replayed params dict, the param name), ``problem`` what is wrong, ``fix`` what to do.
    ``line`` is the 1-based line in ``file`` when known, else ``None``. ``str(err)`` is
    ``f"{file}: {path or '<top>'}: {problem}. Fix: {fix}"``.
    """

    def __init__(self, file: str, path: str, problem: str, fix: str, *, line: int | None = None) -> None:
        self.file = str(file)
        self.path = str(path)
        self.problem = _sentence(problem).rstrip(".")
        self.fix = _sentence(fix)
        self.line = line
        ValueError.__init__(self, str(self))

    def __str__(self) -> str:
        return f"{self.file}: {self.path or '<top>'}: {self.problem}. Fix: {self.fix}"

    def __reduce__(self) -> tuple[object, ...]:
        # Keep the error picklable (Ray ships exceptions between processes).
        return (_rebuild, (self.file, self.path, self.problem, self.fix, self.line))


def _rebuild(file: str, path: str, problem: str, fix: str, line: int | None) -> SpaceError:
    return SpaceError(file, path, problem, fix, line=line)


def join(path: str, key: object) -> str:
    """``path/key`` ('' is the top level)."""
    return f"{path}/{key}" if path else str(key)


def options_hint(word: object, options: Iterable[str], what: str = "allowed") -> str:
    """``"did you mean 'x'? allowed: a, b"`` (the first part only when a close match exists)."""
    opts = list(options)
    close = closest(word, opts)
    listing = f"{what}: {', '.join(opts) if opts else '(none)'}"
    return f"did you mean {close!r}? ({listing})" if close else listing
