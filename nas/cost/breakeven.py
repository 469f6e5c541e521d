"""Break-even: after how many inferences does a cheaper Pareto model repay the whole search?

For each Pareto model cheaper than a reference model (by default the most accurate one, the model you would have
deployed without caring about cost), each inference saves ``reference FLOPs - model FLOPs``. The search paid
``search_cost_flops`` (its training FLOPs: :attr:`nas.cost.ledger.SearchBill.train_flops`), so it is repaid after::

    inferences_to_repay_flops = search_cost_flops / (saved FLOPs per inference)

and, in energy, after ``search_energy_kwh / (saved FLOPs per inference × energy_per_flop_kwh)``, where
``energy_per_flop_kwh`` is the energy of one FLOP where the model serves (:func:`energy_per_flop_from_bill` gives
what the search's own trials achieved on its hardware). The energy figure also repays the machinery, which the
FLOP figure does not count. The accuracy given up is ``reference accuracy - model accuracy`` (fraction).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from nas.cost.ledger import SearchBill


@dataclass(frozen=True)
class BreakEvenRow:
    """One Pareto model against the reference. ``*_mflops_per_inference``: forward MFLOPs per sample.
    ``inferences_to_repay_flops`` / ``_energy`` are ``None`` when the model saves nothing (``reason`` says why)
    or no energy figure was given."""

    trial: Any
    val_accuracy: float
    mflops_per_inference: float
    reference_trial: Any
    reference_val_accuracy: float
    reference_mflops_per_inference: float
    saved_mflops_per_inference: float
    accuracy_given_up: float
    inferences_to_repay_flops: float | None
    inferences_to_repay_energy: float | None
    saved_kwh_per_million_inferences: float | None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def energy_per_flop_from_bill(bill: SearchBill) -> float | None:
    """kWh per FLOP the search's trials achieved: trial energy / training FLOPs (``None`` without FLOPs).

    Training FLOPs ran on the search's hardware at its small-batch efficiency; a serving device can differ by
    orders of magnitude, so pass its own figure when known."""
    return bill.trial_energy_kwh / bill.train_flops if bill.train_flops > 0 else None


def _pick_reference(rows: Sequence[Mapping[str, Any]], reference: Mapping[str, Any] | int | str | None,
                    all_rows: Sequence[Mapping[str, Any]], accuracy_key: str) -> Mapping[str, Any]:
    if isinstance(reference, Mapping):
        return reference
    if reference is None:
        return max(rows, key=lambda r: (float(r[accuracy_key]), -float(r.get("mflops", 0.0))))
    for r in [*rows, *all_rows]:
        if str(r.get("trial")) == str(reference):
            return r
    raise ValueError(f"break_even: no trial {reference!r} among the rows; name a trial number from the search")


def break_even(
    pareto_rows: Sequence[Mapping[str, Any]],
    search_cost_flops: float,
    search_energy_kwh: float | None = None,
    reference: Mapping[str, Any] | int | str | None = None,
    energy_per_flop_kwh: float | None = None,
    *,
    all_rows: Sequence[Mapping[str, Any]] = (),
    accuracy_key: str = "val_accuracy",
    flops_key: str = "mflops",
) -> list[BreakEvenRow]:
    """The break-even of every Pareto row (trial rows with ``trial``, ``accuracy_key`` as a fraction and
    ``flops_key`` in forward MFLOPs per sample), cheapest first.

    ``reference``: a row, a trial number (looked up in ``pareto_rows`` then ``all_rows``), or ``None`` for the most
    accurate Pareto row. ``search_cost_flops``: FLOPs the search spent; ``search_energy_kwh`` its energy and
    ``energy_per_flop_kwh`` the serving energy per FLOP (both needed for the energy column).
    """
    if not pareto_rows:
        return []
    if not (search_cost_flops >= 0 and math.isfinite(search_cost_flops)):
        raise ValueError(f"break_even: search_cost_flops must be finite and >= 0, got {search_cost_flops!r}")
    ref = _pick_reference(pareto_rows, reference, all_rows, accuracy_key)
    ref_mflops, ref_acc = float(ref[flops_key]), float(ref[accuracy_key])
    energy = ((search_energy_kwh, energy_per_flop_kwh)
              if search_energy_kwh is not None and energy_per_flop_kwh is not None and energy_per_flop_kwh > 0
              else None)
    out = []
    for row in sorted(pareto_rows, key=lambda r: float(r[flops_key])):
        mflops, acc = float(row[flops_key]), float(row[accuracy_key])
        saved = ref_mflops - mflops
        flops_n = energy_n = kwh_per_m = None
        reason = ""
        if str(row.get("trial")) == str(ref.get("trial")):
            reason = "the reference"
        elif saved <= 0:
            reason = f"not cheaper than the reference ({mflops:.4g} >= {ref_mflops:.4g} MFLOPs)"
        else:
            flops_n = search_cost_flops / (saved * 1e6)
            if energy is not None:
                search_kwh, kwh_per_flop = energy
                kwh_per_m = saved * 1e6 * kwh_per_flop * 1e6
                energy_n = search_kwh / (saved * 1e6 * kwh_per_flop)
            else:
                reason = "no energy per FLOP given: FLOPs only"
        out.append(BreakEvenRow(
            trial=row.get("trial"), val_accuracy=acc, mflops_per_inference=mflops, reference_trial=ref.get("trial"),
            reference_val_accuracy=ref_acc, reference_mflops_per_inference=ref_mflops,
            saved_mflops_per_inference=saved, accuracy_given_up=ref_acc - acc, inferences_to_repay_flops=flops_n,
            inferences_to_repay_energy=energy_n, saved_kwh_per_million_inferences=kwh_per_m, reason=reason))
    return out


__all__ = ["BreakEvenRow", "break_even", "energy_per_flop_from_bill"]
