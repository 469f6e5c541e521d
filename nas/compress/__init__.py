"""Model compression with honest costs: structured and unstructured pruning, int8 quantization, low rank.

``compress(model, method, **opts) -> CompressedModel`` compresses a deep copy (the input is never modified),
``measure(cm, input_shape, eval_data=...) -> CompressionReport`` measures what the compressed model really costs
(fvcore MFLOPs, effective MFLOPs of non-zero weights, params, size_mb, latency_ms) and how accurate it is, and
``finetune(cm, splits, ...)`` trains it briefly, billing the training FLOPs. Methods (:data:`METHODS`):

* ``none``: the uncompressed baseline.
* ``prune_structured`` (``amount``): channels and neurons removed; the model is smaller and faster.
* ``prune_unstructured`` (``amount``, ``scope``): weights zeroed; only ``effective_mflops`` drops.
* ``int8`` (``mode``, ``calibration``): dynamic (Linear/LSTM/GRU) or static (FX, calibrated) quantization.
* ``lowrank`` (``rank`` or ``energy``): truncated-SVD factorization of Linear and Conv layers.

Add a method with ``@register_method("name")`` on ``fn(model_copy, **opts) -> CompressedModel``.
"""

from __future__ import annotations

from nas.compress import lowrank, quantize, structured, unstructured  # noqa: F401  (registers the methods)
from nas.compress.finetune import finetune
from nas.compress.lowrank import lowrank_params
from nas.compress.measure import CompressionReport, count_params, measure, model_size_mb
from nas.compress.quantize import quiet_quantization
from nas.compress.registry import METHODS, CompressedModel, compress, register_method

__all__ = [
    "METHODS",
    "CompressedModel",
    "CompressionReport",
    "compress",
    "count_params",
    "finetune",
    "lowrank_params",
    "measure",
    "model_size_mb",
    "quiet_quantization",
    "register_method",
]
