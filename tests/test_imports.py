"""Import boundaries (issue 13): the import-linter contracts in pyproject.toml, and what importing each module does.

- only ``nas.search.backends.ray`` imports Ray, only ``nas.tracking`` imports MLflow;
- lower layers never import higher ones, and no two packages import each other;
- importing a module has no side effects: no ``matplotlib.use``, no pyplot, no ``os.environ`` writes, no
  SQLAlchemy event listeners, and Ray and MLflow load only with the modules that use them.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"

#: modules whose import loads Ray: the backend, and the search API that starts it
RAY_AT_IMPORT = {"nas.search.backends.ray", "nas.search.api", "nas.search.oneshot.run"}
#: modules whose import loads MLflow: the tracking package and what logs to it at module level
MLFLOW_AT_IMPORT = {  # the search loop writes to a Sink (nas.search.sink): nas bench runs it without MLflow
    "nas.tracking.tracker", "nas.tracking.models", "nas.search.api", "nas.search.compress_front", "nas.report.run",
    "nas.tracking.sync", "nas.tracking.retry", "nas.search.doctor",
    "nas.search.oneshot.run",
}


def lint(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([sys.executable, "-c", LINT], cwd=root, env=env, capture_output=True, text=True,
                          timeout=300)


def test_import_contracts_hold():
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "BROKEN" not in out.stdout and "Contracts: 4 kept, 0 broken" in out.stdout, out.stdout


def test_every_package_is_in_a_layer_and_none_is_excused():
    """A new top-level package cannot escape the layers by being left out of them, and no import is excused."""
    import tomllib

    contracts = {c["id"]: c for c in tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
                 ["contracts"]}
    layered = {m.strip() for layer in contracts["layers"]["layers"] for m in layer.replace(":", "|").split("|")}
    top = {f"nas.{p.stem if p.is_file() else p.name}" for p in (ROOT / "nas").iterdir()
           if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").is_file()}
    assert top - layered == set()
    assert "ignore_imports" not in contracts["layers"] and "ignore_imports" not in contracts["acyclic"]


def test_a_new_ray_import_breaks_the_contract(tmp_path):
    """The contracts can fail: a copy of the package with ``import ray`` in the config package is refused."""
    shutil.copytree(ROOT / "nas", tmp_path / "nas", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    data = tmp_path / "nas" / "config" / "data.py"
    data.write_text(data.read_text().replace("from __future__ import annotations\n",
                                             "from __future__ import annotations\n\nimport ray  # noqa: F401\n", 1))
    out = lint(tmp_path)
    assert out.returncode != 0
    assert "only nas.search.backends.ray imports Ray BROKEN" in " ".join(out.stdout.split())
    assert "nas.config.data -> ray" in out.stdout


@pytest.fixture(scope="module")
def imports() -> dict[str, dict]:
    """What importing each module did, each in a fresh (forked) interpreter state."""
    out = subprocess.run([sys.executable, str(ROOT / "tests" / "import_probe.py")], cwd=ROOT, capture_output=True,
                         text=True, env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=1200)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


@pytest.mark.slow
def test_every_module_imports_cleanly(imports):
    assert len(imports) > 100
    assert {m: r["error"] for m, r in imports.items() if r.get("error")} == {}


@pytest.mark.slow
def test_ray_and_mlflow_load_only_where_used(imports):
    assert {m for m, r in imports.items() if r["ray"]} == RAY_AT_IMPORT
    assert {m for m, r in imports.items() if r["mlflow"]} == MLFLOW_AT_IMPORT
    assert not imports["nas"]["mlflow"] and not imports["nas.tracking.models"]["ray"]  # nas.load_model: no Ray


@pytest.mark.slow
def test_no_side_effects_at_import(imports):
    for check in ("matplotlib_use", "pyplot", "env", "listeners"):
        assert {m: r[check] for m, r in imports.items() if r[check]} == {}, check
