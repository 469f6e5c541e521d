"""nas's peers on an NB201-shaped table, billed as nas is (:mod:`benchmarks.peers.ledger`).

``PEERS`` maps a method name to ``run(ledger, seed, **knobs)``, which spends the ledger's budget:

- full fidelity (:mod:`.optuna_full`): ``random``, ``nsga2``, ``tpe`` (multivariate), ``gp`` (Optuna's GPSampler);
- multi-fidelity, model-free (:mod:`.sha`): ``sha``, successive halving with promotion;
- multi-fidelity (:mod:`.moasha`): ``moasha``, Syne Tune's MOASHA with its priority bug patched (optional
  dependency: ``pip install -e .[bench]``).

:func:`run_peer` runs one method for one seed and returns its ledger (trajectory, compute, repeats).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.peers import moasha, sha
from benchmarks.peers.ledger import Ledger, Point, true_hypervolume
from benchmarks.peers.optuna_full import runner
from benchmarks.peers.table import PeerTable

PEERS: dict[str, Callable[..., None]] = {
    "random": runner("random"), "nsga2": runner("nsga2"), "tpe": runner("tpe"), "gp": runner("gp"),
    "sha": sha.run, "moasha": moasha.run,
}

__all__ = ["PEERS", "Ledger", "PeerTable", "Point", "run_peer", "true_hypervolume"]


def run_peer(method: str, table: PeerTable, seed: int, *, reference: tuple[float, float], max_compute: float,
             repeats_paid: bool = False, **knobs: Any) -> Ledger:
    """One run of ``method`` on ``table`` with ``max_compute`` full-training equivalents; its ledger."""
    ledger = Ledger(table, reference, max_compute, repeats_paid=repeats_paid)
    PEERS[method](ledger, seed, **knobs)
    return ledger
