"""FLOP counting with fvcore, under one documented convention.

Convention (``count_flops`` and :attr:`Profile.mflops`)
--------------------------------------------------------
* One multiply-add (MAC) is one FLOP, as in fvcore, torchvision's ``_ops`` and the FLOP/MAC figures papers
  quote. The *MAC ops* are convolutions (``conv``), ``linear``/``addmm``, ``matmul``/``mm``/``bmm`` and
  ``einsum``; a bias adds one FLOP per output element of its conv or linear layer.
* The **total** (what ``mflops`` reports) is the sum over the MAC ops only (:data:`MAC_OPS`). This is the
  count NAS-Bench-201 publishes (its ``flops_M`` column is conv and linear multiply-adds plus bias adds,
  nothing else), so our NB201 builder reproduces the table.
* All other arithmetic is counted too, but reported only in ``flops_by_op`` (the *auxiliary* ops, which
  the total leaves out): BatchNorm 2/element (inference scale and shift; in eval mode it can be folded
  into the preceding conv), LayerNorm/GroupNorm 5/element and InstanceNorm 4-5/element (fvcore's estimate),
  elementwise add/sub/mul/div 1/output element, activations (ReLU, GELU, SiLU, tanh, sigmoid, hardswish,
  ...) 1/output element, pooling ``prod(kernel)``/output element, adaptive pooling and mean/sum
  1/input element, softmax and log-softmax 3/element (exp, sum, divide), upsampling as fvcore.
* Data movement (view, reshape, cat, flatten, dropout at inference, ...) costs nothing (fvcore's ignore
  list). Any other op that appears is listed in ``unsupported_ops`` with its number of occurrences and
  logged as a warning: it is never dropped silently.

Counting runs one sample (batch 1) through the model in eval mode under ``torch.no_grad``; the model's
train/eval mode is restored afterwards. FLOPs are per sample and refer to inference.

Mechanics: the model is traced with the JIT tracer fvcore uses (``torch.jit._get_trace_graph``), and every node
of the graph goes through the handles below (then fvcore's default ones, e.g. ``grid_sampler``), with fvcore's
own rules for ignored ops (its ``_IGNORED_OPS`` and ``prim::`` nodes). That is what
``FlopCountAnalysis(...).by_operator()`` computes for the whole model, without its per-submodule bookkeeping
(scope hooks on every module, a counter per module and per ancestor), which nas never reads: 20-40% less time
per candidate (MLPs of the digits space 3.5 -> 2.8 ms, its CNNs 30 -> 20 ms, medians on a loaded 2-core
machine), identical counts (``tests/test_profile_lean.py`` checks them against fvcore).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from numbers import Number
from typing import Any

import torch
from fvcore.nn.jit_handles import (
    bmm_flop_jit,
    conv_flop_count,
    einsum_flop_jit,
    get_shape,
    matmul_flop_jit,
    norm_flop_counter,
)
from torch import nn

from nas._compat import FVCORE_DEFAULT_OPS as _DEFAULT_SUPPORTED_OPS  # fvcore's and torch's private APIs
from nas._compat import FVCORE_IGNORED_OPS as _IGNORED_OPS
from nas._compat import get_trace_graph as _get_trace_graph
from nas.profile._modes import eval_mode

log = logging.getLogger(__name__)

Handle = Callable[[list[Any], list[Any]], "Counter[str]"]

#: Op keys (as in ``flops_by_op``) whose FLOPs make up the total: multiply-adds (+ bias adds).
MAC_OPS: frozenset[str] = frozenset({"conv", "linear", "addmm", "matmul", "mm", "bmm", "einsum"})


def _numel(value: Any) -> int:
    shape = get_shape(value)
    return math.prod(shape) if shape is not None else 0


def _conv(transposed_arg: int | None) -> Handle:
    """MACs of a convolution plus one add per output element when it has a bias."""

    def handle(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
        x, w, b = inputs[:3]
        transposed = bool(inputs[transposed_arg].toIValue()) if transposed_arg is not None else False
        out_shape = get_shape(outputs[0])
        macs = conv_flop_count(get_shape(x), get_shape(w), out_shape, transposed=transposed)
        return Counter({"conv": int(macs) + (_numel(outputs[0]) if get_shape(b) is not None else 0)})

    return handle


def _linear(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
    """``aten::linear(x, W, b)``: ``numel(x) * out_features`` MACs, plus one add per output if ``b``."""
    x_shape, w_shape = get_shape(inputs[0]), get_shape(inputs[1])
    macs = math.prod(x_shape) * (w_shape[0] if len(w_shape) == 2 else 1)
    return Counter({"linear": macs + (_numel(outputs[0]) if get_shape(inputs[2]) is not None else 0)})


def _addmm(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
    """``aten::addmm(b, x, W)``: ``n * k * m`` MACs plus ``n * m`` bias adds."""
    n, k = get_shape(inputs[1])
    m = get_shape(inputs[2])[1]
    return Counter({"addmm": n * k * m + n * m})


def _named(name: str, fvcore_handle: Callable[[list[Any], list[Any]], Any]) -> Handle:
    def handle(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
        return Counter({name: int(fvcore_handle(inputs, outputs))})

    return handle


def _per_output(name: str, per_element: float = 1.0) -> Handle:
    """``per_element`` FLOPs per output element, reported under ``name``."""

    def handle(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
        return Counter({name: per_element * _numel(outputs[0])})

    return handle


def _per_input(name: str) -> Handle:
    """One FLOP per input element (reductions: adaptive pooling, mean, sum)."""

    def handle(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
        return Counter({name: _numel(inputs[0])})

    return handle


def _int_list(value: Any) -> list[int]:
    """A traced int-list argument (a constant or a ``prim::ListConstruct`` of constants)."""
    constant = value.toIValue()
    if constant is not None:
        return [int(v) for v in (constant if isinstance(constant, (list, tuple)) else [constant])]
    return [int(v.toIValue()) for v in value.node().inputs()]


def _pool(name: str, dims: int) -> Handle:
    """``prod(kernel)`` FLOPs per output element (a compare or an add per window element)."""

    def handle(inputs: list[Any], outputs: list[Any]) -> Counter[str]:
        kernel = _int_list(inputs[1])
        kernel = kernel * dims if len(kernel) == 1 else kernel
        return Counter({name: math.prod(kernel) * _numel(outputs[0])})

    return handle


_ACTIVATION_OPS = "relu gelu silu sigmoid tanh hardswish hardsigmoid hardtanh leaky_relu elu selu softplus mish clamp".split()


def _build_handles() -> dict[str, Handle]:
    handles: dict[str, Handle] = {
        # MAC ops (the total)
        "aten::_convolution": _conv(transposed_arg=6),
        "aten::convolution": _conv(transposed_arg=6),
        "aten::conv1d": _conv(None),
        "aten::conv2d": _conv(None),
        "aten::conv3d": _conv(None),
        "aten::linear": _linear,
        "aten::addmm": _addmm,
        "aten::matmul": _named("matmul", matmul_flop_jit),
        "aten::mm": _named("mm", matmul_flop_jit),
        "aten::bmm": _named("bmm", bmm_flop_jit),
        "aten::einsum": _named("einsum", einsum_flop_jit),
        # auxiliary ops (flops_by_op only)
        "aten::batch_norm": _per_output("batch_norm", 2),
        "aten::layer_norm": _named("layer_norm", norm_flop_counter(2)),
        "aten::group_norm": _named("group_norm", norm_flop_counter(2)),
        "aten::instance_norm": _named("instance_norm", norm_flop_counter(1)),
        "aten::upsample_nearest2d": _per_output("upsample", 1),
        "aten::upsample_bilinear2d": _per_output("upsample", 4),
        "aten::softmax": _per_output("softmax", 3),
        "aten::_softmax": _per_output("softmax", 3),
        "aten::log_softmax": _per_output("softmax", 3),
        "aten::_log_softmax": _per_output("softmax", 3),
    }
    for op in ("add", "sub", "mul", "div", "rsub"):
        handles[f"aten::{op}"] = handles[f"aten::{op}_"] = _per_output(op)
    for op in _ACTIVATION_OPS:
        handles[f"aten::{op}"] = handles[f"aten::{op}_"] = _per_output(op)
    for dims in (1, 2, 3):
        handles[f"aten::avg_pool{dims}d"] = _pool("avg_pool", dims)
        handles[f"aten::max_pool{dims}d"] = _pool("max_pool", dims)
        handles[f"aten::adaptive_avg_pool{dims}d"] = _per_input("adaptive_avg_pool")
        handles[f"aten::adaptive_max_pool{dims}d"] = _per_input("adaptive_max_pool")
    handles["aten::mean"] = _per_input("mean")
    handles["aten::sum"] = _per_input("sum")
    return handles


#: fvcore op name -> handle. Extend this table to count a new op.
FLOP_HANDLES: dict[str, Handle] = _build_handles()


def count_flops(
    model: nn.Module, input_shape: Sequence[int], *, device: str | torch.device = "cpu"
) -> tuple[float, dict[str, float], dict[str, int]]:
    """FLOPs of one forward pass of one sample, under the module's convention (see the module docstring).

    ``input_shape`` is per sample (no batch dimension); ``model`` must already live on ``device``.
    Returns ``(total, by_op, unsupported)``: ``total`` is FLOPs per sample of the MAC ops (:data:`MAC_OPS`),
    ``by_op`` FLOPs per sample of every counted op type (MAC and auxiliary), ``unsupported`` the number of
    occurrences of each op nobody counted (fvcore op names, e.g. ``aten::cumsum``).
    """
    x = torch.randn(1, *(int(s) for s in input_shape), device=device)
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module  # as fvcore: trace the wrapped model
    with eval_mode(model), torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # tracer and torch.jit deprecation warnings
        graph, _ = _get_trace_graph(model, x)
    counts: Counter[str] = Counter()
    missing: Counter[str] = Counter()
    for node in graph.nodes():
        kind = node.kind()
        if kind == "prim::PythonOp":  # a torch.autograd.Function: its Python name, as fvcore names it
            kind = f"{kind}.{node.pyname()}"
        handle = FLOP_HANDLES.get(kind) or _DEFAULT_SUPPORTED_OPS.get(kind)  # ours first, then fvcore's defaults
        if handle is None:
            if not _ignored(kind):
                missing[kind] += 1
            continue
        op_counts = handle(list(node.inputs()), list(node.outputs()))
        if isinstance(op_counts, Number):  # a handle may return a bare number, named after its op (as fvcore)
            op_counts = Counter({kind.split("::", 1)[-1]: op_counts})
        counts += op_counts  # Counter addition drops zero counts, as fvcore's does
    by_op = {k: float(v) for k, v in counts.items()}
    unsupported = dict(missing)
    if unsupported:
        log.warning("count_flops: ops not counted (%s): %s", type(model).__name__, unsupported)
    total = float(sum(v for k, v in by_op.items() if k in MAC_OPS))
    return total, by_op, unsupported


def _ignored(kind: str) -> bool:
    """fvcore's rule: its list of zero-FLOP ops, and every ``prim::`` node except Python and scripted calls."""
    if kind in _IGNORED_OPS:
        return True
    return kind.startswith("prim::") and not kind.startswith(("prim::PythonOp", "prim::CallFunction"))


def training_flops(forward_flops_per_sample: float, samples_seen: int) -> float:
    """Estimated training FLOPs: ``3 * forward_flops_per_sample * samples_seen``.

    The backward pass costs about twice the forward (one product for the gradient with respect to the
    activations, one for the gradient with respect to the weights), so one training sample costs about
    three forward passes (Kaplan et al. 2020; OpenAI, "AI and Compute"). The result has the unit of
    ``forward_flops_per_sample`` (pass MFLOPs, get MFLOPs). Optimizer updates and evaluation passes are not
    included.
    """
    if forward_flops_per_sample < 0 or samples_seen < 0:
        raise ValueError(
            f"training_flops: arguments must be >= 0, got {forward_flops_per_sample=}, {samples_seen=}"
        )
    return 3.0 * float(forward_flops_per_sample) * int(samples_seen)
