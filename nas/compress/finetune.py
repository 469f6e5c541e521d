"""Short fine-tuning after compression (pruned and low-rank models), billed in training FLOPs.

Quantized models are not fine-tuned: ``int8`` is post-training quantization (fine-tune before quantizing).
After unstructured pruning the zeros are kept while training (``torch.nn.utils.prune.custom_from_mask`` with the
mask of non-zero weights, removed afterwards), so the sparsity survives the fine-tuning.
"""

from __future__ import annotations

import copy
import logging
from typing import Any

from torch import nn
from torch.nn.utils import prune

from nas.compress._util import WEIGHT_LAYERS, is_quantized
from nas.compress.registry import CompressedModel
from nas.data import Splits
from nas.profile import count_flops, training_flops
from nas.training.train import train

log = logging.getLogger(__name__)


def finetune(
    cm: CompressedModel,
    splits: Splits,
    *,
    epochs: int,
    lr: float = 1e-3,
    seed: int = 0,
    keep_zeros: bool | None = None,
    **train_opts: Any,
) -> CompressedModel:
    """Train a copy of ``cm.model`` on ``splits`` with :func:`nas.training.train.train` and return it as a new
    :class:`CompressedModel` (``cm`` is not modified).

    ``keep_zeros`` (default: True after ``prune_unstructured``) holds zero weights at zero. ``train_opts`` go to
    ``train`` (batch_size, optimizer, ...). The training compute, ``3 x forward MFLOPs x samples seen``
    (:func:`nas.profile.training_flops`, dense forward FLOPs since training runs dense kernels), is added to
    ``compute_mflops`` and recorded in ``settings["finetune"]``.
    """
    if is_quantized(cm.model):
        raise ValueError("finetune: int8 models are not fine-tuned (post-training quantization); "
                         "fine-tune the float model, then quantize")
    if keep_zeros is None:
        keep_zeros = cm.method == "prune_unstructured"
    model = copy.deepcopy(cm.model)
    masked: list[nn.Module] = []
    if keep_zeros:
        for m in model.modules():
            if isinstance(m, WEIGHT_LAYERS):
                prune.custom_from_mask(m, "weight", mask=m.weight.detach() != 0)
                masked.append(m)
    try:
        result = train(model, splits, epochs=epochs, lr=lr, seed=seed, **train_opts)
    finally:
        for m in masked:
            prune.remove(m, "weight")
    model.cpu().eval()
    per_sample, _, _ = count_flops(model, splits.input_shape)
    spent = training_flops(per_sample / 1e6, result.samples_seen)
    record = {"epochs": epochs, "lr": lr, "seed": seed, "samples_seen": result.samples_seen,
              "keep_zeros": keep_zeros, "train_mflops": spent}
    log.info("finetune: %s %s", cm.method, record)
    return CompressedModel(
        model=model,
        method=cm.method,
        settings={**cm.settings, "finetune": record},
        notes=[*cm.notes, f"fine-tuned {epochs} epochs (lr {lr:g}, seed {seed}) after compression: "
                          f"{spent:.4g} MFLOPs of training compute (3 x forward x {result.samples_seen} samples)"],
        flops_reference=cm.flops_reference,
        compute_mflops=cm.compute_mflops + spent,
    )
