"""nas.compress: every method's costs checked against hand counts, and accuracy measured, never copied.

FLOP convention (nas.profile.flops, checked in ``test_count_flops_convention``): one multiply-add = 1 FLOP, plus
one add per output element of a layer with a bias; activations, norms and pooling are not in the total.
"""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn
from torch.utils.data import TensorDataset

from nas.builders.cnn import cnn
from nas.builders.mlp import mlp
from nas.compress import (
    METHODS,
    CompressedModel,
    compress,
    count_params,
    finetune,
    lowrank_params,
    measure,
    model_size_mb,
    register_method,
)
from nas.data import load_data
from nas.profile import count_flops
from nas.training.train import evaluate, train

CONV3 = {"type": "conv", "kernel": 3}
MB = {"type": "mbconv", "expand": 3, "kernel": 3, "se": True}
CALIB_N = 64


def hand_mlp() -> nn.Sequential:
    """64 -> 32 -> 32 -> 10 with ReLUs."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 10)
    )


def plain_cnn(stem: int = 8, channels: int = 16) -> nn.Module:
    torch.manual_seed(0)
    return cnn(input_shape=(1, 8, 8), num_classes=10, stem_channels=stem,
               stages=[{"channels": channels, "block": CONV3}, {"channels": channels, "stride": 2, "block": CONV3}])


def mbconv_cnn(input_shape: tuple[int, ...] = (1, 8, 8)) -> nn.Module:
    torch.manual_seed(0)
    return cnn(input_shape=input_shape, num_classes=10, stem_channels=8, stages=[
        {"channels": 16, "stride": 2, "block": CONV3},
        {"channels": 24, "block": {"type": "mbconv", "expand": 1, "kernel": 5, "se": False}},  # not residual
        {"channels": 24, "depth": 2, "block": MB},  # residual blocks
        {"channels": 32, "stride": 2, "block": MB},  # not residual, feeds the classifier
    ])


def convs(model: nn.Module) -> list[nn.Conv2d]:
    return [m for m in model.modules() if isinstance(m, nn.Conv2d)]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Tiny models train and run fastest on one thread (and shared CPUs do not thrash)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    return load_data("digits", seed=0)


@pytest.fixture(scope="module")
def trained_mlp(digits) -> nn.Module:
    """A Linear-dominated MLP (64 -> 128 -> 128 -> 10) trained 5 epochs on digits."""
    torch.manual_seed(0)
    model = mlp(input_shape=digits.input_shape, num_classes=10, width=128, depth=2)
    train(model, digits, epochs=5, lr=1e-3, seed=0)
    return model


@pytest.fixture(scope="module")
def trained_cnn(digits) -> nn.Module:
    model = plain_cnn(stem=8, channels=16)
    train(model, digits, epochs=3, lr=3e-3, seed=0)
    return model


# ---- registry -----------------------------------------------------------------------------------------------

def test_methods_table_and_errors() -> None:
    assert {"none", "prune_structured", "prune_unstructured", "int8", "lowrank"} <= set(METHODS)
    with pytest.raises(ValueError, match="already registered"):
        register_method("lowrank")(lambda model: CompressedModel(model=model, method="lowrank"))
    with pytest.raises(ValueError, match="Did you mean 'lowrank'"):
        compress(hand_mlp(), "lowrnak", rank=2)
    with pytest.raises(ValueError, match="accepted options: amount"):
        compress(hand_mlp(), "prune_structured", rank=2)
    with pytest.raises(ValueError, match="amount"):
        compress(hand_mlp(), "prune_structured", amount=1.0)
    with pytest.raises(ValueError, match="exactly one"):
        compress(hand_mlp(), "lowrank", rank=2, energy=0.5)


def test_count_flops_convention() -> None:
    # Linear(64, 32) on one sample: 64*32 MACs + 32 bias adds; the ReLU is not in the total
    model = nn.Sequential(nn.Linear(64, 32), nn.ReLU())
    assert count_flops(model, (64,))[0] == 64 * 32 + 32


# ---- structured pruning -------------------------------------------------------------------------------------

def test_structured_mlp_matches_hand_count() -> None:
    # before: 64*32 + 32  +  32*32 + 32  +  32*10 + 10  = 2080 + 1056 + 330 = 3466 FLOPs
    # after 50% of each hidden layer (32 -> 16; the 10 outputs are never pruned):
    #         64*16 + 16  +  16*16 + 16  +  16*10 + 10  = 1040 + 272 + 170 = 1482 FLOPs
    model = hand_mlp()
    report_before = measure(model, (1, 8, 8), repeats=3, warmup=1)
    cm = compress(model, "prune_structured", amount=0.5)
    report = measure(cm, (1, 8, 8), repeats=3, warmup=1)
    assert report_before.mflops * 1e6 == 64 * 32 + 32 + 32 * 32 + 32 + 32 * 10 + 10 == 3466
    assert report.mflops * 1e6 == 64 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10 == 1482
    assert report.params == 64 * 16 + 16 + 16 * 16 + 16 + 16 * 10 + 10
    assert [(e["before"], e["after"]) for e in cm.settings["layers"]] == [(32, 16), (32, 16)]
    assert report.size_mb < report_before.size_mb


def test_structured_keeps_largest_l1_neurons() -> None:
    model = hand_mlp()

    def top16(layer: nn.Linear) -> torch.Tensor:
        return torch.sort(torch.topk(layer.weight.abs().sum(dim=1), 16).indices).values

    keep1, keep2 = top16(model[1]), top16(model[3])
    cm = compress(model, "prune_structured", amount=0.5)
    assert torch.equal(cm.model[1].weight, model[1].weight[keep1])
    assert torch.equal(cm.model[1].bias, model[1].bias[keep1])
    assert torch.equal(cm.model[3].weight, model[3].weight[keep2][:, keep1])
    assert torch.equal(cm.model[5].weight, model[5].weight[:, keep2])
    assert torch.equal(cm.model[5].bias, model[5].bias)


@pytest.mark.parametrize("norm", ["batch", "layer"])
def test_structured_mlp_builder_with_norms(norm: str) -> None:
    torch.manual_seed(0)
    model = mlp(input_shape=(1, 8, 8), num_classes=10, width=64, depth=3, norm=norm, dropout=0.1).eval()
    cm = compress(model, "prune_structured", amount=0.25)
    linears = [m for m in cm.model.modules() if isinstance(m, nn.Linear)]
    assert [m.out_features for m in linears] == [48, 48, 48, 10]
    assert [m.in_features for m in linears] == [64, 48, 48, 48]
    norms = [m for m in cm.model.modules() if isinstance(m, (nn.BatchNorm1d, nn.LayerNorm))]
    assert all(p.shape == (48,) for n in norms for p in n.parameters())
    assert cm.model(torch.randn(3, 1, 8, 8)).shape == (3, 10)


def test_structured_plain_cnn_fewer_flops() -> None:
    model = plain_cnn()
    cm = compress(model, "prune_structured", amount=0.5)
    before, after = count_flops(model, (1, 8, 8))[0], count_flops(cm.model, (1, 8, 8))[0]
    assert after < before
    # every conv's outputs halved (8 -> 4, 16 -> 8), the classifier reads the 8 that remain
    assert [c.out_channels for c in convs(cm.model)] == [4, 8, 8]
    assert cm.model.head[-1].in_features == 8 and cm.model.head[-1].out_features == 10
    # the conv MACs shrink 4x (in and out halved) except the stem's (input 1 channel): hand count
    # stem 1->4 3x3 on 8x8: 4*9*64; stage0 4->8 3x3 on 8x8: 8*4*9*64; stage1 8->8 3x3 stride 2 on 4x4: 8*8*9*16
    # head 8 -> 10: 80 + 10 bias adds
    assert after == 4 * 9 * 64 + 8 * 4 * 9 * 64 + 8 * 8 * 9 * 16 + 8 * 10 + 10
    assert cm.model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize("shape", [(1, 8, 8), (1, 40)])
def test_structured_mbconv_hidden_channels(shape: tuple[int, ...]) -> None:
    model = mbconv_cnn(shape).eval()
    cm = compress(model, "prune_structured", amount=0.5)
    pruned = {e["layer"]: (e["before"], e["after"]) for e in cm.settings["layers"]}
    assert pruned == {
        "stem.0": (8, 4),
        "stages.0.0": (16, 8),  # carried by the expand=1 block's depthwise conv, read by its project conv
        "stages.2.body.0.0": (72, 36),  # expanded hidden channels of the residual blocks
        "stages.3.body.0.0": (72, 36),
        "stages.4.body.0.0": (72, 36),
        "stages.4.body.3.0": (32, 16),  # a non-residual block's outputs, read by the classifier
    }
    notes = " ".join(cm.notes)
    assert "stages.1.body.1.0: output channels kept (they feed the residual add of stages.2)" in notes
    assert "head.3: output channels kept" in notes
    se = cm.model.stages[2].body[2]
    assert se.reduce.in_channels == se.expand.out_channels == 36
    assert cm.model(torch.randn(2, *shape)).shape == (2, 10)
    assert count_flops(cm.model, shape)[0] < count_flops(model, shape)[0]


def test_structured_removing_inert_channels_is_exact() -> None:
    # make every channel that pruning will drop inert (filter scaled to 1e-3 so it ranks last, BN gamma = beta
    # = 0 in the producer's BN and in every BN that carries it, so it outputs exactly 0): the rewired model must
    # then compute the same function, which checks the slicing of producers, carriers (BN, depthwise conv,
    # squeeze-excitation) and consumers
    model = mbconv_cnn().eval()
    groups = {
        "stem.0": ["stem.1"],
        "stages.0.0": ["stages.0.1", "stages.1.body.0.1"],
        "stages.2.body.0.0": ["stages.2.body.0.1", "stages.2.body.1.1"],
        "stages.3.body.0.0": ["stages.3.body.0.1", "stages.3.body.1.1"],
        "stages.4.body.0.0": ["stages.4.body.0.1", "stages.4.body.1.1"],
        "stages.4.body.3.0": ["stages.4.body.3.1"],
    }
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
                m.running_var.uniform_(0.5, 2)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.5, 0.5)
        for name, norms in groups.items():
            conv = model.get_submodule(name)
            drop = torch.arange(0, conv.out_channels, 2)
            conv.weight[drop] *= 1e-3
            for bn_name in norms:
                model.get_submodule(bn_name).weight[drop] = 0
                model.get_submodule(bn_name).bias[drop] = 0
    cm = compress(model, "prune_structured", amount=0.5)
    assert {e["layer"] for e in cm.settings["layers"]} == set(groups)
    x = torch.randn(5, 1, 8, 8)
    torch.testing.assert_close(cm.model(x), model(x), rtol=1e-5, atol=1e-5)


# ---- unstructured pruning -----------------------------------------------------------------------------------

@pytest.mark.parametrize("scope", ["layer", "global"])
def test_unstructured_half_the_weights(scope: str) -> None:
    model = plain_cnn()
    cm = compress(model, "prune_unstructured", amount=0.5, scope=scope)
    base, report = measure(model, (1, 8, 8), repeats=3), measure(cm, (1, 8, 8), repeats=3)
    prunable = sum(m.weight.numel() for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    zeros = sum(int((m.weight == 0).sum()) for m in cm.model.modules() if isinstance(m, (nn.Conv2d, nn.Linear)))
    assert abs(zeros - prunable / 2) <= 4  # rounding per layer
    assert report.nonzero_params == base.nonzero_params - zeros
    assert report.mflops == base.mflops and report.params == base.params
    assert report.effective_mflops < report.mflops
    assert report.size_mb == pytest.approx(base.size_mb, rel=0.05)
    assert "dense kernels do not speed up" in " ".join(report.notes)


def test_unstructured_effective_flops_by_hand() -> None:
    conv = nn.Conv2d(2, 4, 3, padding=1, bias=False)
    lin = nn.Linear(4 * 8 * 8, 10)
    model = nn.Sequential(conv, nn.Flatten(), lin)
    cm = compress(model, "prune_unstructured", amount=0.5)
    c, w = cm.model[0], cm.model[2]
    nz_conv, nz_lin = int((c.weight != 0).sum()), int((w.weight != 0).sum())
    # conv: each weight is used once per output position (8x8); Linear: once; bias adds stay (10)
    expected = nz_conv * 64 + nz_lin + 10
    assert measure(cm, (2, 8, 8), repeats=2).effective_mflops * 1e6 == pytest.approx(expected)


# ---- int8 ---------------------------------------------------------------------------------------------------

def test_int8_dynamic_mlp_size_and_accuracy(trained_mlp: nn.Module, digits) -> None:
    cm = compress(trained_mlp, "int8")
    assert cm.settings["mode"] == "dynamic"
    base = measure(trained_mlp, digits.input_shape, eval_data=digits.val, repeats=5)
    report = measure(cm, digits.input_shape, eval_data=digits.val, repeats=5)
    assert 3.0 <= base.size_mb / report.size_mb <= 4.5
    assert cm.model(digits.val.tensors[0][:4]).shape == (4, 10)
    assert base.val_accuracy > 0.8
    assert abs(report.val_accuracy - base.val_accuracy) <= 0.03
    assert report.mflops == base.mflops and report.flops_counted_on.startswith("float reference")
    assert "same MACs, int8" in " ".join(report.notes)
    assert report.params == base.params


def test_int8_static_cnn(trained_cnn: nn.Module, digits) -> None:
    calib = digits.train.tensors[0][:CALIB_N]
    cm = compress(trained_cnn, "int8", calibration=calib)
    assert cm.settings["mode"] == "static"
    per_sample = count_flops(trained_cnn, digits.input_shape)[0]
    assert cm.compute_mflops == pytest.approx(per_sample * CALIB_N / 1e6)
    base = measure(trained_cnn, digits.input_shape, eval_data=digits.val, repeats=5)
    report = measure(cm, digits.input_shape, eval_data=digits.val, repeats=5)
    assert report.size_mb < base.size_mb
    assert cm.model(digits.val.tensors[0][:4]).shape == (4, 10)
    assert abs(report.val_accuracy - base.val_accuracy) <= 0.05
    assert report.val_accuracy != base.val_accuracy or report.val_loss != base.val_loss  # measured


def test_int8_static_mbconv_and_modes() -> None:
    model = mbconv_cnn().eval()
    calib = torch.randn(16, 1, 8, 8)
    cm = compress(model, "int8", calibration=calib)
    assert cm.settings["mode"] == "static"
    assert cm.model(calib[:3]).shape == (3, 10)
    no_calib = compress(model, "int8")
    assert no_calib.settings["mode"] == "dynamic" and "no calibration" in " ".join(no_calib.notes)
    with pytest.raises(ValueError, match="calibration"):
        compress(model, "int8", mode="static")


class Untraceable(nn.Module):
    """Data-dependent control flow: FX symbolic tracing cannot follow it."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3, padding=1)
        self.fc = nn.Linear(4 * 64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv(x)
        if y.sum() > 0:
            y = y * 2
        return self.fc(y.flatten(1))


def test_int8_static_falls_back_to_dynamic() -> None:
    model = Untraceable().eval()
    cm = compress(model, "int8", calibration=torch.randn(8, 1, 8, 8))
    assert cm.settings["mode"] == "dynamic (static failed)"
    assert "fell back to dynamic" in " ".join(cm.notes)
    assert cm.compute_mflops == 0.0  # tracing failed before any calibration pass ran
    assert cm.model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert isinstance(cm.model.conv, nn.Conv2d)  # stays float
    assert measure(cm, (1, 8, 8), repeats=2).size_mb < model_size_mb(model)


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, 64, batch_first=True)
        self.fc = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.fc(out[:, -1])


