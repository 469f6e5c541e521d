"""Energy: measured where the hardware allows, estimated from configurable device power otherwise.

Sources, tried in this order and named in every reading's ``method``:

- ``"rapl"``: Intel/AMD RAPL counters under ``/sys/class/powercap`` (``intel-rapl:N/energy_uj``, microjoules). The
  package zones (``package-N``) and their ``dram`` subzones are summed (core/uncore subzones are part of the package
  and ``psys`` contains it, so neither is added again). Each counter wraps at ``max_energy_range_uj``; a decrease
  is read as one wrap. Counters can wrap in about 20 minutes at full load, so a running :class:`EnergyMeter` polls
  them (``poll_s``) and a long search never misses a wrap. Since Linux 5.10 ``energy_uj`` is readable by root only
  (CVE-2020-8694); an unreadable counter means "not available", never an error. RAPL measures whole sockets: every
  process on them is included.
- ``"nvml"``: NVIDIA GPUs through ``pynvml`` (the ``nvidia-ml-py`` package), imported only when a meter starts and
  GPUs are held. The total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, millijoules, Volta and later)
  is used where the GPU has one; otherwise power (``nvmlDeviceGetPowerUsage``, milliwatts) is sampled every
  ``gpu_poll_s`` and integrated (trapezoids). NVML measures whole GPUs: a GPU shared with other jobs counts theirs.
- ``"estimated"``: device power × time held, from :class:`EnergyConfig` (CPU watts per core × cores, GPU watts ×
  GPU fraction).

A reading keeps CPU and GPU apart, each with its own method, so a GPU box without readable RAPL reads
``"nvml+estimated"``. Readings are device energy; the facility overhead (PUE) is applied by the ledger.
"""

from __future__ import annotations

import importlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from nas.config.energy import EnergyConfig  # the `energy:` section; re-exported here

log = logging.getLogger(__name__)

Method = Literal["rapl", "nvml", "estimated"]
METHODS: tuple[Method, ...] = ("rapl", "nvml", "estimated")
JOULES_PER_KWH = 3.6e6
RAPL_ROOT = "/sys/class/powercap"


@dataclass(frozen=True)
class EnergyReading:
    """Device energy over ``seconds`` of wall time, CPU and GPU apart, each with how it was obtained.

    ``gpu_method`` is ``None`` when no GPU was held (``gpu_joules`` is then 0). ``details`` says which zones and
    devices were read, or why a source was unavailable.
    """

    seconds: float
    cpu_joules: float
    cpu_method: Method
    gpu_joules: float = 0.0
    gpu_method: Method | None = None
    details: dict[str, str] = field(default_factory=dict)

    @property
    def joules(self) -> float:
        """Device energy, J (no PUE)."""
        return self.cpu_joules + self.gpu_joules

    @property
    def kwh(self) -> float:
        """Device energy, kWh (no PUE)."""
        return self.joules / JOULES_PER_KWH

    @property
    def method(self) -> str:
        """``"rapl"``, ``"nvml"``, ``"estimated"``, or measured ones first joined by ``+`` (``"nvml+estimated"``)."""
        used = {self.cpu_method} | ({self.gpu_method} if self.gpu_method else set())
        return "+".join(m for m in METHODS if m in used)

    @property
    def measured(self) -> bool:
        """True when at least one part was measured."""
        return self.method != "estimated"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "method": self.method, "kwh": self.kwh}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EnergyReading:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})


# -- RAPL ----------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RaplZone:
    path: Path
    name: str
    max_range_uj: int


def _rapl_zones(root: Path) -> list[RaplZone]:
    """Package zones (top level, ``package-N``) and ``dram`` subzones, in path order."""
    out = []
    for d in sorted(root.glob("intel-rapl:*")):
        depth = d.name.count(":")
        try:
            name = (d / "name").read_text().strip()
            max_range = int((d / "max_energy_range_uj").read_text())
        except (OSError, ValueError):
            continue
        if (depth == 1 and name.startswith("package")) or (depth == 2 and name == "dram"):
            out.append(RaplZone(d, name, max_range))
    return out


