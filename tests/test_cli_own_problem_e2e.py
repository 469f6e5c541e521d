"""The commands after a search, on one real search (Ray, MLflow sqlite, Optuna) of a user's own problem: run-id
prefixes, one-paragraph errors with exit 2, queries that match nothing, read-only commands that never create a
store, the export round trip in all three formats, and a resume that keeps the original overrides."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow import MlflowClient
from test_silent_failures_e2e import problem

from nas.cli import main

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.fixture(scope="module")
def searched(tmp_path_factory, ray_cluster):
    root = tmp_path_factory.mktemp("own")
    exp = problem(root / "p", trials=3)
    uri = f"sqlite:///{root / 'mlflow.db'}"
    assert main(["search", str(exp), "--quiet", "--tracking-uri", uri, "--trials", "2", "--seed", "3"]) == 0
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("own-problem").experiment_id
    run_id = client.search_runs([experiment], "tags.`nas.kind` = 'search'")[0].info.run_id
    return exp, uri, run_id, root


def test_prefix_and_one_paragraph_errors(searched, capsys, tmp_path):
    exp, uri, run_id, _ = searched
    capsys.readouterr()
    assert main(["pareto", run_id[:6], "--tracking-uri", uri]) == 0
    out = capsys.readouterr().out
    assert f"Pareto set of {run_id[:8]}" in out and "test_accuracy" in out
    assert max(len(line) for line in out.splitlines()) <= 80
    cases = [
        (["pareto", run_id[:6], "--where", "mflop<=0.1"], "--where: <top>: no metric 'mflop'", "did you mean 'mflops'"),
        (["export", run_id[:6], "--best", "accuracy", "-o", str(tmp_path / "m.pt")], "--best", "'val_accuracy'"),
        (["export", run_id[:6], "--best", "test_accuracy", "-o", str(tmp_path / "m.pt")], "--best",
         "never used to choose"),
        (["export", run_id[:6], "-o", "/missing/dir/m.pt"], "-o/--output", "does not exist"),
        (["pareto", "ffffffff"], "RUN_ID", "no search run id starts with 'ffffffff'"),
        (["report", "zz", "-o", str(tmp_path / "r")], "RUN_ID", "is not a run id"),
    ]
    for argv, where, what in cases:
        rc = main([*argv, "--tracking-uri", uri])
        err = capsys.readouterr().err
        assert rc == 2, (argv, err)
        assert err.startswith(f"error: {where}") and what in err and "Fix:" in err and err.count("\n") == 1, err
    assert main(["pareto", run_id, "--where", "val_accuracy>=1.5", "--tracking-uri", uri]) == 1
    assert "no Pareto model of" in capsys.readouterr().err


def test_read_only_commands_never_create_a_store(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["pareto", "abcd1234"]) == 2
    assert "no tracking store at 'sqlite:///mlflow.db'" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("fmt", ["pt", "torchscript", "onnx"])
def test_export_round_trip(fmt, searched, capsys, tmp_path):
    import nas

    _, uri, run_id, _ = searched
    out = tmp_path / f"model.{fmt}"
    capsys.readouterr()
    # the builder is the user's own module:function, so rebuilding it runs code the store names: --trust-code
    assert main(["export", run_id[:8], "-o", str(out), "--format", fmt, "--tracking-uri", uri, "--trust-code"]) == 0
    said = capsys.readouterr().out
    latency = float(re.search(r"latency ([0-9.e-]+) ms per sample there", said).group(1))
    assert latency > 0
    model = nas.load_model(run_id, tracking_uri=uri, trust_code=True)  # the PyTorch model, on preprocessed inputs
    arch = model.nas_arch
    from nas.data.preprocess import to_raw
    from nas.training.trial import cached_splits

    x = cached_splits(arch["data"]).test.tensors[0][:32]
    with torch.no_grad():
        expected = model(x).numpy()
    raw = to_raw(x, arch["preprocessing"], tuple(arch["input_shape"])).numpy().astype(np.float32)
    if fmt == "pt":  # loads back with nas.load_model(path), on preprocessed inputs like the original
        with torch.no_grad():
            got = nas.load_model(str(out), trust_code=True)(x).numpy()
    elif fmt == "torchscript":  # no nas needed: torch only, raw inputs
        with torch.no_grad():
            got = torch.jit.load(str(out))(torch.from_numpy(raw)).numpy()
    else:  # no torch needed: onnxruntime, raw inputs
        import onnxruntime

        got = onnxruntime.InferenceSession(str(out)).run(None, {"input": raw})[0]
    assert np.abs(got - expected).max() <= 1e-4


def test_resume_by_prefix_keeps_the_original_overrides(searched, capsys):
    exp, uri, run_id, _ = searched
    capsys.readouterr()
    assert main(["search", str(exp), "--quiet", "--tracking-uri", uri, "--resume", run_id[:8]]) == 0
    out = capsys.readouterr().out
    assert f"resuming search {run_id}: 2 trials in all (as the search started), seed 3 (as the search started)" in out
    assert f"search resumed: run_id {run_id}" in out
    assert "Pareto set (" in out and Path(exp).is_file()
