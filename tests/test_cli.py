"""The `nas` command in-process: space show, profile --json on NB201 arch strings, and clear refusals."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from nas.cli import main

ROOT = Path(__file__).resolve().parent.parent


def test_space_show(capsys):
    assert main(["space", "show", str(ROOT / "search_spaces" / "cnn.yaml")]) == 0
    out = capsys.readouterr().out
    assert "hash:" in out and "size: continuous" in out and "MFLOPs" in out
    assert main(["space", "show", str(ROOT / "search_spaces" / "nb201.yaml")]) == 0
    assert "15,625 architectures" in capsys.readouterr().out


def _nb201_rows(k: int) -> list[dict]:
    with open(ROOT / "benchmarks" / "data" / "nb201" / "nb201_cifar10.csv") as f:
        rows = list(csv.DictReader(f))
    return rows[:: len(rows) // k][:k]


@pytest.mark.parametrize("row", _nb201_rows(3), ids=lambda r: r["index"])
def test_profile_json_nb201(row, capsys):
    rc = main(["profile", str(ROOT / "search_spaces" / "nb201.yaml"), "--params",
               json.dumps({"arch": row["arch_str"]}), "--json"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    assert {"mflops", "params", "latency_ms"} <= set(d)
    assert abs(d["mflops"] - float(row["flops_M"])) / float(row["flops_M"]) <= 0.02
    assert abs(d["params"] / 1e6 - float(row["params_M"])) / float(row["params_M"]) <= 0.02


@pytest.mark.parametrize(("argv", "message"), [
    (["profile", "search_spaces/nb201.yaml", "--params", "{bad"], "--params: <top>: not valid JSON"),
    (["profile", "search_spaces/nb201.yaml", "--params", "[1]"], "must be a JSON object"),
    (["profile", "search_spaces/nb201.yaml", "--params", '{"arch": "|bogus~0|"}'], "arch"),
    (["space", "show", "no/such/space.yaml"], "no/such/space.yaml"),
    (["search", "no/such/exp.yaml"], "experiment file not found"),
])
def test_refusals_exit_2_with_one_paragraph(argv, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Fix:" in err


def test_bad_flag_is_an_argparse_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["profile", "x.yaml", "--params", "{}", "--input-shape", "3,x,32"])
    assert info.value.code == 2
    assert "not a shape" in capsys.readouterr().err
