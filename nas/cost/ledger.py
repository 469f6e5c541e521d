"""The bill of a search: compute, time by part of the machinery, energy, CO2 and money, per trial and in total.

Everything here is plain data computed from what the search measured (trial records, driver timings, an energy
reading); nothing is guessed except what :class:`nas.cost.energy.EnergyConfig` says it estimates.

Time accounting
---------------
A search holds ``workers`` trial slots (each ``resources.cpu`` cores and ``resources.gpu`` GPU) for ``wall_s``
seconds: its **capacity** is ``wall_s × workers`` slot-seconds. Each slot-second is either

* **trial compute**: ``trial_seconds`` that each trial measured inside its worker (build, train, evaluate; the
  record's span ``end_time - start_time`` for a failed trial, which has no such metric), or
* **machinery**: everything else, ``machinery_s = capacity - trial compute``.

Machinery is broken down by part (:data:`PARTS`):

* *serial* driver parts, measured by the driver (``overhead_s``: sampler, profiling, proxies, Ray start,
  dispatch, callbacks, model logging). One driver second counts as one machinery second. The parts must be
  disjoint: pass ``propose_s`` net of the sampler and profiling time it contains.
* ``checkpoint``: trial checkpoints written in the workers, from each trial's ``checkpoint_s`` metric (present
  only when the trainable measures it).
* ``worker``: the rest of each trial's span outside its compute (actor reuse, data, result reporting, checkpoint
  upload), from the records' timestamps.
* ``unattributed``: the remainder, ``machinery_s`` minus the measured parts, never negative: slots idle while
  Ray schedules and dispatches, while the driver works (all slots but one, when ``workers > 1``), or in setup
  and teardown beyond the measured parts. :attr:`SearchBill.attributed_fraction` says how much of the machinery
  the measured parts explain.

*Concurrent* parts (``tracking``: MLflow logging runs on a writer thread while trials run) are reported in
:attr:`SearchBill.concurrent_by_part_s` but not added: they overlap trial compute.

:func:`check_accounting` returns ``|trial + Σ parts + unattributed - capacity| / capacity``. The remainder
closes the identity whenever the measured parts fit, so a non-zero value means they do not: parts measured twice
(overlapping), trial times longer than the slots could hold, or a wrong ``wall_s`` or ``workers``.

Energy
------
Trial energy is estimated from the trial's device-seconds (``trial_s × cores`` and ``trial_s × GPU fraction``)
unless a whole-search reading was measured; then the measured total is shared among trials and machinery in
proportion to device-seconds (``energy_apportioned``). Energies are facility energy: device energy × PUE. CO2 is
energy × grid intensity; money is device-hours held × price, independent of energy.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Protocol

from nas.cost.energy import JOULES_PER_KWH, EnergyConfig, EnergyReading
from nas.training.records import TrialRecord

PREFIX = "nas_cost/"
"""The one reserved metric prefix of everything the ledger logs."""

CARD_SCHEMA = "nas.search_card/1"

PartKind = Literal["serial", "concurrent", "worker", "remainder"]


@dataclass(frozen=True)
class Part:
    kind: PartKind
    description: str


PARTS: dict[str, Part] = {
    "ray_init": Part("serial", "starting or joining the Ray cluster"),
    "sampler": Part("serial", "the Optuna sampler choosing architectures (reference point and feasibility probes included)"),
    "profile": Part("serial", "profiling candidates: FLOPs, parameters, latency, memory"),
    "proxies": Part("serial", "zero-cost proxy scores of candidates"),
    "propose": Part("serial", "Tune searcher dispatching proposals, sampler and profiling excluded"),
    "callbacks": Part("serial", "Tune callbacks: recording results, telling Optuna, updating the front"),
    "models": Part("serial", "logging and registering the Pareto models"),
    "tracking": Part("concurrent", "MLflow logging on the writer thread, overlapping trials"),
    "checkpoint": Part("worker", "writing trial checkpoints in the workers (the trials' checkpoint_s metric)"),
    "worker": Part("worker", "inside trial spans, outside trial compute and checkpoints: actor reuse, data, "
                             "reporting (from record timestamps)"),
    "unattributed": Part("remainder", "slots idle for reasons not measured: Ray scheduling and dispatch, waiting "
                                      "on the driver, setup and teardown"),
}
"""Known parts of the machinery. An ``overhead_s`` key not listed here (``<name>_s``) is a serial part."""

IGNORED_OVERHEAD_KEYS = frozenset({"total_s"})
LEDGER_PARTS = frozenset(k for k, p in PARTS.items() if p.kind in ("worker", "remainder"))


class ResourcesLike(Protocol):
    """What one trial holds (``nas.config.experiment.Resources``): CPU cores and a GPU fraction."""

    cpu: float
    gpu: float


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) else None


def _last(record: TrialRecord, key: str) -> float:
    """A final metric, else its last per-epoch value (a failed or stopped trial), else 0."""
    v = _num(record.metrics.get(key))
    if v is not None:
        return v
    for h in reversed(record.history):
        v = _num(h.get(key))
        if v is not None:
            return v
    return 0.0


# -- per trial -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrialBill:
    """What one trial cost.

    forward_mflops: forward MFLOPs per sample. train_flops: training FLOPs actually spent (3 × forward × samples
    seen, early stops and failures included: the last epoch reported). trial_s: compute seconds (see the module
    docstring); span_s: driver-observed start to end, s; checkpoint_s: checkpoint writing the trial measured, s;
    worker_s: the rest of the span outside compute, s. cpu_core_s and gpu_s:
    core-seconds and whole-GPU-seconds held for the compute; device_s their sum. energy_kwh: facility energy,
    ``energy_method`` how it was obtained (``energy_apportioned`` when a measured search total was shared by
    device-seconds). co2_g: grams; cost: money in ``currency``.
    """

    trial: int
    status: str
    forward_mflops: float
    train_flops: float
    samples_seen: float
    trial_s: float
    span_s: float
    checkpoint_s: float
    worker_s: float
    cpu_core_s: float
    gpu_s: float
    device_s: float
    energy_kwh: float
    energy_method: str
    energy_apportioned: bool
    co2_g: float
    cost: float
    currency: str

    def as_metrics(self, prefix: str = PREFIX) -> dict[str, float]:
        """Metrics for the trial's child run; every key is ``prefix`` + a name ending in its unit."""
        m = {"forward_mflops": self.forward_mflops, "train_tflops": self.train_flops / 1e12,
             "samples_seen_count": self.samples_seen, "trial_s": self.trial_s, "span_s": self.span_s,
             "checkpoint_s": self.checkpoint_s, "worker_s": self.worker_s, "device_hours": self.device_s / 3600, "cpu_core_hours": self.cpu_core_s / 3600,
             "gpu_hours": self.gpu_s / 3600, "energy_kwh": self.energy_kwh, "co2_g": self.co2_g,
             f"cost_{self.currency}": self.cost}
        return {prefix + k: float(v) for k, v in m.items()}

    def as_tags(self, prefix: str = PREFIX) -> dict[str, str]:
        """String facts for the child run's tags (MLflow metrics are numbers)."""
        return {prefix + "energy_method": self.energy_method + (" (apportioned)" if self.energy_apportioned else "")}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _trial_times(record: TrialRecord) -> tuple[float, float]:
    span = max(0.0, record.end_time - record.start_time) if record.end_time > 0 else 0.0
    measured = _num(record.metrics.get("trial_seconds"))
    return (measured if measured is not None else span), span


