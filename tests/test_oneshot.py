"""The one-shot supernet: extraction equals build, sharing, BN recalibration, finalists, tau, the config."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nas.builders import build
from nas.config.experiment import parse_experiment
from nas.data import load_data
from nas.errors import ConfigError
from nas.oneshot import SliceRule, Supernet, has_supernet, slice_slot
from nas.oneshot.ranking import kendall_tau
from nas.oneshot.train import calibration_batches, recalibrate_bn, score_subnet, train_supernet
from nas.profile import profile_model
from nas.search.oneshot.score import ScoredSubnet, pick_finalists, table_csv
from nas.space import load_space

ROOT = Path(__file__).resolve().parent.parent
SPACES = {"cnn": ((1, 8, 8), 10), "nb201": ((3, 8, 8), 10)}


def _profile(model: torch.nn.Module, shape: tuple[int, ...]) -> tuple[float, int]:
    p = profile_model(model, shape, measure_latency=False, measure_memory=False)
    return p.mflops, p.params


@pytest.mark.parametrize("name", sorted(SPACES))
def test_extract_equals_build(name: str) -> None:
    """For a sample of each space: same state-dict keys and shapes, FLOPs and params as build(); the extracted
    weights are the supernet's, and the supernet's own forward computes the same function."""
    space = load_space(ROOT / "search_spaces" / f"{name}.yaml")
    shape, classes = SPACES[name]
    supernet = Supernet(space, shape, classes, seed=0).eval()
    x = torch.randn(2, *shape)
    for i in range(8 if name == "cnn" else 3):
        params = space.sample_random(500 + i)
        built, extracted = build(space, params), supernet.extract(params)
        assert type(extracted) is type(built)
        assert {k: v.shape for k, v in extracted.state_dict().items()} == {k: v.shape for k, v in built.state_dict().items()}
        assert _profile(extracted, shape) == _profile(built, shape)
        with torch.no_grad():
            torch.testing.assert_close(supernet(x, params), extracted(x), rtol=1e-4, atol=1e-5)


def test_cnn_shares_weights_by_slicing() -> None:
    """A 3x3 kernel is the centre of the 5x5 slot; 8 channels are the first 8 of 24; training one architecture
    changes the weights another one inherits."""
    slot = torch.arange(2 * 2 * 5 * 5, dtype=torch.float32).reshape(2, 2, 5, 5)
    torch.testing.assert_close(slice_slot(slot, (1, 2, 3, 3)), slot[:1, :, 1:4, 1:4])
    with pytest.raises(ValueError, match="does not fit"):
        slice_slot(slot, (3, 2, 5, 5))
    space = load_space(ROOT / "search_spaces" / "cnn.yaml")
    supernet = Supernet(space, (1, 8, 8), 10)
    a, b = space.sample_random(1), space.sample_random(2)
    before = supernet.extract(b).state_dict()["stem.0.weight"].clone()
    supernet.train()
    opt = torch.optim.SGD(supernet.parameters(), lr=0.5)
    loss = supernet(torch.randn(8, 1, 8, 8), a).square().mean()
    loss.backward()
    opt.step()
    assert not torch.equal(before, supernet.extract(b).state_dict()["stem.0.weight"])


def test_nb201_shares_by_op() -> None:
    space = load_space(ROOT / "search_spaces" / "nb201.yaml")
    supernet = Supernet(space, (3, 8, 8), 10)
    conv = {e: "nor_conv_3x3" for e in ("edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2")}
    one = {**conv, "edge_1_0": "nor_conv_1x1"}
    w3 = supernet.extract(conv).state_dict()["cells.0.edges.0.1.weight"]
    w1 = supernet.extract(one).state_dict()["cells.0.edges.0.1.weight"]
    assert w3.shape[-1] == 3 and w1.shape[-1] == 1  # different ops on an edge: different weights
    torch.testing.assert_close(supernet.extract(one).state_dict()["cells.0.edges.1.1.weight"],
                               supernet.extract(conv).state_dict()["cells.0.edges.1.1.weight"])


def test_bn_recalibration_changes_statistics() -> None:
    splits = load_data("digits", seed=0)
    space = load_space(ROOT / "search_spaces" / "cnn.yaml")
    supernet = Supernet(space, splits.input_shape, splits.num_classes)
    model = supernet.extract(space.sample_random(3))
    before = model.state_dict()["stem.1.running_mean"].clone()
    recalibrate_bn(model, calibration_batches(splits, batches=2, batch_size=64))
    after = model.state_dict()["stem.1.running_mean"]
    assert not torch.allclose(before, after)
    assert not model.training
    # the recalibrated mean is the batch mean of the stem's conv output
    x = torch.cat(calibration_batches(splits, batches=2, batch_size=64))
    with torch.no_grad():
        expected = model.stem[0](x).mean(dim=(0, 2, 3))
    torch.testing.assert_close(after, expected, rtol=1e-4, atol=1e-5)


def test_supernet_training_lowers_the_loss_and_scores() -> None:
    splits = load_data("digits", seed=0)
    space = load_space(ROOT / "search_spaces" / "cnn.yaml")
    supernet = Supernet(space, splits.input_shape, splits.num_classes)
    epochs = train_supernet(supernet, splits, epochs=3, batch_size=32, sandwich=True, seed=0)
    assert len(epochs) == 3 and epochs[-1].train_flops > epochs[0].train_flops > 0
    assert epochs[-1].train_loss < epochs[0].train_loss
    cal = calibration_batches(splits, batches=2, batch_size=64)
    acc = score_subnet(supernet, space.sample_random(9), splits, cal)
    assert 0.0 <= acc <= 1.0


def test_finalists_and_table() -> None:
    rows = [ScoredSubnet(i, {"a": i}, {"val_accuracy": acc, "mflops": mf}, mf)
            for i, (acc, mf) in enumerate([(0.9, 3.0), (0.8, 1.0), (0.5, 2.0), (0.95, 5.0), (0.4, 4.0)])]
    top, controls = pick_finalists(rows, [("val_accuracy", "maximize"), ("mflops", "minimize")], top_k=3,
                                   controls=1, seed=0)
    assert {r.number for r in top} == {0, 1, 3}  # the front
    assert len(controls) == 1 and controls[0].number in (2, 4)
    text = table_csv(rows, [("val_accuracy", "maximize"), ("mflops", "minimize")])
    assert len(text.strip().splitlines()) == 6


def test_kendall_tau() -> None:
    assert kendall_tau([0.1, 0.2, 0.3, 0.4], [0.5, 0.6, 0.7, 0.8]) == pytest.approx(1.0)
    assert kendall_tau([0.1, 0.2, 0.3, 0.4], [0.8, 0.7, 0.6, 0.5]) == pytest.approx(-1.0)
    assert math.isnan(kendall_tau([0.1, 0.2], [0.3, 0.4]))


def test_builtin_rules_and_default_cover() -> None:
    assert has_supernet("cnn") and has_supernet("nb201") and not has_supernet("mlp")
    space = load_space(ROOT / "search_spaces" / "cnn.yaml")
    cover = SliceRule().cover(space)
    assert {c["stages/0/block"] for c in cover} == {"conv", "mbconv"}
    assert all(c["stages/n"] == 3 and c["stages/2/channels"] == 24 for c in cover)


def test_one_shot_config() -> None:
    space = str(ROOT / "search_spaces" / "cnn.yaml")
    exp = parse_experiment({"space": space, "search": {"strategy": "one-shot"}})
    assert exp.one_shot is not None and exp.one_shot.tau_threshold == 0.5
    assert parse_experiment({"space": space}).one_shot is None
    assert parse_experiment({"space": space, "one_shot": {"top_k": 2}}).one_shot.top_k == 2
    with pytest.raises(ConfigError, match="one_shot/top_k"):
        parse_experiment({"space": space, "one_shot": {"top_k": 0}})
    with pytest.raises(ConfigError, match="one_shot/epoch"):
        parse_experiment({"space": space, "one_shot": {"epoch": 3}})
    with pytest.raises(ConfigError, match="search/strategy"):
        parse_experiment({"space": space, "search": {"strategy": "oneshot"}})


def test_report_shows_supernet_against_standalone(tmp_path: Path) -> None:
    from nas.oneshot.report import finalists_from_csv
    from nas.report.data import ReportData
    from nas.report.html import render_report

    rows = [ScoredSubnet(i, {"a": i}, {"val_accuracy": 0.1 * i, "mflops": 1.0 + i}, 1.0 + i, 10) for i in range(5)]
    text = table_csv(rows, [("val_accuracy", "maximize"), ("mflops", "minimize")],
                     {'{"a": 1}': ("top", 0.5), '{"a": 2}': ("top", 0.7), '{"a": 3}': ("control", 0.6)})
    finalists = finalists_from_csv(text)
    assert [f["role"] for f in finalists] == ["top", "top", "control"]
    html = render_report(ReportData(title="t", run_id="r", trials=[], one_shot=finalists), tmp_path).read_text()
    assert "One-shot: supernet against stand-alone accuracy" in html and "control" in html
    assert "One-shot" not in render_report(ReportData(title="t", run_id="r", trials=[]), tmp_path / "b").read_text()