def test_int8_dynamic_lstm() -> None:
    torch.manual_seed(0)
    model = Recurrent().eval()
    cm = compress(model, "int8")
    x = torch.randn(3, 12, 8)
    assert cm.settings["dynamic_layers"] == 2 and cm.model(x).shape == (3, 10)
    torch.testing.assert_close(cm.model(x), model(x), atol=0.05, rtol=0.0)
    base, report = measure(model, (12, 8), repeats=2), measure(cm, (12, 8), repeats=2)
    assert report.params == base.params
    assert 3.0 <= base.size_mb / report.size_mb <= 4.5
    assert report.unsupported_ops == {"aten::lstm": 1}  # fvcore has no count for it: said, not hidden
    assert "could not count" in " ".join(report.notes)


# ---- low rank -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("r", [1, 8, 30])
def test_lowrank_linear_params_by_formula(r: int) -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(100, 80))
    cm = compress(model, "lowrank", rank=r)
    assert count_params(cm.model)[0] == r * 100 + r * 80 + 80 == lowrank_params(100, 80, r)
    assert count_flops(cm.model, (100,))[0] == r * 100 + r * 80 + 80  # MACs + bias adds, same numbers
    assert cm.model(torch.randn(5, 100)).shape == (5, 80)


def test_lowrank_skips_when_not_smaller() -> None:
    model = nn.Sequential(nn.Linear(100, 80))
    cm = compress(model, "lowrank", energy=1.0)  # full rank 80: 80*(100+80) >= 8000
    assert cm.settings["layers"] == [] and "kept dense" in " ".join(cm.notes)
    x = torch.randn(4, 100)
    assert torch.equal(cm.model(x), model(x))


