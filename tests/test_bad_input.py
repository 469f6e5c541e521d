"""Bad input to `nas search`: each refusal is one paragraph naming the file, field or flag and the fix, exits 2,
and leaves no run behind in the tracking store."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import yaml
from conftest import FIXTURES
from mlflow import MlflowClient

from nas.cli import main


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write(tmp_path: Path, **doc) -> Path:
    base = {"space": str(FIXTURES / "tiny_cnn.yaml"), "training": {"epochs": 1},
            "search": {"trials": 2, "concurrency": 1},
            "tracking": {"uri": f"sqlite:///{tmp_path / 'mlflow.db'}", "experiment": "bad"}}
    for k, v in doc.items():
        base[k] = {**base.get(k, {}), **v} if isinstance(v, dict) and isinstance(base.get(k), dict) else v
    p = tmp_path / "exp.yaml"
    p.write_text(yaml.safe_dump(base))
    return p


def _no_runs(tmp_path: Path) -> bool:
    db = tmp_path / "mlflow.db"
    if not db.exists():
        return True
    client = MlflowClient(f"sqlite:///{db}")
    return all(not client.search_runs([e.experiment_id]) for e in client.search_experiments())


CSV_BAD = "a,b,label\n1,x,0\n2,3,1\n"

CASES = [
    ("tracking uri: no server", {}, lambda t: ["--tracking-uri", f"http://127.0.0.1:{_free_port()}"],
     "no MLflow tracking server answers"),
    ("tracking uri: missing folder", {}, lambda t: ["--tracking-uri", f"sqlite:///{t}/nope/mlflow.db"],
     "of the sqlite store does not exist"),
    ("ray address: nothing listens", {}, lambda t: ["--address", f"127.0.0.1:{_free_port()}"],
     "nothing answers at the Ray address"),
    ("dataset: unknown name", {"data": {"name": "digitz"}}, lambda t: [], "did you mean 'digits'"),
    ("dataset: missing csv", {"data": {"name": "csv", "options": {"path": "/no/such.csv"}}}, lambda t: [],
     "/no/such.csv"),
    ("dataset: corrupt csv", {"data": {"name": "csv", "options": {"path": "PLACEHOLDER"}}}, lambda t: [],
     "not numeric"),
    ("dataset: torchvision set offline", {"data": {"name": "cifar10"}}, lambda t: [], "cifar10"),
    ("constraints: unsatisfiable", {"constraints": {"mflops": {"max": 1e-9}}}, lambda t: [],
     "none of"),
    ("objective: nothing produces it", {"objectives": ["val_accuracy", "energy"]}, lambda t: [],
     "no part of nas produces the metric 'energy'"),
    ("flag: --trials 0", {}, lambda t: ["--trials", "0"], "--trials"),
    ("resume: unknown run id", {}, lambda t: ["--resume", "0" * 32], "--resume: <top>: no tracking store"),
    ("space: broken file", {"space": str(Path(__file__).parent / "broken_spaces" / "low_gt_high.yaml")},
     lambda t: [], "low"),
]


@pytest.mark.parametrize(("doc", "flags", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_search_refuses_bad_input(doc, flags, message, tmp_path, capsys):
    if doc.get("data", {}).get("options", {}).get("path") == "PLACEHOLDER":
        (tmp_path / "bad.csv").write_text(CSV_BAD)
        doc = {"data": {"name": "csv", "options": {"path": str(tmp_path / "bad.csv")}}}
    exp = _write(tmp_path, **doc)
    code = main(["search", str(exp), "--quiet", *flags(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "error: " in err and message.lower() in err.lower(), err
    assert _no_runs(tmp_path)


def test_bad_flags_are_refused_by_the_parser(capsys):
    for argv in (["search"], ["search", "x.yaml", "--trials", "many"], ["serach", "x.yaml"], ["export", "id"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert "invalid int value: 'many'" in capsys.readouterr().err
