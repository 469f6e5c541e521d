"""``Space.hash``: stable under formatting, key order and number spelling; changed by any change of meaning."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import open_builder

from nas.space import load_space, parse_space

BUILDER = "_space_hash"

BLOCK_STYLE = f"""
# A block-style space with comments.
builder: {BUILDER}
input_shape: [1, 8, 8]
num_classes: 10
params:
  lr:
    type: float
    low: 1e-4        # YAML 1.1 reads this as a string; bounds accept it
    high: 0.01
    log: true
  width: {{type: int, low: 8, high: 64, step: 8}}
  depth: {{type: int, low: 1, high: 4}}
  act: {{type: categorical, choices: [relu, gelu]}}
  stages:
    repeat: {{low: 1, high: 3}}
    each:
      block:
        choice:
          conv: {{kernel: {{type: categorical, choices: [3, 5]}}}}
          skip:
"""

FLOW_REORDERED = (
    "{params: {stages: {each: {block: {choice: {conv: {kernel: {choices: [3, 5], type: categorical}}, skip: null}}},"
    " repeat: {high: 3, low: 1}}, act: {choices: [relu, gelu], type: categorical},"
    " depth: {type: int, step: 1, high: 4, low: 1, log: false},"
    " width: {step: 8, high: 64, low: 8, type: int}, lr: {log: true, high: 1.0e-2, low: 0.0001, type: float}},"
    f" num_classes: 10, input_shape: [1, 8, 8], builder: {BUILDER}}}"
)


@pytest.fixture(scope="module", autouse=True)
def builder():
    with open_builder(BUILDER):
        yield


def h(text: str) -> str:
    return parse_space(yaml.safe_load(text)).hash


def test_hash_is_16_hex_digits() -> None:
    assert re.fullmatch(r"[0-9a-f]{16}", h(BLOCK_STYLE))


def test_same_meaning_same_hash(tmp_path: Path) -> None:
    base = h(BLOCK_STYLE)
    assert h(FLOW_REORDERED) == base  # flow style, reordered keys, spelled-out defaults, 1.0e-2 for 0.01
    assert h(BLOCK_STYLE.replace("low: 1e-4", "low: 0.0001")) == base
    assert h(BLOCK_STYLE.replace("low: 1e-4", "low: 1.0e-4")) == base
    assert h(BLOCK_STYLE + "description: changed words do not change the space\n") == base
    (tmp_path / "a.yaml").write_text(BLOCK_STYLE)
    assert load_space(tmp_path / "a.yaml").hash == base  # the source path is not hashed


def test_float_bounds_normalize_ints() -> None:
    one = f"builder: {BUILDER}\nparams: {{x: {{type: float, low: 0, high: 1}}}}"
    assert h(one) == h(one.replace("low: 0,", "low: 0.0,").replace("high: 1}", "high: 1.0}"))


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("high: 0.01", "high: 0.02"),  # a changed bound
        ("step: 8}", "step: 4}"),
        ("log: true", "log: false"),
        ("choices: [relu, gelu]", "choices: [gelu, relu]"),  # the order of a categorical
        ("choices: [3, 5]", "choices: [3, 5, 7]"),
        ("repeat: {low: 1, high: 3}", "repeat: {low: 0, high: 3}"),
        ("repeat: {low: 1, high: 3}", "repeat: 3"),
        ("num_classes: 10", "num_classes: 100"),
        ("input_shape: [1, 8, 8]", "input_shape: [3, 8, 8]"),
        ("type: int, low: 1, high: 4", "type: float, low: 1, high: 4"),
        ("          skip:\n", "          skip:\n          identity:\n"),
    ],
)
def test_changed_meaning_changes_the_hash(old: str, new: str) -> None:
    assert old in BLOCK_STYLE
    assert h(BLOCK_STYLE.replace(old, new)) != h(BLOCK_STYLE)


def test_branch_order_is_meaningful() -> None:
    swapped = BLOCK_STYLE.replace(
        "          conv: {kernel: {type: categorical, choices: [3, 5]}}\n          skip:\n",
        "          skip:\n          conv: {kernel: {type: categorical, choices: [3, 5]}}\n",
    )
    assert swapped != BLOCK_STYLE
    assert h(swapped) != h(BLOCK_STYLE)


def test_constant_types_are_meaningful() -> None:
    one = f"builder: {BUILDER}\nparams: {{x: 1}}"
    assert h(one) != h(one.replace("x: 1", "x: 1.0")) != h(one.replace("x: 1", "x: true"))