def test_lowrank_energy_one_reproduces_outputs() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(100, 80)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(80, 6) @ torch.randn(6, 100) / 10)  # rank 6
    model = nn.Sequential(lin)
    cm = compress(model, "lowrank", energy=1.0)
    assert cm.settings["layers"][0]["rank"] == 6
    x = torch.randn(7, 100)
    torch.testing.assert_close(cm.model(x), model(x), rtol=1e-4, atol=1e-4)


def test_lowrank_energy_picks_rank() -> None:
    torch.manual_seed(0)
    lin = nn.Linear(50, 40)
    u, _ = torch.linalg.qr(torch.randn(40, 40))
    v, _ = torch.linalg.qr(torch.randn(50, 40))
    # energies 100, 25, 1, 37 x 1e-4 of 126.0037: rank 1 keeps 79.4%, rank 2 99.2%, rank 3 99.997%
    s = torch.tensor([10.0, 5.0, 1.0] + [0.01] * 37)
    with torch.no_grad():
        lin.weight.copy_(u @ torch.diag(s) @ v.T)
    assert compress(nn.Sequential(lin), "lowrank", energy=0.75).settings["layers"][0]["rank"] == 1
    assert compress(nn.Sequential(lin), "lowrank", energy=0.99).settings["layers"][0]["rank"] == 2
    assert compress(nn.Sequential(lin), "lowrank", energy=0.995).settings["layers"][0]["rank"] == 3