def bill_trial(record: TrialRecord, resources: ResourcesLike, energy_config: EnergyConfig | None = None) -> TrialBill:
    """The bill of one trial, energy estimated from its device-seconds (see :func:`bill_search` for measured)."""
    cfg = energy_config or EnergyConfig()
    trial_s, span_s = _trial_times(record)
    checkpoint_s = max(0.0, _num(record.metrics.get("checkpoint_s")) or 0.0)
    cpu_s, gpu_s = trial_s * float(resources.cpu), trial_s * float(resources.gpu)
    cpu_j, gpu_j = cfg.estimate_joules(cpu_s, gpu_s)
    kwh = (cpu_j + gpu_j) * cfg.pue / JOULES_PER_KWH
    mflops = _num(record.metrics.get("mflops"))
    if mflops is None:
        mflops = _num(record.profile.get("mflops")) or 0.0
    return TrialBill(
        trial=record.number, status=record.status, forward_mflops=mflops, train_flops=_last(record, "train_flops"),
        samples_seen=_last(record, "samples_seen"), trial_s=trial_s, span_s=span_s,
        checkpoint_s=checkpoint_s, worker_s=max(0.0, span_s - trial_s - checkpoint_s), cpu_core_s=cpu_s, gpu_s=gpu_s, device_s=cpu_s + gpu_s,
        energy_kwh=kwh, energy_method="estimated", energy_apportioned=False, co2_g=cfg.co2_g(kwh),
        cost=cfg.cost(cpu_s / 3600, gpu_s / 3600), currency=cfg.currency,
    )


