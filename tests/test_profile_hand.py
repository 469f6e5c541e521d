"""FLOPs, params and memory against numbers worked out by hand (the fvcore test habit).

Convention (nas/profile/flops.py): 1 multiply-add = 1 FLOP; a bias adds 1 FLOP per output element; the total
counts conv/linear/matmul ops only; BN, activations, elementwise ops and pooling are itemized in by_op.
"""

from __future__ import annotations

import json
import logging

import pytest
import torch
from torch import nn

from nas.builders.cnn import cnn
from nas.builders.mlp import mlp
from nas.profile import Profile, count_flops, profile_model, training_flops

MIB = 1024**2


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_linear() -> None:
    # 64*32 MACs = 2048, + 32 bias adds = 2080 FLOPs; params 64*32 weights + 32 biases = 2080
    flops, by_op, unsupported = count_flops(nn.Linear(64, 32), (64,))
    assert (flops, by_op, unsupported) == (2080, {"linear": 2080}, {})
    assert n_params(nn.Linear(64, 32)) == 2080
    # no bias: the 2048 MACs only
    assert count_flops(nn.Linear(64, 32, bias=False), (64,))[0] == 2048


def test_conv2d() -> None:
    # 3 -> 8 channels, 3x3, padding 1 on 8x8: 64 output pixels * 8 out channels * (3*3*3) MACs = 13824,
    # + 8*64 = 512 bias adds = 14336; params 8*3*3*3 + 8 = 224
    conv = nn.Conv2d(3, 8, 3, padding=1)
    assert count_flops(conv, (3, 8, 8)) == (14336, {"conv": 14336}, {})
    assert n_params(conv) == 224
    # stride 2, no padding, no bias, 9x9 -> 4x4: 16 pixels * 4 channels * 27 MACs = 1728
    assert count_flops(nn.Conv2d(3, 4, 3, stride=2, bias=False), (3, 9, 9))[0] == 1728
    # depthwise 3x3 on 8x5x5, padding 1: 25 pixels * 8 channels * 9 MACs (one input channel each) = 1800
    assert count_flops(nn.Conv2d(8, 8, 3, padding=1, groups=8, bias=False), (8, 5, 5))[0] == 1800
    # a (C, L) input through Conv1d(2 -> 4, k=5, padding 2) on L=10: 10 * 4 * (2*5) = 400 MACs + 40 bias adds
    assert count_flops(nn.Conv1d(2, 4, 5, padding=2), (2, 10))[0] == 440


def test_mlp_builder() -> None:
    # 64 -> 32 -> 32 -> 10: (2048 + 32) + (1024 + 32) + (320 + 10) = 3466 FLOPs; params the same 3466;
    # two ReLUs of 32 outputs: 64 auxiliary FLOPs
    model = mlp(input_shape=(1, 8, 8), num_classes=10, width=32, depth=2)
    assert count_flops(model, (1, 8, 8)) == (3466, {"linear": 3466, "relu": 64}, {})
    assert n_params(model) == 3466
    # BatchNorm1d: 2 FLOPs (scale, shift) per element, 2 * 32 per layer; LayerNorm: 5 per element (fvcore)
    assert (
        count_flops(mlp(input_shape=(64,), num_classes=10, width=32, depth=2, norm="batch"), (64,))[1][
            "batch_norm"
        ]
        == 2 * 2 * 32
    )
    assert (
        count_flops(mlp(input_shape=(64,), num_classes=10, width=32, depth=2, norm="layer"), (64,))[1][
            "layer_norm"
        ]
        == 2 * 5 * 32
    )


def test_cnn_builder_conv() -> None:
    # stem Conv3x3 1 -> 4 on 8x8 (no bias): 64 * 4 * 9 = 2304
    # stage Conv3x3 4 -> 8, stride 2 -> 4x4: 16 * 8 * 36 = 4608
    # Linear 8 -> 10: 80 + 10 = 90                                     total 7002
    # params: 36 + BN 8, 288 + BN 16, 80 + 10 = 438
    # aux: BN 2*(4*64) + 2*(8*16) = 768, ReLU 256 + 128 = 384, global pool 8*16 = 128 inputs
    model = cnn(
        input_shape=(1, 8, 8), num_classes=10, stem_channels=4,
        stages=[{"channels": 8, "depth": 1, "stride": 2, "block": {"type": "conv", "kernel": 3}}],
    )  # fmt: skip
    flops, by_op, unsupported = count_flops(model, (1, 8, 8))
    assert flops == 7002 and unsupported == {}
    assert by_op == {"conv": 6912, "linear": 90, "batch_norm": 768, "relu": 384, "adaptive_avg_pool": 128}
    assert n_params(model) == 438


