"""Model builders: ``build(space, params)`` turns a search space and a flat params dict into an ``nn.Module``.

Importing this package registers the built-in builders ``mlp``, ``cnn`` and ``nb201`` in
:mod:`nas.space.registry`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from nas.builders import cnn, mlp, nb201  # noqa: F401  (registers the built-in builders)
from nas.space.errors import SpaceError
from nas.space.registry import get_builder

if TYPE_CHECKING:
    from nas.space import Space

__all__ = ["build"]

log = logging.getLogger(__name__)


def build(
    space: Space,
    params: Mapping[str, Any],
    *,
    input_shape: Sequence[int] | None = None,
    num_classes: int | None = None,
    seed: int | None = None,
) -> nn.Module:
    """Build the model of ``params`` (a flat params dict, as sampled from ``space``) on the CPU.

    ``space.resolve(params)`` applies the builder's ``params_hook`` (if any; e.g. nb201's ``{"arch": ...}``)
    and resolves the nested config (``SpaceError`` naming the space file on bad params); then the builder runs.
    A builder that refuses the resolved values raises ``SpaceError`` naming the space, the params and its reason.
    ``input_shape`` (per sample, no batch dimension) and ``num_classes`` given here override the space's
    defaults; ``SpaceError`` (a ``ValueError``) naming the space file when neither gives one. Resolved values that are not
    parameters of the builder (training settings such as ``lr`` kept in the same space) are not passed on.
    With ``seed``, weights are initialized under ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng``,
    so the global RNG is left untouched; the same space, params and seed give an identical ``state_dict``.
    """
    spec = get_builder(space.builder)
    config = space.resolve(params)  # applies spec.params_hook first; SpaceError names the file on bad params
    extra = sorted(set(config) - spec.param_names)
    if extra:
        log.debug("build: %s are not parameters of builder %r; not passed to it", extra, spec.name)
    kwargs = {k: v for k, v in config.items() if k in spec.param_names}
    shape = input_shape if input_shape is not None else space.input_shape
    classes = num_classes if num_classes is not None else space.num_classes
    for what, value in (("input_shape", shape), ("num_classes", classes)):
        if value is None:  # SpaceError is a ValueError that names the space file
            raise SpaceError(
                space.source,
                what,
                f"no {what} is known for builder {space.builder!r}",
                f"set '{what}:' in the space file, or pass {what}= to build() (the data's value)",
            )
    try:
        if seed is None:
            return spec.fn(input_shape=tuple(shape), num_classes=int(classes), **kwargs)
        with torch.random.fork_rng(devices=list(range(torch.cuda.device_count()))):
            torch.manual_seed(seed)
            return spec.fn(input_shape=tuple(shape), num_classes=int(classes), **kwargs)
    except (ValueError, TypeError, RuntimeError, KeyError) as e:
        if isinstance(e, SpaceError):
            raise
        # The builder refused these values (a negative width, an unknown activation, a shape it cannot take):
        # say which space and values, instead of a traceback from deep inside torch.
        raise SpaceError(
            space.source, "params",
            f"builder {space.builder!r} cannot build {dict(params)} for input {tuple(shape)}: {type(e).__name__}: {e}",
            "narrow the space's ranges or choices to values the builder accepts",
        ) from e
