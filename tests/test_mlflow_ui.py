"""End to end in a real browser: a real tiny search, a real ``mlflow ui`` on a free loopback port, Debian's headless
Chromium; the parent run and all its child runs must show in the MLflow runs table, a child run must show while its
trial is running, and the registered model's page must list its versions (benchmarks/mlflow_ui_check.py).

The server, the search and the browser are stopped by the check's own context managers, also when it fails or
when pytest-timeout interrupts it (signal method: the exception unwinds through them).
"""

from __future__ import annotations

import importlib.util
import shutil
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


def _load_check():
    spec = importlib.util.spec_from_file_location("mlflow_ui_check", ROOT / "benchmarks" / "mlflow_ui_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.mark.timeout(400)
def test_parent_and_children_in_mlflow_ui(tmp_path):
    if shutil.which("chromium") is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); the check needs a real browser")
    check_mod = _load_check()
    shot = tmp_path / "mlflow_ui.png"

    check = check_mod.run_check(screenshot=shot, workdir=tmp_path / "work")
    print(check_mod.report(check))

    assert check.parent_found, f"parent run {check.parent_name} not on the runs page"
    assert check.parent_name.startswith("ui-check-")
    assert check.children == [f"trial-{i:04d}" for i in range(4)]
    assert check.expander == "clicked"
    assert check.children_found == check.children, f"child runs missing in the UI: {check.children_found}"
    assert check.children_in_table == check.children  # all in the expanded table, none needed the filtered page
    assert check.default_view  # the experiment's default page rendered (which view it picks is up to MLflow)
    assert check.foreign_requests == [], "the page asked for something other than 127.0.0.1"
    assert check.ok
    # a trial's child run opened while it was still running, and the registered model's page with its versions
    assert check.running_child.startswith("trial-") and "Running" in check.running_shown, check.running_shown
    assert check.model_name == "nas-ui-check" and "Version 1" in check.model_versions_shown
    assert shot.is_file() and shot.stat().st_size > 10_000
    assert _png_size(shot) == (check_mod.WIDTH, check_mod.HEIGHT)