def bill_if_missing(record: TrialRecord, resources: ResourcesLike, energy_config: EnergyConfig | None = None) -> None:
    """Add :func:`bill_trial`'s ``nas_cost/*`` metrics to ``record`` unless it has them: a record the driver stored
    before billing it (older versions did), rebuilt into a child run by a resume or the doctor."""
    if f"{PREFIX}train_tflops" not in record.metrics:
        record.metrics.update(bill_trial(record, resources, energy_config).as_metrics())


def search_compute_record(number: int, what: str, flops: float, seconds: float, start_time: float,
                          end_time: float) -> TrialRecord:
    """Search compute that trains no candidate (a one-shot supernet's training, scoring subnets with inherited
    weights), as a record :func:`bill_search` bills with the trials: ``number`` < 0, ``flops`` in its
    ``train_flops``, ``seconds`` of compute, ``what`` in its reason."""
    if number >= 0:
        raise ValueError(f"search_compute_record: number must be < 0 (trial numbers are >= 0), got {number}")
    return TrialRecord(number=number, params={}, training={}, profile={}, status="complete", reason=what,
                       metrics={"train_flops": float(flops), "trial_seconds": float(seconds)},
                       start_time=start_time, end_time=end_time)


# -- per search ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchBill:
    """What a search cost; units in the names (s = seconds, slot-seconds for the time identity).

    capacity_s = wall_s × workers; machinery_s = capacity_s - trial_s (>= 0). machinery_by_part_s holds the
    measured serial parts, ``worker`` and ``unattributed`` (they sum to machinery_s when the accounting holds);
    concurrent_by_part_s the overlapping ones. attributed_fraction: measured parts / machinery_s.
    overhead_ratio: machinery_s / trial_s. train_flops: Σ trials (early stops and failures included);
    flops_saved_by_rejections: training FLOPs that constraint checks avoided (estimated before training).
    cpu_core_hours and gpu_hours: held for the whole capacity; device_hours their sum. energy_kwh = trial + machinery
    (facility energy); energy_method names the source (``measured`` energy is whole-machine). trials: per-trial
    bills. energy_config: the assumptions used.
    """

    n_trials: int
    n_failed: int
    wall_s: float
    workers: int
    cpu_per_trial: float
    gpu_per_trial: float
    capacity_s: float
    trial_s: float
    machinery_s: float
    machinery_by_part_s: dict[str, float]
    concurrent_by_part_s: dict[str, float]
    attributed_fraction: float
    overhead_ratio: float
    train_flops: float
    flops_saved_by_rejections: float
    cpu_core_hours: float
    gpu_hours: float
    device_hours: float
    energy_kwh: float
    trial_energy_kwh: float
    machinery_energy_kwh: float
    energy_method: str
    energy_details: dict[str, str]
    co2_g: float
    cost: float
    currency: str
    energy_config: dict[str, Any]
    trials: list[TrialBill] = field(default_factory=list)
    idle_by_phase_s: dict[str, float] = field(default_factory=dict)

    def as_metrics(self, prefix: str = PREFIX) -> dict[str, float]:
        """Metrics for the parent run; every key is ``prefix`` + a name with its unit (parts as ``.../<part>``)."""
        m: dict[str, float] = {
            "wall_s": self.wall_s, "workers_count": self.workers, "capacity_slot_s": self.capacity_s,
            "trial_s": self.trial_s, "machinery_s": self.machinery_s, "overhead_ratio": self.overhead_ratio,
            "attributed_fraction": self.attributed_fraction, "accounting_residual_fraction": check_accounting(self),
            "trials_count": self.n_trials, "failed_trials_count": self.n_failed,
            "train_tflops": self.train_flops / 1e12, "rejections_saved_tflops": self.flops_saved_by_rejections / 1e12,
            "device_hours": self.device_hours, "cpu_core_hours": self.cpu_core_hours, "gpu_hours": self.gpu_hours,
            "energy_kwh": self.energy_kwh, "energy_kwh/trials": self.trial_energy_kwh,
            "energy_kwh/machinery": self.machinery_energy_kwh, "co2_g": self.co2_g, f"cost_{self.currency}": self.cost,
        }
        m.update({f"machinery_s/{k}": v for k, v in self.machinery_by_part_s.items()})
        m.update({f"concurrent_s/{k}": v for k, v in self.concurrent_by_part_s.items()})
        m.update({f"idle_s/{k}": v for k, v in self.idle_by_phase_s.items()})
        return {prefix + k: float(v) for k, v in m.items()}

    def as_tags(self, prefix: str = PREFIX) -> dict[str, str]:
        """String facts for the parent run's tags: the energy method and what was read."""
        return {prefix + "energy_method": self.energy_method,
                prefix + "energy_details": json.dumps(self.energy_details, sort_keys=True)}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> SearchBill:
        """Inverse of :meth:`to_dict` (``SearchBill.from_dict(b.to_dict()) == b``)."""
        return cls(**{**d, "trials": [TrialBill(**t) for t in d.get("trials", [])]})


