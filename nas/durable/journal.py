"""A journal file for an Optuna study that survives a torn write (disk full, power cut, ``kill -9`` mid-write).

Optuna's :class:`JournalFileBackend` appends one JSON record per line. A write cut short leaves a final line
without its newline; Optuna skips it when reading, but its next append is glued onto it, and from then on every
read fails with a ``JSONDecodeError``. :class:`DurableJournalFile` fixes both ends:

* **Reading** skips a torn final record (no newline, or not JSON) and reports it once (``torn_tail``, a warning).
  A bad record followed by good ones is corruption, not a torn write: :class:`JournalCorruptError` names the line.
* **Appending** first cuts a torn tail back to the last complete record (the torn bytes are kept in
  ``<journal>.torn``), so every append starts on a fresh line and the line numbers Optuna counts stay right.
* **Syncing** (``sync``): ``"trial"`` (default) fsyncs the file when a trial finishes (its final state is the
  record a resume rebuilds from) and when a study is created; ``"always"`` after every append (Optuna's own
  behaviour); ``"never"`` leaves it to the OS. Every append is flushed to the OS, so the death of a process never
  loses a record; a power cut can lose what was appended since the last fsync.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from optuna.storages.journal import JournalFileBackend

from nas._compat import JournalOperation, get_lock_file, journal_lock, journal_offsets

log = logging.getLogger(__name__)

SyncPolicy = Literal["trial", "always", "never"]
SYNC_POLICIES: tuple[str, ...] = ("trial", "always", "never")
_FINISHED_STATES = {1, 2, 3}  # TrialState COMPLETE, PRUNED, FAIL
_SYNC_OPS = {int(JournalOperation.CREATE_STUDY), int(JournalOperation.SET_STUDY_USER_ATTR)}


class JournalCorruptError(RuntimeError):
    """A journal record in the middle of the file is not JSON (not a torn final write): the file was damaged."""

    def __init__(self, path: str, line: int, detail: str) -> None:
        self.path, self.line = path, line
        super().__init__(f"{path}: record {line} (line {line + 1}) is damaged ({detail}); records after it are "
                         "intact, so this is not a torn final write. Run `nas doctor RUN_ID` to see what it holds")


@dataclass(frozen=True)
class Tail:
    """The end of a journal file: ``records`` complete records; ``torn_bytes`` after the last one (0 when the file
    ends cleanly); ``torn_text`` the start of those bytes."""

    records: int
    torn_bytes: int
    torn_text: str = ""


def journal_tail(path: str | Path) -> Tail:
    """Inspect a journal without Optuna: complete records and any torn final record."""
    data = Path(path).read_bytes() if Path(path).exists() else b""
    cut = _complete_length(data)
    return Tail(data[:cut].count(b"\n"), len(data) - cut, data[cut:cut + 80].decode("utf-8", "replace"))


def _complete_length(data: bytes) -> int:
    """Bytes up to the end of the last complete record (a JSON line ending in a newline)."""
    end = data.rfind(b"\n") + 1  # 0 when there is no newline at all
    if end > 0:
        start = data.rfind(b"\n", 0, end - 1) + 1
        try:
            json.loads(data[start:end])
        except ValueError:  # the last newline-terminated line is itself torn (e.g. zero-filled blocks)
            return start
    return end


class DurableJournalFile(JournalFileBackend):
    """Optuna's journal file backend with torn-tail repair and a sync policy (see the module docstring)."""

    def __init__(self, file_path: str, sync: SyncPolicy = "trial") -> None:
        Path(file_path).parent.mkdir(parents=True, exist_ok=True)
        existed = Path(file_path).exists()
        super().__init__(file_path)
        if not existed:
            _fsync_dir(Path(file_path).parent)
        self.path, self.sync = Path(file_path), sync
        self.torn_tail: Tail | None = None
        self._clean_size: int | None = None  # the file's size after our last complete append
        tail = journal_tail(file_path)
        if tail.torn_bytes:
            self.torn_tail = tail
            log.warning("%s: torn final record (%d bytes after record %d) ignored; it never reached the study "
                        "(a write was cut short)", file_path, tail.torn_bytes, tail.records)

    def read_logs(self, log_number_from: int) -> Generator[dict[str, Any], None, None]:
        try:
            yield from super().read_logs(log_number_from)
        except ValueError as e:  # a bad record (Optuna skips a bad final one only when it decodes as text)
            lines = self.path.read_bytes().splitlines()
            bad = self._bad_line(lines)
            if bad != len(lines) - 1:
                raise JournalCorruptError(str(self.path), bad, str(e)) from None
            if self.torn_tail is None:
                self.torn_tail = journal_tail(self.path)
                log.warning("%s: torn final record ignored (%s)", self.path, e)

    def append_logs(self, logs: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(entry, separators=(",", ":")) + "\n" for entry in logs).encode("utf-8")
        with get_lock_file(journal_lock(self)), open(self.path, "r+b") as f:
            size = f.seek(0, os.SEEK_END)
            if size and size != self._clean_size:  # written by someone else since our last append: check its end
                f.seek(max(0, size - 1))
                if f.read(1) != b"\n" or not self._last_line_ok(f, size):
                    size = self._cut_torn_tail(f, size)
            f.seek(size)
            f.write(text)
            f.flush()
            self._clean_size = size + len(text)
            if self.sync == "always" or (self.sync == "trial" and _is_boundary(logs)):
                os.fsync(f.fileno())

    def _last_line_ok(self, f: Any, size: int) -> bool:
        f.seek(max(0, size - 65536))
        chunk = f.read()
        start = chunk.rfind(b"\n", 0, len(chunk) - 1) + 1
        if start == 0 and size > 65536:
            return True  # one record longer than the window: trust its newline
        try:
            json.loads(chunk[start:])
            return True
        except ValueError:
            return False

    def _cut_torn_tail(self, f: Any, size: int) -> int:
        f.seek(0)
        data = f.read()
        cut = _complete_length(data)
        with open(str(self.path) + ".torn", "ab") as keep:
            keep.write(data[cut:] + b"\n")
        f.truncate(cut)
        os.fsync(f.fileno())
        offsets = journal_offsets(self)
        for number in [n for n, at in offsets.items() if at > cut]:  # cached positions past the cut are stale
            del offsets[number]
        log.warning("%s: cut a torn final record of %d bytes (kept in %s.torn) before appending", self.path,
                    size - cut, self.path)
        return cut

    @staticmethod
    def _bad_line(lines: list[bytes]) -> int:
        for i, line in enumerate(lines):
            try:
                json.loads(line)
            except ValueError:
                return i
        return -1


def _is_boundary(logs: list[dict[str, Any]]) -> bool:
    """True when the records finish a trial or create/tag a study."""
    for entry in logs:
        op = entry.get("op_code")
        if op in _SYNC_OPS or (op == JournalOperation.SET_TRIAL_STATE_VALUES and entry.get("state") in _FINISHED_STATES):
            return True
    return False


def _fsync_dir(folder: Path) -> None:
    """Make a new file's directory entry durable."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
