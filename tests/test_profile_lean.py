"""``count_flops`` walks the JIT trace itself; it must give exactly what fvcore's ``FlopCountAnalysis`` gives with
the same handles (whole-model ``by_operator()`` and ``unsupported_ops()``), on every builder's architectures and on
ops that exercise the edge cases (fvcore's default handles, ignored ops, unsupported ops, autograd Functions)."""

from __future__ import annotations

import warnings

import pytest
import torch
from conftest import FIXTURES, ROOT
from fvcore.nn import FlopCountAnalysis
from torch import nn

from nas.builders import build
from nas.profile._modes import eval_mode
from nas.profile.flops import FLOP_HANDLES, MAC_OPS, count_flops
from nas.space import load_space


def _fvcore(model: nn.Module, shape: tuple[int, ...]) -> tuple[float, dict[str, float], dict[str, int]]:
    x = torch.randn(1, *shape)
    with eval_mode(model), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        analysis = FlopCountAnalysis(model, x).set_op_handle(**FLOP_HANDLES)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        by_op = {k: float(v) for k, v in analysis.by_operator().items()}
        unsupported = dict(analysis.unsupported_ops())
    return float(sum(v for k, v in by_op.items() if k in MAC_OPS)), by_op, unsupported


@pytest.mark.parametrize(("space_file", "shape", "samples"), [
    (ROOT / "search_spaces" / "mlp.yaml", (1, 8, 8), 8),
    (ROOT / "search_spaces" / "cnn.yaml", (1, 8, 8), 8),
    (FIXTURES / "tiny_cnn.yaml", (1, 8, 8), 8),
    (ROOT / "search_spaces" / "nb201.yaml", (3, 16, 16), 2),  # large cells: a few seconds each
])
def test_same_counts_as_fvcore_on_the_spaces(space_file, shape, samples) -> None:
    space = load_space(space_file)
    checked = 0
    for seed in range(samples):
        try:
            model = build(space, space.sample_random(seed), input_shape=shape, num_classes=10)
        except Exception:  # an architecture too deep for the input: not a counting question
            continue
        assert count_flops(model, shape) == _fvcore(model, shape)
        checked += 1
    assert checked >= samples // 2


class _Square(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):  # type: ignore[override]
        return x * x

    @staticmethod
    def backward(ctx, g):  # type: ignore[override]
        return g


class _Odd(nn.Module):
    """Ops off the beaten track: fvcore's own default handle (grid_sampler), ignored ops (cat, dropout, flatten),
    an uncounted op (cumsum), an autograd Function (prim::PythonOp), matmul, softmax, a zero-FLOP count."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)
        self.drop = nn.Dropout(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        grid = torch.zeros(x.shape[0], 4, 4, 2)
        y = nn.functional.grid_sample(self.conv(x), grid, align_corners=False)
        y = torch.cat([y, y], 1).cumsum(-1)
        y = _Square.apply(self.drop(y)).flatten(1)
        z = y @ y.t()
        return torch.softmax(z * 0.0, -1)


def test_same_counts_as_fvcore_on_odd_ops(caplog) -> None:
    model = _Odd()
    ours = count_flops(model, (2, 4, 4))
    assert ours == _fvcore(model, (2, 4, 4))
    _, by_op, unsupported = ours
    assert "grid_sampler" in by_op and by_op["matmul"] > 0 and by_op["conv"] > 0
    assert unsupported.get("aten::cumsum") == 1 and any(k.startswith("prim::PythonOp") for k in unsupported)


def test_a_handle_may_return_a_bare_number(monkeypatch) -> None:
    monkeypatch.setitem(FLOP_HANDLES, "aten::cumsum", lambda inputs, outputs: 7)
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    model.forward = lambda x: nn.Sequential.forward(model, x).cumsum(-1)  # type: ignore[method-assign]
    ours = count_flops(model, (4,))
    assert ours == _fvcore(model, (4,))
    assert ours[1]["cumsum"] == 7
