"""``Space``: a validated, immutable search space; ``load_space`` / ``parse_space`` build one."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from optuna.trial import BaseTrial

from nas.space import count, sample
from nas.space.dims import Dimension
from nas.space.errors import SpaceError
from nas.space.hashing import space_hash
from nas.space.registry import get_builder
from nas.space.toplevel import parse_top
from nas.space.tree import Group
from nas.space.yamlio import line_of, read_yaml


@dataclass(frozen=True)
class Space:
    """A search space for one builder (format: docs/SPACE_FORMAT.md).

    ``input_shape``/``num_classes`` are the file's defaults (``None`` if unset); ``source`` is the file path or
    ``'<string>'``; ``hash`` is 16 hex digits of the canonical spec (equal hashes mean the same space).
    """

    builder: str
    input_shape: tuple[int, ...] | None
    num_classes: int | None
    source: str
    hash: str
    description: str
    root: Group = field(repr=False)

    def sample(self, trial: BaseTrial) -> dict[str, Any]:
        """Define-by-run: suggest the space on ``trial`` (names are '/'-joined paths); the flat params dict of
        the sampled values. On ``optuna.trial.FixedTrial(params)`` it replays ``params``."""
        out: dict[str, Any] = {}
        sample.sample(self.root, "", trial, out)
        return out

    def sample_random(self, seed: int) -> dict[str, Any]:
        """``sample`` on a throwaway trial with ``RandomSampler(seed)``: same seed, same params."""
        return self.sample(sample.random_trial(seed))

    def resolve(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """Flat params -> the nested config the builder receives (a repeat is a list of element dicts, a choice
        ``{"type": branch, **fields}``, constants filled in). Params first go through the builder's
        ``params_hook``, if any. Names the space does not use are ignored; a missing param or a value outside
        its distribution raises ``SpaceError`` (file = ``source``, path = the param name)."""
        return sample.resolve(self.root, "", self._flat(params), self.source)

    def dimensions(self) -> list[Dimension]:
        """Every dimension that can appear (all repeat indices up to ``high``, all branches), in spec order."""
        return count.dimensions(self.root, "")

    def size(self) -> int | None:
        """Number of distinct configurations (a sum over branches and depths), ``None`` if a continuous float
        can appear (a float with ``step`` is counted)."""
        return count.size(self.root)

    def _flat(self, params: Mapping[str, Any]) -> Mapping[str, Any]:
        try:
            hook = get_builder(self.builder).params_hook
        except KeyError:
            return params
        if hook is None:
            return params
        try:
            return hook(params)
        except (ValueError, KeyError, TypeError) as err:
            raise SpaceError(
                self.source,
                "",
                f"builder {self.builder!r} could not read the params: {err}",
                "pass the flat params dict that Space.sample returns",
            ) from None


def parse_space(data: Any, *, source: str = "<string>") -> Space:
    """Validate already-loaded YAML data (a mapping) and build the ``Space``; ``SpaceError`` otherwise."""
    top = parse_top(data, source)
    return Space(
        builder=top.builder,
        input_shape=top.input_shape,
        num_classes=top.num_classes,
        source=source,
        hash=space_hash(top.builder, top.input_shape, top.num_classes, top.root),
        description=top.description,
        root=top.root,
    )


def load_space(path: str | os.PathLike[str]) -> Space:
    """Read, validate and build the space in the YAML file at ``path``; ``SpaceError`` (with ``line`` when
    known) on any problem, including a missing file."""
    data, node = read_yaml(path)
    try:
        return parse_space(data, source=str(path))
    except SpaceError as err:
        if err.line is None and node is not None:
            err.line = line_of(node, err.path)
        raise