def _machinery_parts(overhead_s: Mapping[str, float], concurrent: Sequence[str]) -> tuple[dict[str, float], dict[str, float]]:
    serial: dict[str, float] = {}
    overlapping: dict[str, float] = {}
    for key, value in overhead_s.items():
        if key in IGNORED_OVERHEAD_KEYS:
            continue
        name = key[:-2] if key.endswith("_s") else key
        if name in LEDGER_PARTS:
            raise ValueError(f"bill_search: overhead_s key {key!r} is computed by the ledger from the trial records; "
                             "do not pass it (driver-side model logging is models_s)")
        v = _num(value)
        if v is None or v < 0:
            raise ValueError(f"bill_search: overhead_s[{key!r}] must be seconds >= 0, got {value!r}")
        (overlapping if name in concurrent else serial)[name] = v
    return serial, overlapping


def bill_search(
    records: Sequence[TrialRecord],
    overhead_s: Mapping[str, float],
    wall_s: float,
    workers: int,
    resources: ResourcesLike,
    energy_config: EnergyConfig | None = None,
    measured_energy: EnergyReading | None = None,
    *,
    flops_saved_by_rejections: float = 0.0,
    concurrent_parts: Sequence[str] = ("tracking",),
    started_at: float | None = None,
) -> SearchBill:
    """The bill of a whole search (see the module docstring for the accounting).

    ``records``: every trial (complete, failed, interrupted). ``overhead_s``: driver-measured machinery seconds
    by part, keys ``<part>_s`` (``SearchResult.overhead_s``; ``total_s`` is ignored), disjoint. ``wall_s``: the
    search's wall time, s; ``workers``: trial slots held for it (see :func:`effective_workers`). ``resources``:
    what one slot holds. ``measured_energy``: an :class:`~nas.cost.energy.EnergyReading` of the whole search (an
    :class:`~nas.cost.energy.EnergyMeter` around it); a reading with nothing measured (method ``"estimated"``) is
    ignored and energy is estimated from device-seconds held.
    ``concurrent_parts``: part names that overlap trials (reported, not added). ``started_at``: ``time.time()``
    when the search started (the clock of the records' timestamps); with it, :attr:`SearchBill.idle_by_phase_s`
    says where the slots sat idle, outside every trial's span: ``before_first_trial``, ``between_trials`` and
    ``after_last_trial`` (slot-seconds; they contain the driver's serial parts and the unattributed remainder).
    """
    if not (wall_s > 0 and math.isfinite(wall_s)):
        raise ValueError(f"bill_search: wall_s must be > 0 seconds, got {wall_s!r}")
    if int(workers) != workers or workers < 1:
        raise ValueError(f"bill_search: workers must be an integer >= 1, got {workers!r}")
    cfg = energy_config or EnergyConfig()
    if measured_energy is not None and not measured_energy.measured:
        measured_energy = None  # a meter that found no readable hardware: the ledger's own estimate is the same idea
    bills = [bill_trial(r, resources, cfg) for r in sorted(records, key=lambda r: r.number)]
    cpu, gpu = float(resources.cpu), float(resources.gpu)
    capacity = float(wall_s) * int(workers)
    trial_s = sum(b.trial_s for b in bills)
    machinery = max(0.0, capacity - trial_s)
    serial, overlapping = _machinery_parts(overhead_s, concurrent_parts)
    parts = dict(serial)
    if any("checkpoint_s" in r.metrics for r in records):
        parts["checkpoint"] = sum(b.checkpoint_s for b in bills)
    parts["worker"] = sum(b.worker_s for b in bills)
    measured = sum(parts.values())
    parts["unattributed"] = max(0.0, machinery - measured)

    cpu_core_s, gpu_s = capacity * cpu, capacity * gpu
    est_cpu_j, est_gpu_j = cfg.estimate_joules(cpu_core_s, gpu_s)
    trial_kwh = sum(b.energy_kwh for b in bills)
    if measured_energy is None:
        total_kwh = (est_cpu_j + est_gpu_j) * cfg.pue / JOULES_PER_KWH
        method, details = "estimated", {"cpu": f"{cpu:g} core(s) x {cfg.cpu_watts_per_core:g} W per slot"}
        if gpu > 0:
            details["gpu"] = f"{gpu:g} GPU x {cfg.gpu_watts:g} W per slot"
    else:
        total_kwh = measured_energy.kwh * cfg.pue
        method, details = measured_energy.method, dict(measured_energy.details)
        device_total = cpu_core_s + gpu_s
        share = total_kwh / device_total if device_total > 0 else 0.0
        bills = [_apportion(b, share * b.device_s, method, cfg) for b in bills]
        trial_kwh = sum(b.energy_kwh for b in bills)
    return SearchBill(
        n_trials=len(bills), n_failed=sum(b.status not in ("complete", "pruned") for b in bills), wall_s=float(wall_s),
        workers=int(workers), cpu_per_trial=cpu, gpu_per_trial=gpu, capacity_s=capacity, trial_s=trial_s,
        machinery_s=machinery, machinery_by_part_s=parts, concurrent_by_part_s=overlapping,
        attributed_fraction=min(1.0, measured / machinery) if machinery > 0 else 1.0,
        overhead_ratio=machinery / trial_s if trial_s > 0 else math.inf,
        train_flops=sum(b.train_flops for b in bills), flops_saved_by_rejections=float(flops_saved_by_rejections),
        cpu_core_hours=cpu_core_s / 3600, gpu_hours=gpu_s / 3600, device_hours=(cpu_core_s + gpu_s) / 3600,
        energy_kwh=total_kwh, trial_energy_kwh=trial_kwh, machinery_energy_kwh=max(0.0, total_kwh - trial_kwh),
        energy_method=method, energy_details=details, co2_g=cfg.co2_g(total_kwh),
        cost=cfg.cost(cpu_core_s / 3600, gpu_s / 3600), currency=cfg.currency, energy_config=cfg.to_dict(),
        trials=bills, idle_by_phase_s=_idle_by_phase(records, started_at, float(wall_s), int(workers)),
    )