def test_lowrank_conv() -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(16, 32, 3, stride=2, padding=1)
    model = nn.Sequential(conv)
    r = 4
    cm = compress(model, "lowrank", rank=r)
    x = torch.randn(2, 16, 8, 8)
    assert cm.model(x).shape == model(x).shape == (2, 32, 4, 4)
    assert count_params(cm.model)[0] == r * 16 * 9 + r * 32 + 32 == lowrank_params(16, 32, r, kernel=9)
    # a rank-3 conv weight is reproduced at energy 1.0
    with torch.no_grad():
        conv.weight.copy_((torch.randn(32, 3) @ torch.randn(3, 16 * 9)).reshape(32, 16, 3, 3) / 10)
    exact = compress(model, "lowrank", energy=1.0)
    assert exact.settings["layers"][0]["rank"] == 3
    torch.testing.assert_close(exact.model(x), model(x), rtol=1e-4, atol=1e-4)


def test_lowrank_cnn_builder_runs() -> None:
    model = mbconv_cnn().eval()
    cm = compress(model, "lowrank", rank=4)
    assert cm.model(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert "grouped conv" in " ".join(cm.notes)
    assert count_params(cm.model)[0] < count_params(model)[0]


# ---- contract: input untouched, accuracy measured -----------------------------------------------------------

ALL = [
    ("none", {}),
    ("prune_structured", {"amount": 0.5}),
    ("prune_unstructured", {"amount": 0.5}),
    ("int8", {"calibration": torch.randn(8, 1, 8, 8)}),
    ("int8", {}),
    ("lowrank", {"rank": 2}),
]


@pytest.mark.parametrize(("method", "opts"), ALL)
@pytest.mark.parametrize("builder", [mbconv_cnn, hand_mlp])
def test_input_model_never_modified(method: str, opts: dict, builder) -> None:
    model = builder().train()
    before = copy.deepcopy(model.state_dict())
    text = repr(model)
    cm = compress(model, method, **opts)
    assert cm.model is not model
    after = model.state_dict()
    assert before.keys() == after.keys()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert repr(model) == text and model.training
    assert cm.model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


@pytest.mark.parametrize(("method", "opts"), [
    ("none", {}), ("prune_structured", {"amount": 0.25}), ("prune_unstructured", {"amount": 0.5}),
    ("lowrank", {"energy": 0.9}),
])
def test_accuracy_is_measured_not_copied(trained_mlp: nn.Module, digits, method: str, opts: dict) -> None:
    cm = compress(trained_mlp, method, **opts)
    good = measure(cm, digits.input_shape, eval_data=digits.val, repeats=2).val_accuracy
    assert good == evaluate(cm.model, digits.val)[0]
    with torch.no_grad():
        for p in cm.model.parameters():
            p.zero_()
    broken = measure(cm, digits.input_shape, eval_data=digits.val, repeats=2)
    assert good > 0.5 and broken.val_accuracy < 0.2
    assert broken.nonzero_params == 0 and broken.effective_mflops * 1e6 == pytest.approx(0.0, abs=1e3)


def test_measure_report_fields() -> None:
    model = hand_mlp()
    report = measure(model, (64,), repeats=3)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    assert report.size_mb == model_size_mb(model) == buffer.tell() / 2**20
    assert report.method == "none" and report.val_accuracy is None and report.threads == 1
    assert report.latency_ms > 0 and report.effective_mflops == report.mflops
    assert set(report.as_dict()) >= {"mflops", "effective_mflops", "params", "nonzero_params", "size_mb",
                                     "latency_ms", "val_accuracy", "compute_mflops", "notes"}


# ---- fine-tuning --------------------------------------------------------------------------------------------

def test_finetune_bills_training_flops_and_keeps_sparsity(digits) -> None:
    small = TensorDataset(digits.train.tensors[0][:200], digits.train.tensors[1][:200])
    splits = type(digits)(train=small, val=digits.val, test=digits.test, input_shape=digits.input_shape,
                          num_classes=10, name="digits", info={})
    model = hand_mlp()
    pruned = compress(model, "prune_structured", amount=0.5)
    tuned = finetune(pruned, splits, epochs=2, lr=1e-3, seed=0)
    fwd = count_flops(tuned.model, digits.input_shape)[0] / 1e6
    assert tuned.compute_mflops == pytest.approx(3 * fwd * 2 * 200)
    assert tuned.settings["finetune"]["samples_seen"] == 400
    assert not torch.equal(tuned.model[1].weight, pruned.model[1].weight)  # trained a copy
    sparse = compress(model, "prune_unstructured", amount=0.5)
    zeros = [m.weight == 0 for m in sparse.model.modules() if isinstance(m, nn.Linear)]
    tuned_sparse = finetune(sparse, splits, epochs=1, seed=0)
    after = [m.weight == 0 for m in tuned_sparse.model.modules() if isinstance(m, nn.Linear)]
    assert all(torch.equal(a, b) for a, b in zip(zeros, after, strict=True))
    assert not hasattr(tuned_sparse.model[1], "weight_orig")
    with pytest.raises(ValueError, match="not fine-tuned"):
        finetune(compress(model, "int8"), splits, epochs=1)
