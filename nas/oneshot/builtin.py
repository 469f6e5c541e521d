"""Sharing rules of the built-in builders: ``cnn`` shares by slicing, ``nb201`` by op.

``cnn``: a block's slot is ``s{stage}.b{block}.{type}``: stage ``i``'s ``j``-th block of a given type (plain conv
or MBConv) is one set of weights whatever the channels, kernel (3x3 = centre of 5x5), expansion, stride or number
of stages and blocks before it; MBConv layers are named by role (``expand``, ``dw``, ``se``, ``project``) since
their position in ``body`` depends on the expansion and SE choices. The stem and head are shared by slicing.

``nb201``: each edge of each cell has one set of weights per op (``cells.{k}.edges.{e}.{op}``); the stem,
reduction blocks and classifier are shared as they are (their shapes do not depend on the cell).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from torch import nn

from nas.builders.nb201 import EDGES
from nas.oneshot.rules import SliceRule, register_sharing

_STAGE_KEY = re.compile(r"^stages\.(\d+)\.(.*)$")
_BODY_KEY = re.compile(r"^body\.(\d+)\.(.*)$")
_EDGE_KEY = re.compile(r"^cells\.(\d+)\.edges\.(\d+)\.(.*)$")


class CNNRule(SliceRule):
    """Slots of the ``cnn`` builder (module docstring)."""

    def slots(self, config: Mapping[str, Any], model: nn.Module) -> Mapping[str, str]:
        blocks: list[tuple[str, list[str]]] = []  # flat block index -> (slot prefix, MBConv body roles)
        for i, stage in enumerate(config.get("stages") or ()):
            block = dict(stage.get("block") or {"type": "conv"})
            kind = block.get("type", "conv")
            roles = (["expand"] * (block.get("expand", 1) != 1) + ["dw"] + ["se"] * bool(block.get("se", False))
                     + ["project"])
            blocks.extend((f"s{i}.b{j}.{kind}", roles) for j in range(int(stage.get("depth", 1))))
        out: dict[str, str] = {}
        for key in model.state_dict():
            m = _STAGE_KEY.match(key)
            if m is None:
                out[key] = key
                continue
            prefix, roles = blocks[int(m.group(1))]
            rest = m.group(2)
            body = _BODY_KEY.match(rest)
            out[key] = f"{prefix}.{roles[int(body.group(1))]}.{body.group(2)}" if body else f"{prefix}.{rest}"
        return out


class NB201Rule(SliceRule):
    """Slots of the ``nb201`` builder (module docstring)."""

    def slots(self, config: Mapping[str, Any], model: nn.Module) -> Mapping[str, str]:
        out: dict[str, str] = {}
        for key in model.state_dict():
            m = _EDGE_KEY.match(key)
            out[key] = key if m is None else \
                f"cells.{m.group(1)}.edges.{m.group(2)}.{config[EDGES[int(m.group(2))]]}.{m.group(3)}"
        return out


register_sharing("cnn", CNNRule())
register_sharing("nb201", NB201Rule())