def rapl_delta_uj(before: int, after: int, max_range_uj: int) -> int:
    """Energy between two reads of one counter, µJ; a decrease is one wrap at ``max_range_uj``."""
    return after - before if after >= before else after + max_range_uj - before


class RaplReader:
    """Reads RAPL zones under ``root``. ``available`` is False (``reason`` says why) when none can be read."""

    def __init__(self, root: str | Path = RAPL_ROOT) -> None:
        self.root = Path(root)
        self.zones: list[RaplZone] = []
        self.reason = ""
        if not self.root.is_dir():
            self.reason = f"{self.root} does not exist (no powercap driver, or a container/VM without it)"
            return
        zones = _rapl_zones(self.root)
        if not zones:
            self.reason = f"no RAPL package zones under {self.root}"
            return
        try:
            for z in zones:
                int((z.path / "energy_uj").read_text())
        except PermissionError:
            self.reason = f"{zones[0].path / 'energy_uj'} is not readable (root only since Linux 5.10)"
            return
        except (OSError, ValueError) as e:
            self.reason = f"cannot read {zones[0].path / 'energy_uj'}: {e}"
            return
        self.zones = zones

    @property
    def available(self) -> bool:
        return bool(self.zones)

    def read(self) -> list[int]:
        """Current counters, µJ, one per zone."""
        return [int((z.path / "energy_uj").read_text()) for z in self.zones]

    def delta_joules(self, before: Sequence[int], after: Sequence[int]) -> float:
        """Joules between two :meth:`read` results (at most one wrap per zone in between)."""
        return sum(rapl_delta_uj(b, a, z.max_range_uj) for z, b, a in zip(self.zones, before, after, strict=True)) / 1e6

    def describe(self) -> str:
        return ", ".join(f"{z.path.name} ({z.name})" for z in self.zones)


# -- NVML ----------------------------------------------------------------------------------------------------------


class NvmlLike(Protocol):
    """The part of ``pynvml`` used here (tests pass a fake)."""

    def nvmlInit(self) -> None: ...
    def nvmlShutdown(self) -> None: ...
    def nvmlDeviceGetCount(self) -> int: ...
    def nvmlDeviceGetHandleByIndex(self, index: int) -> Any: ...
    def nvmlDeviceGetTotalEnergyConsumption(self, handle: Any) -> int: ...
    def nvmlDeviceGetPowerUsage(self, handle: Any) -> int: ...


def load_nvml() -> tuple[NvmlLike | None, str]:
    """``pynvml`` initialized, or ``None`` and why not (not installed, no driver, no GPU)."""
    try:
        nvml: Any = importlib.import_module("pynvml")
    except ImportError:
        return None, "pynvml (pip install nvidia-ml-py) is not installed"
    try:
        nvml.nvmlInit()
        if nvml.nvmlDeviceGetCount() < 1:
            nvml.nvmlShutdown()
            return None, "NVML sees no GPU"
    except Exception as e:  # pynvml.NVMLError and friends: no driver, no device
        return None, f"NVML unavailable: {e}"
    return nvml, ""


