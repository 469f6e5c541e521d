"""``prune_unstructured``: zero the weights of smallest magnitude (L1) in every Linear and Conv layer.

Uses ``torch.nn.utils.prune`` (``l1_unstructured`` per layer, or ``global_unstructured`` over all layers), then
``prune.remove`` so the zeros are plain weights and no masks or hooks remain. The tensors stay dense: the file
size, the FLOPs fvcore counts (``mflops``) and the measured latency do not drop. The MACs that meet a non-zero
weight are reported separately as ``effective_mflops``.
"""

from __future__ import annotations

import logging

from torch import nn
from torch.nn.utils import prune

from nas.compress._util import WEIGHT_LAYERS, check_fraction
from nas.compress.registry import CompressedModel, register_method

log = logging.getLogger(__name__)

SCOPES = ("layer", "global")

SPARSITY_NOTE = (
    "unstructured sparsity: the weights stay dense tensors, so dense kernels do not speed up and the file does "
    "not shrink; mflops counts every MAC, effective_mflops only the MACs with non-zero weights"
)


@register_method("prune_unstructured")
def prune_unstructured(model: nn.Module, *, amount: float = 0.5, scope: str = "layer") -> CompressedModel:
    """Zero ``amount`` of the weights (not biases) of every Linear/Conv layer, smallest magnitude first.

    ``scope="layer"``: each layer loses ``amount`` of its own weights (no layer can be emptied);
    ``scope="global"``: ``amount`` of all those weights together, ranked across layers.
    """
    amount = check_fraction(amount, "amount", "prune_unstructured")
    if scope not in SCOPES:
        raise ValueError(f"prune_unstructured: scope must be one of {SCOPES}, got {scope!r}")
    targets = [(name, m) for name, m in model.named_modules() if isinstance(m, WEIGHT_LAYERS)]
    if not targets:
        raise ValueError(f"prune_unstructured: {type(model).__name__} has no Linear or Conv layer to prune")
    if scope == "global":
        prune.global_unstructured(
            [(m, "weight") for _, m in targets], pruning_method=prune.L1Unstructured, amount=amount
        )
    else:
        for _, m in targets:
            prune.l1_unstructured(m, "weight", amount=amount)
    layers = []
    for name, m in targets:
        prune.remove(m, "weight")
        zeros = int((m.weight == 0).sum())
        layers.append({"layer": name, "weights": m.weight.numel(), "zeros": zeros})
    total = sum(entry["weights"] for entry in layers)
    zeros = sum(entry["zeros"] for entry in layers)
    log.debug("prune_unstructured: %d of %d weights zero", zeros, total)
    sparsity = zeros / total
    return CompressedModel(
        model=model,
        method="prune_unstructured",
        settings={"amount": amount, "scope": scope, "sparsity": sparsity, "layers": layers},
        notes=[SPARSITY_NOTE],
    )
