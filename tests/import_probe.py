"""Import each nas module in a forked child of one warm process and report, as JSON on stdout, what the import
loaded and changed: Ray or MLflow imported, pyplot imported, ``matplotlib.use`` called, environment variables
written, SQLAlchemy event listeners registered. Changes that importing Ray or MLflow itself makes (their own
footprint, measured the same way) are not counted against nas. Run by tests/test_imports.py."""
from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path

#: imported once in the parent (each fork inherits them): nas's own dependencies, then the heaviest third-party
#: packages Ray and MLflow import (not Ray or MLflow themselves, which must load only where the probe says)
PRELOAD = ("numpy", "torch", "optuna", "sklearn", "scipy", "pandas", "yaml", "pydantic", "matplotlib",
           "matplotlib.figure", "sqlalchemy", "fvcore.nn", "moocore", "rich",
           "fastapi", "pyarrow", "pyparsing", "urllib3", "opentelemetry.trace", "google.protobuf")


def modules() -> list[str]:
    """Every module of the package, found on disk (importing nothing)."""
    root = Path(__file__).resolve().parent.parent
    names = []
    for path in sorted((root / "nas").rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return names


def probe(name: str) -> dict:
    import matplotlib
    import sqlalchemy.event

    used, listened = [], []
    matplotlib.use = lambda *a, **k: used.append(a)  # record, never switch
    real_listen, real_listens_for = sqlalchemy.event.listen, sqlalchemy.event.listens_for
    sqlalchemy.event.listen = lambda t, i, *a, **k: (listened.append(i), real_listen(t, i, *a, **k))[1]
    sqlalchemy.event.listens_for = lambda t, i, *a, **k: (listened.append(i), real_listens_for(t, i, *a, **k))[1]
    env = dict(os.environ)
    before = set(sys.modules)
    error = None
    try:
        for module in name.split(","):
            importlib.import_module(module)
    except Exception as err:  # reported, not raised
        error = f"{type(err).__name__}: {err}"
    top = {m.split(".")[0] for m in sys.modules}
    return {
        "error": error,
        "ray": "ray" in top, "mlflow": "mlflow" in top,
        "pyplot": "matplotlib.pyplot" in set(sys.modules) - before, "matplotlib_use": bool(used),
        "env": sorted(k for k in set(env) | set(os.environ) if env.get(k) != os.environ.get(k)),
        "listeners": sorted(set(listened)),
    }


def start_child(name: str) -> tuple[int, int]:
    """Fork a child that runs :func:`probe` of ``name`` and writes its JSON to a pipe: (pid, read end)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            data = json.dumps(probe(name)).encode()
        except BaseException as err:  # noqa: BLE001
            data = json.dumps({"error": repr(err)}).encode()
        with os.fdopen(w, "wb") as f:
            f.write(data)
        os._exit(0)
    os.close(w)
    return pid, r


def collect(child: tuple[int, int]) -> dict:
    """The result of a child from :func:`start_child` (it is reaped)."""
    pid, r = child
    with os.fdopen(r, "rb") as f:
        result = json.loads(f.read() or b"{}")
    os.waitpid(pid, 0)
    return result


def in_child(name: str) -> dict:
    """:func:`probe` of ``name`` in a forked child (this process stays as it was)."""
    return collect(start_child(name))


def in_children(names: list[str], width: int) -> dict[str, dict]:
    """:func:`probe` of each of ``names``, ``width`` forked children at a time (each child is independent)."""
    out: dict[str, dict] = {}
    running: list[tuple[str, tuple[int, int]]] = []
    for name in names:
        running.append((name, start_child(name)))
        if len(running) >= width:
            done, child = running.pop(0)
            out[done] = collect(child)
    for done, child in running:
        out[done] = collect(child)
    return out


THIRD_PARTY = "ray,ray.tune,mlflow,mlflow.store.tracking.sqlalchemy_store,mlflow.store.tracking.dbmodels.models"


def main() -> None:
    for m in PRELOAD:
        importlib.import_module(m)
    theirs = in_child(THIRD_PARTY)
    out = in_children(modules(), width=max(2, os.cpu_count() or 1))
    for result in out.values():
        for key in ("env", "listeners"):
            result[key] = sorted(set(result.get(key, ())) - set(theirs.get(key, ())))
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