class NvmlReader:
    """Energy of the GPUs ``indices`` (NVML order; default all): counter where every GPU has one, else sampled
    power (:meth:`sample` must then be called regularly; :class:`EnergyMeter` does)."""

    def __init__(self, nvml: NvmlLike, indices: Sequence[int] | None = None) -> None:
        self.nvml = nvml
        count = nvml.nvmlDeviceGetCount()
        self.indices = list(indices) if indices is not None else list(range(count))
        self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in self.indices]
        try:
            for h in self.handles:
                nvml.nvmlDeviceGetTotalEnergyConsumption(h)
            self.mode = "counter"
        except Exception:  # NVML_ERROR_NOT_SUPPORTED before Volta
            self.mode = "power"
        self._last: tuple[float, float] | None = None  # (time, watts) of the last power sample
        self._joules = 0.0

    def read_mj(self) -> list[int]:
        """Energy counters, mJ, one per GPU (counter mode)."""
        return [int(self.nvml.nvmlDeviceGetTotalEnergyConsumption(h)) for h in self.handles]

    def sample(self, now: float | None = None) -> None:
        """Power mode: take one power sample and integrate since the last (trapezoid)."""
        t = time.monotonic() if now is None else now
        watts = sum(self.nvml.nvmlDeviceGetPowerUsage(h) for h in self.handles) / 1e3
        if self._last is not None:
            t0, w0 = self._last
            self._joules += (t - t0) * (w0 + watts) / 2.0
        self._last = (t, watts)

    @property
    def sampled_joules(self) -> float:
        return self._joules

    def describe(self) -> str:
        return f"GPUs {self.indices} ({'energy counter' if self.mode == 'counter' else 'sampled power'})"


# -- the meter -----------------------------------------------------------------------------------------------------


