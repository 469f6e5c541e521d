"""Search on a trained supernet: the controller proposes, subnets are scored with inherited weights, no training.

The controller (its Optuna sampler, hard constraints from the real profiler) proposes ``batch`` feasible
architectures at a time; each is scored by :func:`nas.oneshot.train.score_subnet` (BatchNorm recalibrated, then
validation accuracy), and the batch is told back. Infeasible proposals are told by the controller itself and
never scored. The result is a table (one row per scored architecture) and the finalists to train stand-alone.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nas.config.objectives import sign
from nas.data import Splits
from nas.oneshot.supernet import Supernet, arch_key
from nas.oneshot.train import calibration_batches, score_subnet
from nas.pareto import front_order
from nas.search.controller.core import Controller


@dataclass
class ScoredSubnet:
    """One architecture scored on the supernet: ``metrics`` holds the cost objectives (profiler) and the accuracy
    objective (supernet accuracy, a fraction); ``mflops`` forward MFLOPs per sample; ``error`` when unbuildable."""

    number: int
    params: dict[str, Any]
    metrics: dict[str, float] = field(default_factory=dict)
    mflops: float = 0.0
    n_params: int = 0
    error: str = ""


@dataclass
class ScoringResult:
    rows: list[ScoredSubnet]
    seconds: float
    forward_flops: float  # FLOPs of every forward pass the scoring ran (calibration + validation)


def score_subnets(controller: Controller, supernet: Supernet, splits: Splits, *, subnets: int, batch: int,
                  calibration: int, calibration_batch_size: int, seed: int = 0, device: str = "cpu") -> ScoringResult:
    """Propose and score ``subnets`` architectures, ``batch`` at a time (see the module docstring). The same
    architecture proposed twice is scored once. Raises what the controller raises when no feasible candidate is
    found (``NoFeasibleCandidateError``)."""
    acc = controller.accuracy_name
    if acc is None:
        raise ValueError("a one-shot search needs exactly one maximized accuracy objective")
    cal = calibration_batches(splits, batches=calibration, batch_size=calibration_batch_size, seed=seed)
    samples = sum(len(b) for b in cal) + len(splits.val)
    t0, rows, cache, flops = time.perf_counter(), [], {}, 0.0
    while len(rows) < subnets:
        cands = [controller.propose() for _ in range(min(batch, subnets - len(rows)))]
        for cand in cands:
            if cand.error or cand.profile is None:  # already told to Optuna as failed
                rows.append(ScoredSubnet(cand.number, cand.params, error=cand.error))
                continue
            key = arch_key(cand.params)
            if key not in cache:
                cache[key] = score_subnet(supernet, cand.params, splits, cal, device=device)
                flops += cand.profile.mflops * 1e6 * samples
            metrics = {**controller.costs(cand.profile), acc: cache[key]}
            controller.tell(cand.number, metrics)
            rows.append(ScoredSubnet(cand.number, cand.params, metrics, cand.profile.mflops, cand.profile.params))
    return ScoringResult(rows, time.perf_counter() - t0, flops)


def pick_finalists(rows: Sequence[ScoredSubnet], objectives: Sequence[tuple[str, str]], *, top_k: int,
                   controls: int, seed: int = 0) -> tuple[list[ScoredSubnet], list[ScoredSubnet]]:
    """(top, controls): the ``top_k`` best distinct scored architectures by non-dominated order then crowding
    (the supernet's front first, its extremes first), and ``controls`` random others (seeded)."""
    distinct: dict[str, ScoredSubnet] = {}
    for r in rows:
        if not r.error:
            distinct.setdefault(arch_key(r.params), r)
    pool = list(distinct.values())
    if not pool:
        return [], []
    losses = np.array([[sign(d) * r.metrics[k] for k, d in objectives] for r in pool])  # type: ignore[arg-type]
    ranked = front_order(losses)
    top = [pool[i] for i in ranked[:top_k]]
    rest = [pool[i] for i in ranked[top_k:]]
    return top, random.Random(seed).sample(rest, min(controls, len(rest)))


def table_csv(rows: Sequence[ScoredSubnet], objectives: Sequence[tuple[str, str]],
              trained: dict[str, tuple[str, float]] | None = None) -> str:
    """The scored subnets as CSV: number, objectives (accuracy = supernet accuracy), mflops, params, error, role and
    stand-alone accuracy for the trained ones (``trained``: arch key -> (role, accuracy)), params as JSON."""
    trained = trained or {}
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(["number", *[k for k, _ in objectives], "mflops", "params", "error", "role", "standalone_val_accuracy",
                "params_json"])
    for r in rows:
        role, standalone = trained.get(arch_key(r.params), ("", math.nan))
        w.writerow([r.number, *[r.metrics.get(k, "") for k, _ in objectives], r.mflops, r.n_params, r.error, role,
                    "" if math.isnan(standalone) else standalone, json.dumps(r.params, sort_keys=True)])
    return buf.getvalue()
