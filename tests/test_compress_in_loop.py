"""Compression in the loop, below the search: ``run_trial`` takes the step from its caller (training sits below
compression), refuses a compressing space without it, and with it returns the compressed model's objectives."""

from __future__ import annotations

import pytest
import yaml

from nas.compress.in_loop import compress_trained
from nas.space import parse_space
from nas.training.trial import TrialSpec, run_trial

SPACE = {
    "builder": "mlp", "input_shape": [1, 8, 8], "num_classes": 10,
    "params": {"width": 32, "depth": 1},
    "compression": {"prune": {"type": "categorical", "choices": [0.0, 0.5]}},
}


def spec(prune: float, tmp_path) -> TrialSpec:
    text = yaml.safe_dump(SPACE)
    (tmp_path / "space.yaml").write_text(text)
    space = parse_space(SPACE, source=str(tmp_path / "space.yaml"))
    return TrialSpec(number=0, params={"width": 32, "depth": 1, "compression/prune": prune}, space_yaml=text,
                     space_source=str(tmp_path / "space.yaml"), space_hash=space.hash, data={"name": "digits"},
                     training={"epochs": 1, "lr": 0.01}, seed=0, mflops=0.004)


def test_a_compressing_space_without_the_step_is_refused(tmp_path):
    with pytest.raises(ValueError, match="compresses after training"):
        run_trial(spec(0.5, tmp_path))


def test_the_step_compresses_and_remeasures(tmp_path):
    _, module, final = run_trial(spec(0.5, tmp_path), post_train=compress_trained)
    assert not isinstance(module, dict)  # the compressed module, saved whole
    assert final["uncompressed_mflops"] == 0.004 and final["params"] < 64 * 32 + 32 * 10 + 32 + 10
    assert "uncompressed_val_accuracy" in final and final["compress_flops"] >= 0


def test_a_plan_that_does_nothing_keeps_the_trained_weights(tmp_path):
    _, state, final = run_trial(spec(0.0, tmp_path), post_train=compress_trained)
    assert isinstance(state, dict) and "uncompressed_val_accuracy" not in final
