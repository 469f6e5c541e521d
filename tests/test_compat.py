"""Every private third-party API in nas/_compat.py, checked against the installed versions: an upgrade that moves
or changes one fails here, by name."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from nas import _compat


def test_importing_compat_loads_none_of_them():
    code = ("import sys, nas._compat; heavy = {'mlflow', 'optuna', 'fvcore', 'torch', 'ray'} & "
            "{m.split('.')[0] for m in sys.modules}; print(sorted(heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_name_resolves():
    for name in _compat.LOADERS:
        assert getattr(_compat, name) is not None, name
    with pytest.raises(AttributeError):
        _compat.no_such_name  # noqa: B018


def test_optuna_journal_lock(tmp_path):
    from optuna.storages.journal import JournalFileOpenLock

    lock = JournalFileOpenLock(str(tmp_path / "j.log"))
    with _compat.get_lock_file(lock):
        assert (tmp_path / "j.log.lock").exists()
    assert not (tmp_path / "j.log.lock").exists()


def test_mlflow_store_api():
    from mlflow.entities import Metric, Param, RunTag

    metrics, params, tags = _compat.validate_batch_log_data([Metric("m", 1.0, 0, 0)], [Param("p", "v")],
                                                            [RunTag("t", "v")])
    assert [m.key for m in metrics] == ["m"] and [p.key for p in params] == ["p"] and [t.key for t in tags] == ["t"]
    with pytest.raises(Exception, match="(?i)param"):
        _compat.validate_batch_log_data([], [Param("p" * 1000, "v")], [])
    assert _compat.SqlAlchemyStore.ARTIFACTS_FOLDER_NAME == "artifacts"
    tables = {n: getattr(_compat, n).__tablename__ for n in
              ("SqlExperiment", "SqlLatestMetric", "SqlMetric", "SqlParam", "SqlRun", "SqlTag")}
    assert tables == {"SqlExperiment": "experiments", "SqlLatestMetric": "latest_metrics", "SqlMetric": "metrics",
                      "SqlParam": "params", "SqlRun": "runs", "SqlTag": "tags"}
    assert {"run_uuid", "key", "value"} <= set(_compat.SqlParam.__table__.columns.keys())


def test_fvcore_tables():
    assert callable(_compat.FVCORE_DEFAULT_OPS["aten::addmm"])
    assert "aten::relu" in _compat.FVCORE_IGNORED_OPS


def test_torch_tracer_and_profiler_enum():
    graph, out = _compat.get_trace_graph(torch.nn.Linear(3, 2), (torch.zeros(1, 3),))
    assert any(n.kind() in ("aten::linear", "aten::addmm") for n in graph.nodes())
    assert _compat.AutogradDeviceType.CPU != _compat.AutogradDeviceType.CUDA


def test_optuna_journal_internals(tmp_path):
    import optuna
    from optuna.storages.journal import JournalFileBackend

    backend = JournalFileBackend(str(tmp_path / "j"))
    with _compat.get_lock_file(_compat.journal_lock(backend)):  # Optuna's own cross-process append lock
        pass
    study = optuna.create_study(storage=optuna.storages.JournalStorage(backend))
    study.tell(study.ask(), 1.0)
    offsets = _compat.journal_offsets(backend)
    assert offsets[0] == 0 and all(isinstance(k, int) and isinstance(v, int) for k, v in offsets.items())
    ops = (tmp_path / "j").read_text().splitlines()
    assert f'"op_code":{int(_compat.JournalOperation.CREATE_STUDY)}' in ops[0]
    assert any(f'"op_code":{int(_compat.JournalOperation.SET_TRIAL_STATE_VALUES)}' in op and '"state":1' in op
               for op in ops)
