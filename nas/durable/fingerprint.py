"""The fingerprint of an experiment: what a resumed search must share with the search it continues.

Resume refuses (exit 2, nothing changed) when any field outside :data:`EXTENDABLE` differs: objectives,
constraints, training, data, resources, profiling, the space (by content hash) and everything else that changes
what a trial means. The extendable fields only say how long to go on or where to log.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

#: Dotted experiment fields a resume may change: how many trials, how long, how many at once, where to log.
EXTENDABLE: tuple[str, ...] = (
    "search.trials", "search.time_budget_s", "search.max_failures", "search.concurrency", "budget", "plateau",
    "tracking", "energy", "name",
)
#: Bookkeeping fields that never describe the search: where the files were read from.
_IGNORED: tuple[str, ...] = ("source", "space", "raw")


def fingerprint_doc(experiment: Mapping[str, Any], space_hash: str) -> dict[str, Any]:
    """The experiment as a plain dict without extendable and bookkeeping fields, with the space's content hash."""
    doc = json.loads(json.dumps(dict(experiment), default=str, sort_keys=True))
    for dotted in (*EXTENDABLE, *_IGNORED):
        *parents, leaf = dotted.split(".")
        node = doc
        for p in parents:
            node = node.get(p, {}) if isinstance(node, dict) else {}
        if isinstance(node, dict):
            node.pop(leaf, None)
    doc["space_hash"] = space_hash
    return doc


def fingerprint(doc: Mapping[str, Any]) -> str:
    """A short stable hash of a :func:`fingerprint_doc`."""
    return hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:16]


def differences(old: Any, new: Any, path: str = "") -> list[str]:
    """Dotted paths where two fingerprint docs differ, each with both values (``path: old -> new``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out: list[str] = []
        for k in sorted(set(old) | set(new), key=str):
            out += differences(old.get(k), new.get(k), f"{path}.{k}" if path else str(k))
        return out
    return [] if old == new else [f"{path}: {json.dumps(old)} -> {json.dumps(new)}"]
