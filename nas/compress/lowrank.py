"""``lowrank``: truncated-SVD factorization of Linear and Conv layers at a rank ``r`` or an energy fraction.

* Linear ``in -> out`` with weight ``W`` (out x in) = ``U S V^T``: replaced by ``Linear(in, r, bias=False)`` with
  weight ``sqrt(S_r) V_r^T`` then ``Linear(r, out)`` with weight ``U_r sqrt(S_r)`` and the original bias.
  Parameters: ``r*in + r*out (+ out bias)`` instead of ``in*out (+ out)``.
* Conv ``k x k`` (``groups == 1``) with weight reshaped to ``out x (in*k*k)``: a ``k x k`` conv ``in -> r``
  (same stride, padding, dilation, no bias) then a ``1 x 1`` conv ``r -> out`` with the original bias.
  Parameters: ``r*in*k*k + r*out (+ out)``.

``energy=e`` picks, per layer, the smallest ``r`` whose singular values keep a fraction ``e`` of the squared
Frobenius norm (``sum S_r^2 >= e * sum S^2``). A layer is left as it is when the factorization would not have
fewer parameters (``r*(in*k*k + out) >= out*in*k*k``), or when it is a grouped/depthwise conv; the notes say so.
The SVD is computed in float64.
"""

from __future__ import annotations

import logging

import torch
from torch import Tensor, nn

from nas.compress._util import check_fraction, set_submodule
from nas.compress.registry import CompressedModel, register_method

log = logging.getLogger(__name__)

_CONVS = (nn.Conv1d, nn.Conv2d, nn.Conv3d)
#: Relative slack in the energy test, so ``energy=1.0`` stops at the numerical rank (float32 weights).
ENERGY_SLACK = 1e-9


def lowrank_params(in_features: int, out_features: int, rank: int, *, kernel: int = 1, bias: bool = True) -> int:
    """Parameters of a rank-``rank`` factorization of a layer ``in -> out`` with ``kernel`` = prod(kernel size)."""
    return rank * in_features * kernel + rank * out_features + (out_features if bias else 0)


def choose_rank(s: Tensor, *, rank: int | None, energy: float | None) -> int:
    """The rank to keep for singular values ``s`` (descending): ``rank`` (capped at ``len(s)``) or by ``energy``."""
    if rank is not None:
        return min(rank, len(s))
    assert energy is not None
    sq = s.double() ** 2
    cum = torch.cumsum(sq, 0)
    need = energy * float(cum[-1]) * (1.0 - ENERGY_SLACK)
    return min(int(torch.searchsorted(cum, torch.tensor(need, dtype=cum.dtype)).item()) + 1, len(s))


def _factors(w2d: Tensor, r: int) -> tuple[Tensor, Tensor]:
    """``(A, B)`` with ``B @ A`` the best rank-``r`` approximation of ``w2d`` (A: r x in, B: out x r)."""
    u, s, vh = torch.linalg.svd(w2d.double(), full_matrices=False)
    root = s[:r].sqrt()
    return (root[:, None] * vh[:r]).to(w2d.dtype), (u[:, :r] * root).to(w2d.dtype)


def _factor_linear(m: nn.Linear, r: int) -> nn.Sequential:
    a, b = _factors(m.weight.detach(), r)
    first = nn.Linear(m.in_features, r, bias=False, device=a.device, dtype=a.dtype)
    second = nn.Linear(r, m.out_features, bias=m.bias is not None, device=a.device, dtype=a.dtype)
    first.weight.data.copy_(a)
    second.weight.data.copy_(b)
    if m.bias is not None:
        second.bias.data.copy_(m.bias.detach())
    return nn.Sequential(first, second)


def _factor_conv(m: nn.Module, r: int) -> nn.Sequential:
    w = m.weight.detach()
    a, b = _factors(w.flatten(1), r)
    cls = type(m)
    first = cls(m.in_channels, r, m.kernel_size, m.stride, m.padding, m.dilation, bias=False,
                padding_mode=m.padding_mode, device=w.device, dtype=w.dtype)
    second = cls(r, m.out_channels, 1, bias=m.bias is not None, device=w.device, dtype=w.dtype)
    first.weight.data.copy_(a.reshape(r, *w.shape[1:]))
    second.weight.data.copy_(b.reshape(m.out_channels, r, *([1] * (w.dim() - 2))))
    if m.bias is not None:
        second.bias.data.copy_(m.bias.detach())
    return nn.Sequential(first, second)


@register_method("lowrank")
def lowrank(model: nn.Module, *, rank: int | None = None, energy: float | None = None) -> CompressedModel:
    """Factorize every Linear and (``groups == 1``) Conv layer at ``rank`` or at the ``energy`` fraction
    (exactly one of them), where that reduces its parameter count. See the module docstring."""
    if (rank is None) == (energy is None):
        raise ValueError("lowrank: give exactly one of rank= (an int >= 1) or energy= (a fraction in (0, 1])")
    if rank is not None and (isinstance(rank, bool) or not isinstance(rank, int) or rank < 1):
        raise ValueError(f"lowrank: rank must be an int >= 1, got {rank!r}")
    if energy is not None:
        energy = check_fraction(energy, "energy", "lowrank", closed_high=True)
    layers: list[dict[str, object]] = []
    skipped: list[str] = []
    targets = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Linear, *_CONVS))]
    with torch.no_grad():
        for name, m in targets:
            if isinstance(m, _CONVS) and m.groups != 1:
                skipped.append(f"{name}: grouped conv (groups={m.groups}) not factorized")
                continue
            w = m.weight.detach()
            c_out, fan_in = w.shape[0], w[0].numel()
            s = torch.linalg.svdvals(w.flatten(1).double())
            r = choose_rank(s, rank=rank, energy=energy)
            if r * (fan_in + c_out) >= c_out * fan_in:
                skipped.append(f"{name}: rank {r} would not reduce its {c_out * fan_in} weights; kept dense")
                continue
            kept = float((s[:r] ** 2).sum() / (s**2).sum())
            new = _factor_linear(m, r) if isinstance(m, nn.Linear) else _factor_conv(m, r)
            set_submodule(model, name, new)
            layers.append({"layer": name, "rank": r, "full_rank": len(s), "energy": kept,
                           "params_before": sum(p.numel() for p in m.parameters()),
                           "params_after": sum(p.numel() for p in new.parameters())})
    how = f"rank {rank}" if rank is not None else f"energy {energy:g}"
    notes = [f"low-rank (truncated SVD) factorization at {how}: each factored layer becomes two smaller layers",
             *skipped]
    if not layers:
        log.warning("lowrank: no layer of %s was factorized at %s", type(model).__name__, how)
        notes.append("no layer was factorized: none would have fewer parameters")
    log.debug("lowrank: factorized %d layers, kept %d", len(layers), len(skipped))
    return CompressedModel(
        model=model, method="lowrank", settings={"rank": rank, "energy": energy, "layers": layers}, notes=notes,
    )

