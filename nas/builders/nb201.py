"""``nb201``: the NAS-Bench-201 cell network (Dong & Yang, ICLR 2020), layer for layer as in the official
code (xautodl ``TinyNetwork``, ``InferCell``, ``ResNetBasicblock``, ``ReLUConvBN``).

Network: stem Conv3x3(C_in -> C, no bias) + BN; ``N`` cells at ``C``; a residual reduction block to ``2C``;
``N`` cells; a reduction to ``4C``; ``N`` cells; BN-ReLU, global average pool, Linear.
Reduction block: ReLU-Conv3x3(stride 2)-BN, ReLU-Conv3x3-BN, plus the shortcut AvgPool2d(2) -> Conv1x1 (no BN).
Cell: 4 nodes; node j is the sum over i < j of op(i -> j) applied to node i; the cell outputs node 3.
Ops: ``none`` (zeros), ``skip_connect`` (identity), ``nor_conv_1x1``/``nor_conv_3x3`` (ReLU-Conv(no bias)-BN),
``avg_pool_3x3`` (stride 1, padding 1, ``count_include_pad=False``).

Parameters: the six edges ``edge_j_i`` (the op on edge i -> j), and the constants ``C`` and ``N``. The
registered params hook also accepts ``{"arch": "|nor_conv_3x3~0|+|...|"}``, the official cell string.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor, nn

from nas.builders._common import check_positive_int, check_shape, lookup
from nas.space.registry import register_builder

OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: The six edges in the official string order: node 1 <- 0; node 2 <- 0, 1; node 3 <- 0, 1, 2.
EDGES: tuple[str, ...] = ("edge_1_0", "edge_2_0", "edge_2_1", "edge_3_0", "edge_3_1", "edge_3_2")
_NODES = 3


class Zero(nn.Module):
    """The ``none`` op: zeros of the input's shape (``x * 0``, as in the official code)."""

    def forward(self, x: Tensor) -> Tensor:
        return x.mul(0.0)


def relu_conv_bn(c_in: int, c_out: int, kernel: int, stride: int = 1) -> nn.Sequential:
    """ReLU -> Conv(kernel, stride, padding kernel // 2, no bias) -> BatchNorm (affine)."""
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
    )


#: Op name -> factory ``f(channels) -> module`` for a stride-1 cell edge.
OP_FACTORIES: dict[str, Callable[[int], nn.Module]] = {
    "none": lambda c: Zero(),
    "skip_connect": lambda c: nn.Identity(),
    "nor_conv_1x1": lambda c: relu_conv_bn(c, c, 1),
    "nor_conv_3x3": lambda c: relu_conv_bn(c, c, 3),
    "avg_pool_3x3": lambda c: nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
}


class Cell(nn.Module):
    """One NB201 cell at ``channels`` (stride 1); ``ops`` holds the six edge ops in :data:`EDGES` order."""

    def __init__(self, ops: Sequence[str], channels: int) -> None:
        super().__init__()
        self.edges = nn.ModuleList(lookup(OP_FACTORIES, op, "nb201 op")(channels) for op in ops)

    def forward(self, x: Tensor) -> Tensor:
        nodes = [x]
        k = 0
        for j in range(1, _NODES + 1):
            # node j = sum_i op(i -> j)(node i); reduce(add) avoids Python sum's extra "0 + t"
            nodes.append(functools.reduce(operator.add, (self.edges[k + i](nodes[i]) for i in range(j))))
            k += j
        return nodes[-1]