def test_cnn_builder_mbconv() -> None:
    # input 1x4x4, stem 1 -> 4 (3x3): 16 * 4 * 9 = 576
    # MBConv 4 -> 4, expand 2 (hidden 8), 3x3, SE (reduced to 4 // 4 = 1 channel), stride 1 (residual):
    #   expand 1x1 4 -> 8: 16 * 8 * 4 = 512; depthwise 3x3: 16 * 8 * 9 = 1152;
    #   SE reduce 1x1 8 -> 1 with bias on 1x1: 8 + 1 = 9; SE expand 1 -> 8 with bias: 8 + 8 = 16;
    #   project 1x1 8 -> 4: 16 * 4 * 8 = 512
    # Linear 4 -> 10: 40 + 10 = 50                                       total 2827
    # params: stem 36 + 8; expand 32 + 16; dw 72 + 16; SE 9 + 16; project 32 + 8; linear 50 = 295
    # aux: SE gate multiply 8 * 16 = 128, residual add 4 * 16 = 64, sigmoid 8
    model = cnn(
        input_shape=(1, 4, 4), num_classes=10, stem_channels=4,
        stages=[{"channels": 4, "depth": 1, "stride": 1,
                 "block": {"type": "mbconv", "expand": 2, "kernel": 3, "se": True}}],
    )  # fmt: skip
    flops, by_op, unsupported = count_flops(model, (1, 4, 4))
    assert flops == 2827 and unsupported == {}
    assert (by_op["mul"], by_op["add"], by_op["sigmoid"]) == (128, 64, 8)
    assert n_params(model) == 295


def test_pooling_is_auxiliary() -> None:
    # AvgPool 3x3, stride 1, padding 1 on 2x4x4: 9 FLOPs per output element * 32 = 288; MaxPool 2x2 -> 2x2x2:
    # 4 * 8 = 32. Neither is a MAC op: the total stays 0.
    assert count_flops(nn.AvgPool2d(3, 1, 1), (2, 4, 4)) == (0, {"avg_pool": 288}, {})
    assert count_flops(nn.MaxPool2d(2), (2, 4, 4)) == (0, {"max_pool": 32}, {})


class _Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx: object, x: torch.Tensor) -> torch.Tensor:
        return x * x

    @staticmethod
    def backward(ctx: object, grad: torch.Tensor) -> torch.Tensor:
        return grad


class _Uncountable(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _Square.apply(torch.cumsum(self.fc(x), dim=1))


def test_unsupported_ops_are_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="nas.profile"):
        flops, by_op, unsupported = count_flops(_Uncountable(), (4,))
    assert flops == 16 + 4
    assert unsupported == {"aten::cumsum": 1, "prim::PythonOp._Square": 1}
    assert "aten::cumsum" in caplog.text
    assert (
        profile_model(_Uncountable(), (4,), measure_latency=False, measure_memory=False).unsupported_ops
        == unsupported
    )


def test_profile_model_fields() -> None:
    model = cnn(
        input_shape=(1, 8, 8), num_classes=10, stem_channels=8, stages=[{"channels": 16, "stride": 2}]
    )
    prof = profile_model(model, (1, 8, 8), batch_size=4, repeats=5)
    assert prof.mflops == pytest.approx(count_flops(model, (1, 8, 8))[0] / 1e6)
    assert prof.params == n_params(model)
    assert prof.latency_ms is not None and prof.latency_ms > 0
    assert prof.peak_mem_mb is not None and prof.peak_mem_mb > 0
    assert prof.train_peak_mem_mb is not None and prof.train_peak_mem_mb > prof.peak_mem_mb
    assert (prof.batch_size, prof.device) == (4, "cpu")
    assert prof.aux_mflops > 0 and set(prof.flops_by_op) >= {"conv", "linear", "batch_norm"}
    d = prof.as_dict()
    assert Profile(**d) == prof
    json.dumps(d)
    off = profile_model(model, (1, 8, 8), measure_latency=False, measure_memory=False)
    assert (off.latency_ms, off.peak_mem_mb, off.train_peak_mem_mb) == (None, None, None)


def test_memory_by_hand() -> None:
    # forward of Linear(1000, 1000) on a batch of 100 allocates its output: 100 * 1000 float32 = 400,000 B.
    # a training step adds the gradients of W and b (4,004,000 B) and of the output (400,000 B).
    prof = profile_model(nn.Linear(1000, 1000), (1000,), batch_size=100, measure_latency=False)
    assert prof.peak_mem_mb == pytest.approx(400_000 / MIB, rel=0.05)
    assert 4_804_000 / MIB <= prof.train_peak_mem_mb <= 5_300_000 / MIB


def test_profiling_leaves_model_unchanged() -> None:
    model = cnn(input_shape=(1, 8, 8), num_classes=10, stages=[{"channels": 8, "depth": 2}], dropout=0.2)
    model.train()
    model.head.eval()  # mixed modes must come back exactly
    before = {k: v.clone() for k, v in model.state_dict().items()}
    profile_model(model, (1, 8, 8), batch_size=8)
    assert model.training and model.stem.training and not model.head.training and not model.head[2].training
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights and BN running statistics


def test_training_flops() -> None:
    # forward + backward ~ 3 forward passes per sample
    assert training_flops(2.0e6, 1000) == 6.0e9
    assert training_flops(0.0, 10) == 0.0
    with pytest.raises(ValueError):
        training_flops(-1.0, 10)
