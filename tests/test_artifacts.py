"""Artifacts are data, not code: a stored model folder cannot make `load_model`, `nas export` or `nas compress`
run a pickle payload or import a `module:function` it names, unless the user trusts it (--trust-code)."""

from __future__ import annotations

import json
import os
import shutil
import sys

import pytest
import torch
from conftest import FIXTURES

from nas.builders import build
from nas.errors import ConfigError
from nas.space import load_space
from nas.tracking.models import load_model_dir
from nas.training.checkpoint import WEIGHTS_FILE, load_module, save_module


class _Payload:
    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _model_folder(tmp_path, space_file=FIXTURES / "tiny_cnn.yaml"):
    space = load_space(space_file)
    folder = tmp_path / "nas_model"
    folder.mkdir()
    shutil.copy(space_file, folder / "space.yaml")
    params = space.sample_random(0)
    model = build(space, params, input_shape=(1, 8, 8), num_classes=10)
    torch.save(model.state_dict(), folder / WEIGHTS_FILE)
    (folder / "arch.json").write_text(json.dumps({"params": params, "space_hash": space.hash, "input_shape": [1, 8, 8],
                                                  "num_classes": 10, "space_source": str(space_file)}))
    return folder


def test_a_pickle_payload_in_model_pt_does_not_run(tmp_path):
    """Failed first against 21848af: load_model_dir ran `os.system` from the artifact's model.pt."""
    folder = _model_folder(tmp_path)
    marker = tmp_path / "pwned"
    torch.save(_Payload(str(marker)), folder / "model.pt")
    with pytest.raises(ConfigError, match="pickled Python module"):
        load_model_dir(folder)
    assert not marker.exists()


def test_a_module_function_builder_named_by_the_artifact_is_not_imported(tmp_path, monkeypatch):
    """Failed first against 21848af: rebuilding imported (and ran) the `module:function` of the artifact's space."""
    marker = tmp_path / "imported"
    (tmp_path / "evil_builder.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "def build(*, input_shape, num_classes, **kw):\n    raise SystemExit('ran')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    folder = _model_folder(tmp_path)
    text = (folder / "space.yaml").read_text().replace("builder: cnn", "builder: evil_builder:build")
    (folder / "space.yaml").write_text(text)
    with pytest.raises(ConfigError, match="--trust-code"):
        load_model_dir(folder)
    assert not marker.exists() and "evil_builder" not in sys.modules


def test_built_in_models_load_without_trust(tmp_path):
    model = load_model_dir(_model_folder(tmp_path))
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 10)


def test_a_compressed_module_loads_from_torchscript_without_trust(tmp_path):
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 10)).eval()
    save_module(model, tmp_path, (1, 8, 8))
    loaded = load_module(tmp_path)
    x = torch.randn(3, 1, 8, 8)
    assert torch.allclose(loaded(x), model(x))
    trusted = load_module(tmp_path, trust_code=True)
    assert isinstance(trusted, torch.nn.Sequential)
