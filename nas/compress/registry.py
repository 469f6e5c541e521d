"""The method table and the common contract: ``compress(model, method, **opts) -> CompressedModel``.

A method is a function ``fn(model, **opts) -> CompressedModel`` registered with ``@register_method(name)``;
it receives a deep copy of the caller's model (CPU or not, train or eval mode as the caller left it) and may
change that copy freely. :func:`compress` makes the copy, checks the options against the method's signature
and dispatches through :data:`METHODS`, so the caller's model is never modified.
"""

from __future__ import annotations

import copy
import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor, nn

from nas.errors import did_you_mean

log = logging.getLogger(__name__)


@dataclass
class CompressedModel:
    """A compressed copy of a model and how it was made.

    model: the compressed module (a new object; the input model is untouched), in eval mode.
    method: the name it was compressed with (a key of :data:`METHODS`).
    settings: plain values describing what was done (options, per-layer outcomes, backend...).
    notes: honest caveats a reader of the figures must know (e.g. sparsity does not speed up dense kernels).
    flops_reference: a float model with the same multiply-adds, used to count FLOPs when fvcore cannot trace
        ``model`` (quantized models); ``None`` when ``model`` itself is counted.
    compute_mflops: MFLOPs (10^6 FLOPs, total, not per sample) spent producing the model after its original
        training: calibration forward passes (int8) and fine-tuning (``3 x forward x samples``), for billing.
    """

    model: nn.Module
    method: str
    settings: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    flops_reference: nn.Module | None = None
    compute_mflops: float = 0.0


Method = Callable[..., CompressedModel]

#: Method name -> function ``fn(model_copy, **opts) -> CompressedModel``.
METHODS: dict[str, Method] = {}


def register_method(name: str) -> Callable[[Method], Method]:
    """Register a compression method under ``name``; a duplicate name raises ``ValueError``."""

    def deco(fn: Method) -> Method:
        if name in METHODS:
            raise ValueError(f"compression method {name!r} is already registered")
        METHODS[name] = fn
        return fn

    return deco


def compress(
    model: nn.Module, method: str, *, calibration: Tensor | None = None, **opts: Any
) -> CompressedModel:
    """Compress a deep copy of ``model`` with ``method`` (a key of :data:`METHODS`); ``model`` is not modified.

    ``opts`` are the method's options (``amount`` for the pruning methods, ``rank``/``energy`` for ``lowrank``,
    ``mode`` for ``int8``...); ``calibration`` is a batch of inputs ``(n, *input_shape)`` for methods that
    calibrate (``int8``). Unknown methods or options raise ``ValueError`` naming what is accepted.
    """
    if method not in METHODS:
        raise ValueError(
            f"unknown compression method {method!r}.{did_you_mean(method, METHODS, sentence=True)} Known: {', '.join(sorted(METHODS))}."
        )
    fn = METHODS[method]
    kwargs = dict(opts)
    if calibration is not None:
        kwargs["calibration"] = calibration
    try:
        inspect.signature(fn).bind(model, **kwargs)
    except TypeError as err:
        accepted = [p for p in inspect.signature(fn).parameters if p != "model"]
        raise ValueError(f"compress({method!r}): {err}; accepted options: {', '.join(accepted) or 'none'}") from None
    result = fn(copy.deepcopy(model), **kwargs)
    result.model.eval()
    log.info("compress: %s %s", method, result.settings)
    return result


@register_method("none")
def _identity(model: nn.Module) -> CompressedModel:
    """The uncompressed baseline: an unchanged copy, measured like any compressed model."""
    return CompressedModel(model=model, method="none", settings={}, notes=[])
