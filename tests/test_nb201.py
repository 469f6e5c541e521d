"""The nb201 builder against the published NAS-Bench-201 table (benchmarks/data/nb201/nb201_cifar10.csv).

Our FLOPs (count_flops, batch 1, 3x32x32, 10 classes) and params must agree with ``flops_M``/``params_M``
within 2% on 200 rows sampled with a fixed seed (benchmarks/nb201_flops.py checks all 15,625). The arch
string conversion must round-trip on every row.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from nas.builders import build
from nas.builders.nb201 import EDGES, OPS, Cell, arch_params_hook, arch_to_params, nb201, params_to_arch
from nas.profile import count_flops
from nas.space import Space, load_space

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "benchmarks" / "data" / "nb201" / "nb201_cifar10.csv"
SAMPLED_ROWS = 80
TOLERANCE = 0.02
EXAMPLE = "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|"


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return pd.read_csv(TABLE, usecols=["index", "arch_str", "flops_M", "params_M"])


@pytest.fixture(scope="module")
def space() -> Space:
    return load_space(ROOT / "search_spaces" / "nb201.yaml")


def cost_key(arch: str) -> tuple[str, ...]:
    """The edges that carry weights; ``none``/``skip_connect``/``avg_pool_3x3`` have no MACs and no params."""
    return tuple(op if op.startswith("nor_conv") else "free" for op in arch_to_params(arch).values())


@pytest.fixture(autouse=True)
def one_thread():
    # batch-1 tracing gains nothing from intra-op threads, and a busy 2-core box makes them much slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_weight_free_ops_cost_nothing() -> None:
    # the premise of cost_key: under our convention these ops add no FLOPs to the total and have no params
    cell = Cell(["none", "skip_connect", "avg_pool_3x3", "avg_pool_3x3", "none", "skip_connect"], 16)
    flops, by_op, unsupported = count_flops(cell, (16, 32, 32))
    assert flops == 0 and unsupported == {} and by_op["avg_pool"] > 0
    assert sum(p.numel() for p in cell.parameters()) == 0


@pytest.mark.slow  # ~12 s: 80 random models of 17 cells at 32x32
def test_flops_and_params_match_the_table(table: pd.DataFrame, space: Space) -> None:
    rows = table.sample(n=SAMPLED_ROWS, random_state=0)
    flops_by_key: dict[tuple[str, ...], float] = {}
    worst = (0.0, "", "")
    for row in rows.itertuples():
        model = build(space, {"arch": row.arch_str})
        params = sum(p.numel() for p in model.parameters())
        key = cost_key(row.arch_str)
        if (
            key not in flops_by_key
        ):  # rows with the same weighted edges share the count (premise tested above)
            flops, _, unsupported = count_flops(model, (3, 32, 32))
            assert unsupported == {}, row.arch_str
            flops_by_key[key] = flops
        for what, ours, theirs in (
            ("flops", flops_by_key[key] / 1e6, row.flops_M),
            ("params", params / 1e6, row.params_M),
        ):
            err = abs(ours - theirs) / theirs
            worst = max(worst, (err, what, row.arch_str))
            assert err <= TOLERANCE, (
                f"{what} of {row.arch_str}: ours {ours:.6f} vs table {theirs:.6f} ({err:.2%})"
            )
    assert worst[0] < 1e-6, f"expected an exact match, worst {worst}"


def test_example_row_exactly(space: Space) -> None:
    # row 1 of the table: 113.95137 MFLOPs, 0.802426 M params
    model = build(space, {"arch": EXAMPLE})
    assert count_flops(model, (3, 32, 32))[0] == 113_951_370
    assert sum(p.numel() for p in model.parameters()) == 802_426


def test_network_structure() -> None:
    model = nb201(input_shape=(3, 32, 32), num_classes=10, **arch_to_params(EXAMPLE))
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    assert len(model.cells) == 5 + 1 + 5 + 1 + 5
    pools = [m for m in model.modules() if isinstance(m, nn.AvgPool2d) and m.kernel_size == 3]
    assert pools and all(not p.count_include_pad and p.stride == 1 and p.padding == 1 for p in pools)
    shortcut = model.cells[5].downsample
    assert isinstance(shortcut[0], nn.AvgPool2d) and shortcut[0].kernel_size == 2
    assert (
        isinstance(shortcut[1], nn.Conv2d) and shortcut[1].kernel_size == (1, 1) and shortcut[1].bias is None
    )
    assert not any(isinstance(m, nn.BatchNorm2d) for m in shortcut)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert all(c.bias is None for c in convs)


def test_arch_round_trip_on_every_row(table: pd.DataFrame) -> None:
    seen = set()
    for arch in table["arch_str"]:
        params = arch_to_params(arch)
        assert set(params) == set(EDGES) and set(params.values()) <= set(OPS)
        assert params_to_arch(params) == arch
        seen.add(tuple(params[e] for e in EDGES))
    assert len(seen) == len(table) == 5**6


@pytest.mark.parametrize(
    ("arch", "match"),
    [
        ("", "expected 3 nodes"),
        ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|", "expected 3 nodes"),
        ("nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|", "must look like"),
        ("|nor_conv_3x3~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must have 2 inputs"),
        ("|nor_conv_3x3~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must be 'op~0'"),
        ("|conv_5x5~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown op 'conv_5x5'"),
        ("|none|+|none~0|none~1|+|none~0|none~1|none~2|", "must be 'op~0'"),
    ],
)
def test_malformed_arch(arch: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        arch_to_params(arch)


def test_params_hook() -> None:
    flat = arch_to_params(EXAMPLE)
    assert arch_params_hook(flat) == flat  # flat params pass through unchanged
    assert arch_params_hook({"arch": EXAMPLE}) == flat
    assert (
        arch_params_hook({"arch": EXAMPLE, "edge_1_0": "nor_conv_3x3"}) == flat
    )  # agreeing duplicates are fine
    with pytest.raises(ValueError, match="edge_1_0"):
        arch_params_hook({"arch": EXAMPLE, "edge_1_0": "none"})
    with pytest.raises(ValueError, match="lack edge_3_2"):
        params_to_arch({e: "none" for e in EDGES[:-1]})


def test_arch_and_flat_params_build_the_same_model(space: Space) -> None:
    a = build(space, {"arch": EXAMPLE}, seed=0).state_dict()
    b = build(space, arch_to_params(EXAMPLE), seed=0).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