class EnergyMeter:
    """Energy of a span of work holding ``cpu_cores`` CPU cores and ``gpu_fraction`` GPUs (both summed over
    workers). Use as a context manager (``meter.reading`` after the block) or ``start()`` / ``stop()``.

    The CPU part is RAPL when readable, else estimated; the GPU part (only when ``gpu_fraction > 0``) is NVML
    when ``pynvml`` loads, else estimated. While running, a daemon thread polls every ``poll_s`` seconds (RAPL
    wrap-around) or ``gpu_poll_s`` (NVML power sampling). ``nvml_loader`` and ``clock`` are for tests.
    """

    def __init__(self, config: EnergyConfig | None = None, *, cpu_cores: float, gpu_fraction: float = 0.0,
                 rapl_root: str | Path = RAPL_ROOT, gpu_indices: Sequence[int] | None = None, poll_s: float = 60.0,
                 gpu_poll_s: float = 1.0, nvml_loader: Callable[[], tuple[NvmlLike | None, str]] = load_nvml,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if cpu_cores < 0 or gpu_fraction < 0:
            raise ValueError(f"EnergyMeter: cpu_cores and gpu_fraction must be >= 0, got {cpu_cores}, {gpu_fraction}")
        self.config = config or EnergyConfig()
        self.cpu_cores, self.gpu_fraction = float(cpu_cores), float(gpu_fraction)
        self.rapl_root, self.gpu_indices = rapl_root, gpu_indices
        self.poll_s, self.gpu_poll_s = poll_s, gpu_poll_s
        self.nvml_loader, self.clock = nvml_loader, clock
        self.reading: EnergyReading | None = None
        self._rapl: RaplReader | None = None
        self._nvml: NvmlReader | None = None
        self._details: dict[str, str] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._t0: float | None = None

    def start(self) -> EnergyMeter:
        """Open the sources and take the first readings."""
        rapl = RaplReader(self.rapl_root)
        if rapl.available:
            self._rapl = rapl
            self._rapl_last = rapl.read()
            self._rapl_joules = 0.0
            self._details["cpu"] = f"RAPL {rapl.describe()} (whole sockets)"
        else:
            self._details["cpu"] = f"estimated: {self.cpu_cores:g} cores x {self.config.cpu_watts_per_core:g} W ({rapl.reason})"
        if self.gpu_fraction > 0:
            nvml, why = self.nvml_loader()
            if nvml is not None:
                self._nvml = NvmlReader(nvml, self.gpu_indices)
                self._details["gpu"] = f"NVML {self._nvml.describe()} (whole GPUs)"
                if self._nvml.mode == "counter":
                    self._nvml_start = self._nvml.read_mj()
                else:
                    self._nvml.sample(self.clock())
            else:
                self._details["gpu"] = (f"estimated: {self.gpu_fraction:g} GPU x {self.config.gpu_watts:g} W ({why})")
        self._t0 = self.clock()
        interval = self._interval()
        if interval is not None:
            self._thread = threading.Thread(target=self._poll_loop, args=(interval,), name="nas-energy", daemon=True)
            self._thread.start()
        log.debug("energy meter: %s", self._details)
        return self

    def _interval(self) -> float | None:
        steps = []
        if self._rapl is not None:
            steps.append(self.poll_s)
        if self._nvml is not None and self._nvml.mode == "power":
            steps.append(self.gpu_poll_s)
        return min(steps) if steps else None

    def _poll_loop(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self.poll()

    def poll(self) -> None:
        """Fold the counters read so far into the totals (called by the thread; safe to call by hand)."""
        with self._lock:
            if self._rapl is not None:
                now = self._rapl.read()
                self._rapl_joules += self._rapl.delta_joules(self._rapl_last, now)
                self._rapl_last = now
            if self._nvml is not None and self._nvml.mode == "power":
                self._nvml.sample(self.clock())

    def read(self) -> EnergyReading:
        """The energy so far, without stopping."""
        if self._t0 is None:
            raise RuntimeError("EnergyMeter.read: call start() first (or use the meter as a context manager)")
        self.poll()
        seconds = self.clock() - self._t0
        est_cpu, est_gpu = self.config.estimate_joules(self.cpu_cores * seconds, self.gpu_fraction * seconds)
        cpu_j, cpu_m = (self._rapl_joules, "rapl") if self._rapl is not None else (est_cpu, "estimated")
        gpu_j, gpu_m = 0.0, None
        if self.gpu_fraction > 0:
            if self._nvml is None:
                gpu_j, gpu_m = est_gpu, "estimated"
            elif self._nvml.mode == "counter":
                gpu_j = sum(b - a for a, b in zip(self._nvml_start, self._nvml.read_mj(), strict=True)) / 1e3
                gpu_m = "nvml"
            else:
                gpu_j, gpu_m = self._nvml.sampled_joules, "nvml"
        return EnergyReading(seconds=seconds, cpu_joules=cpu_j, cpu_method=cpu_m, gpu_joules=gpu_j,
                             gpu_method=gpu_m, details=dict(self._details))

    def stop(self) -> EnergyReading:
        """Stop polling; the reading (also kept in :attr:`reading`)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.reading = self.read()
        if self._nvml is not None:
            try:
                self._nvml.nvml.nvmlShutdown()
            except Exception as e:  # shutting down a driver that went away is not worth failing a search
                log.debug("nvmlShutdown: %s", e)
        return self.reading

    def __enter__(self) -> EnergyMeter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def estimated_reading(config: EnergyConfig, seconds: float, cpu_cores: float, gpu_fraction: float = 0.0) -> EnergyReading:
    """The reading an :class:`EnergyMeter` with no readable hardware gives for ``seconds`` of wall time."""
    cpu_j, gpu_j = config.estimate_joules(cpu_cores * seconds, gpu_fraction * seconds)
    return EnergyReading(seconds=seconds, cpu_joules=cpu_j, cpu_method="estimated", gpu_joules=gpu_j,
                         gpu_method="estimated" if gpu_fraction > 0 else None)


def available_sources(rapl_root: str | Path = RAPL_ROOT) -> dict[str, str]:
    """What this machine offers: ``{"rapl": "yes: ..." | "no: why", "nvml": ...}`` (for logs and search cards)."""
    rapl = RaplReader(rapl_root)
    nvml, why = load_nvml()
    if nvml is not None:
        try:
            nvml.nvmlShutdown()
        except Exception as e:  # see EnergyMeter.stop
            log.debug("nvmlShutdown: %s", e)
    return {"rapl": f"yes: {rapl.describe()}" if rapl.available else f"no: {rapl.reason}",
            "nvml": "yes" if nvml is not None else f"no: {why}"}


__all__ = ["METHODS", "EnergyConfig", "EnergyMeter", "EnergyReading", "NvmlReader", "RaplReader",
           "available_sources", "estimated_reading", "load_nvml", "rapl_delta_uj"]