def _idle_by_phase(records: Sequence[TrialRecord], started_at: float | None, wall_s: float,
                   workers: int) -> dict[str, float]:
    spans = [(r.start_time, r.end_time) for r in records if r.end_time > 0 and r.end_time >= r.start_time > 0]
    if started_at is None or not spans:
        return {}
    ended_at = started_at + wall_s
    before = workers * max(0.0, min(s for s, _ in spans) - started_at)
    after = workers * max(0.0, ended_at - max(e for _, e in spans))
    busy = sum(e - s for s, e in spans)
    return {"before_first_trial": before, "between_trials": max(0.0, wall_s * workers - busy - before - after),
            "after_last_trial": after}


def _apportion(bill: TrialBill, kwh: float, method: str, cfg: EnergyConfig) -> TrialBill:
    return TrialBill(**{**bill.to_dict(), "energy_kwh": kwh, "energy_method": method, "energy_apportioned": True,
                        "co2_g": cfg.co2_g(kwh)})


def check_accounting(bill: SearchBill) -> float:
    """``|trial_s + Σ machinery parts (unattributed included) - wall_s × workers| / (wall_s × workers)``.

    0 when the measured parts fit in the time the trials left (the remainder closes the identity); positive by
    the fraction of capacity by which trial time and measured parts overshoot it: double-counted parts, trial
    times longer than the slots held, or a wrong ``wall_s``/``workers``. The end-to-end acceptance test asserts
    it is below 0.05.
    """
    total = bill.trial_s + sum(bill.machinery_by_part_s.values())
    return abs(total - bill.capacity_s) / bill.capacity_s if bill.capacity_s > 0 else math.inf