class ResNetBasicBlock(nn.Module):
    """The NB201 reduction block: ReLU-Conv3x3(s2)-BN, ReLU-Conv3x3-BN, plus AvgPool2d(2) -> Conv1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = relu_conv_bn(c_in, c_out, 3, stride=2)
        self.conv_b = relu_conv_bn(c_out, c_out, 3)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    """The NB201 ``TinyNetwork``: ``forward`` takes ``(B, C_in, H, W)`` and gives ``(B, num_classes)``."""

    def __init__(self, ops: Sequence[str], in_channels: int, num_classes: int, C: int, N: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, C, 3, padding=1, bias=False), nn.BatchNorm2d(C))
        cells: list[nn.Module] = []
        c_prev = C
        for stage, c in enumerate((C, 2 * C, 4 * C)):
            if stage > 0:
                cells.append(ResNetBasicBlock(c_prev, c))
            cells.extend(Cell(ops, c) for _ in range(N))
            c_prev = c
        self.cells = nn.Sequential(*cells)
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU())
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        out = self.global_pooling(self.lastact(self.cells(self.stem(x))))
        return self.classifier(out.flatten(1))


def arch_to_params(arch: str) -> dict[str, str]:
    """The six edge params of an official cell string, e.g. ``|nor_conv_3x3~0|+|skip_connect~0|none~1|+|...|``.

    Raises ``ValueError`` saying what is wrong when the string is not a well-formed NB201 cell.
    """
    if not isinstance(arch, str):
        raise ValueError(f"nb201 arch must be a string, got {type(arch).__name__}")
    nodes = arch.split("+")
    if len(nodes) != _NODES:
        raise ValueError(f"nb201 arch {arch!r}: expected {_NODES} nodes separated by '+', got {len(nodes)}")
    params: dict[str, str] = {}
    for j, node in enumerate(nodes, start=1):
        if len(node) < 2 or node[0] != "|" or node[-1] != "|":
            raise ValueError(f"nb201 arch {arch!r}: node {j} {node!r} must look like '|op~0|op~1|'")
        entries = node[1:-1].split("|")
        if len(entries) != j:
            raise ValueError(f"nb201 arch {arch!r}: node {j} must have {j} inputs, got {len(entries)}")
        for i, entry in enumerate(entries):
            op, sep, src = entry.partition("~")
            if not sep or src != str(i):
                raise ValueError(f"nb201 arch {arch!r}: node {j} entry {entry!r} must be 'op~{i}'")
            if op not in OPS:
                raise ValueError(f"nb201 arch {arch!r}: unknown op {op!r}; expected one of: {', '.join(OPS)}")
            params[f"edge_{j}_{i}"] = op
    return params


def params_to_arch(params: Mapping[str, Any]) -> str:
    """The official cell string of the six edge params (the inverse of :func:`arch_to_params`)."""
    missing = [e for e in EDGES if e not in params]
    if missing:
        raise ValueError(f"nb201 params lack {', '.join(missing)}")
    for e in EDGES:
        if params[e] not in OPS:
            raise ValueError(f"nb201 {e}={params[e]!r}: expected one of: {', '.join(OPS)}")
    nodes = (
        "|" + "|".join(f"{params[f'edge_{j}_{i}']}~{i}" for i in range(j)) + "|" for j in range(1, _NODES + 1)
    )
    return "+".join(nodes)


def arch_params_hook(params: Mapping[str, Any]) -> dict[str, Any]:
    """Params hook: expands ``{"arch": "<cell string>", ...}`` into the six edges; flat params pass unchanged."""
    if "arch" not in params:
        return dict(params)
    out = {k: v for k, v in params.items() if k != "arch"}
    for edge, op in arch_to_params(params["arch"]).items():
        if edge in out and out[edge] != op:
            raise ValueError(f"nb201: arch gives {edge}={op!r} but params also give {edge}={out[edge]!r}")
        out[edge] = op
    return out


@register_builder("nb201", params_hook=arch_params_hook)
def nb201(
    *,
    input_shape: Sequence[int],
    num_classes: int,
    edge_1_0: str,
    edge_2_0: str,
    edge_2_1: str,
    edge_3_0: str,
    edge_3_1: str,
    edge_3_2: str,
    C: int = 16,
    N: int = 5,
) -> nn.Module:
    """The NAS-Bench-201 network with the given cell (edge_j_i = op on i -> j), ``C`` channels, ``N`` cells/stage.

    ``input_shape`` is ``(C_in, H, W)`` with H, W >= 4 (two reductions); NB201 itself is ``(3, 32, 32)``.
    """
    shape = check_shape(input_shape, "nb201", ndims=(3,))
    if min(shape[1:]) < 4:
        raise ValueError(f"nb201: input height and width must be >= 4 (two 2x reductions), got {list(shape)}")
    num_classes = check_positive_int(num_classes, "num_classes", "nb201")
    C = check_positive_int(C, "C", "nb201")
    N = check_positive_int(N, "N", "nb201", minimum=0)
    ops = (edge_1_0, edge_2_0, edge_2_1, edge_3_0, edge_3_1, edge_3_2)
    for edge, op in zip(EDGES, ops, strict=True):
        lookup(OP_FACTORIES, op, f"nb201 op for {edge}")
    return NB201Network(ops, shape[0], num_classes, C, N)