def effective_workers(concurrency: int, trials: int, resources: ResourcesLike, cluster_cpus: float,
                      cluster_gpus: float = 0.0) -> int:
    """Trial slots a search held: ``min(concurrency, trials, what the cluster fits)`` (at least 1).

    A slot needs ``resources.cpu`` CPUs and ``resources.gpu`` GPUs of the cluster (``ray.cluster_resources()``).
    """
    fits = [concurrency, trials]
    if resources.cpu > 0:
        fits.append(int(cluster_cpus // resources.cpu))
    if resources.gpu > 0:
        fits.append(int(cluster_gpus // resources.gpu))
    return max(1, min(fits))


# -- the search card -----------------------------------------------------------------------------------------------


def _fmt(value: float, unit: str = "") -> str:
    return f"{value:.4g} {unit}".strip()


def search_card(bill: SearchBill, *, space_hash: str, seeds: Mapping[str, int], hardware: Mapping[str, Any],
                versions: Mapping[str, str], experiment: str | Mapping[str, Any]) -> tuple[str, str]:
    """The search card: ``(json_text, markdown_text)`` with the space hash, seeds, hardware, software versions and
    the totals. ``experiment`` is a name or a mapping (``Experiment.to_dict()``; its ``name`` titles the card).
    The JSON's ``bill`` is :meth:`SearchBill.to_dict` (:meth:`SearchBill.from_dict` reads it back); ``totals`` are
    the parent-run metrics without the prefix."""
    name = experiment if isinstance(experiment, str) else str(experiment.get("name", "search"))
    totals = {k[len(PREFIX):]: v for k, v in bill.as_metrics().items()}
    card = {"schema": CARD_SCHEMA, "experiment": experiment, "space_hash": space_hash, "seeds": dict(seeds),
            "hardware": dict(hardware), "versions": dict(versions), "energy_method": bill.energy_method,
            "totals": totals, "bill": bill.to_dict()}
    json_text = json.dumps(card, indent=2, sort_keys=True, default=str)
    return json_text, _card_markdown(bill, name, space_hash, seeds, hardware, versions)


def _card_markdown(bill: SearchBill, name: str, space_hash: str, seeds: Mapping[str, int],
                   hardware: Mapping[str, Any], versions: Mapping[str, str]) -> str:
    cfg = bill.energy_config
    cur = bill.currency.upper()
    lines = [f"# Search card: {name}", "",
             f"- space hash: `{space_hash}`",
             f"- seeds: {', '.join(f'{k}={v}' for k, v in seeds.items()) or 'none'}",
             f"- trials: {bill.n_trials} ({bill.n_failed} failed), {bill.workers} worker slot(s) of "
             f"{bill.cpu_per_trial:g} CPU core(s) and {bill.gpu_per_trial:g} GPU", "",
             "## Totals", "", "| quantity | value |", "| --- | --- |",
             f"| training compute | {_fmt(bill.train_flops, 'FLOPs')} |",
             f"| compute saved by rejecting candidates before training | {_fmt(bill.flops_saved_by_rejections, 'FLOPs')} |",
             f"| wall time | {_fmt(bill.wall_s, 's')} |",
             f"| trial compute time | {_fmt(bill.trial_s, 's')} |",
             f"| machinery time | {_fmt(bill.machinery_s, 's')} |",
             f"| overhead ratio (machinery / trial compute) | {_fmt(bill.overhead_ratio)} |",
             f"| device-hours held | {_fmt(bill.device_hours, 'h')} ({_fmt(bill.cpu_core_hours)} CPU core-h, "
             f"{_fmt(bill.gpu_hours)} GPU-h) |",
             f"| energy ({bill.energy_method}) | {_fmt(bill.energy_kwh, 'kWh')} (trials {_fmt(bill.trial_energy_kwh)}, "
             f"machinery {_fmt(bill.machinery_energy_kwh)}) |",
             f"| CO2 | {_fmt(bill.co2_g, 'g')} |",
             f"| cost | {_fmt(bill.cost, cur)} |", "",
             "## Where the slot time went", "",
             f"Capacity: {_fmt(bill.wall_s, 's')} wall x {bill.workers} slot(s) = {_fmt(bill.capacity_s, 'slot-s')}; "
             f"the measured parts explain {bill.attributed_fraction:.0%} of the machinery time; "
             f"accounting residual {check_accounting(bill):.2%}.", "",
             "| part | seconds | share of capacity | what |", "| --- | --- | --- | --- |",
             f"| trial compute | {_fmt(bill.trial_s)} | {bill.trial_s / bill.capacity_s:.1%} | training and evaluation in the workers |"]
    for part, sec in bill.machinery_by_part_s.items():
        what = PARTS[part].description if part in PARTS else "measured by the driver"
        lines.append(f"| {part} | {_fmt(sec)} | {sec / bill.capacity_s:.1%} | {what} |")
    for part, sec in bill.concurrent_by_part_s.items():
        what = PARTS[part].description if part in PARTS else "overlapping trials"
        lines.append(f"| {part} (concurrent, not added) | {_fmt(sec)} | - | {what} |")
    if bill.idle_by_phase_s:
        lines += ["", "Idle slot time by phase (outside every trial's span; contains the driver parts and the "
                  "unattributed remainder): " + ", ".join(f"{k.replace('_', ' ')} {_fmt(v, 's')}"
                                                          for k, v in bill.idle_by_phase_s.items()) + "."]
    lines += ["", "## Energy, CO2 and money", "",
              f"Energy method: **{bill.energy_method}**. "
              + "; ".join(f"{k}: {v}" for k, v in sorted(bill.energy_details.items())), "",
              f"Assumptions: {cfg['cpu_watts_per_core']:g} W per CPU core, {cfg['gpu_watts']:g} W per GPU (where not "
              f"measured), PUE {cfg['pue']:g}, grid {cfg['grid_g_co2_per_kwh']:g} g CO2/kWh, "
              f"{cfg['price_per_cpu_core_hour']:g} {cur} per CPU core-hour, {cfg['price_per_gpu_hour']:g} {cur} per "
              "GPU-hour.", "", "## Hardware", ""]
    lines += [f"- {k}: {v}" for k, v in hardware.items()]
    lines += ["", "## Software", ""]
    lines += [f"- {k}: {v}" for k, v in versions.items()]
    return "\n".join(lines) + "\n"


__all__ = ["PARTS", "PREFIX", "SearchBill", "TrialBill", "bill_search", "bill_trial", "check_accounting",
           "effective_workers", "search_card", "search_compute_record"]
