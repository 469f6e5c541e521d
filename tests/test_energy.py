"""nas.cost.energy: estimates by hand, RAPL on a fake sysfs tree (wrap-around included), NVML through a fake pynvml."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.cost.energy import (
    EnergyConfig,
    EnergyMeter,
    EnergyReading,
    RaplReader,
    available_sources,
    estimated_reading,
    rapl_delta_uj,
)


def test_estimate_by_hand():
    # 2 cores x 10 W x 360 s = 7200 J = 0.002 kWh; at 475 g/kWh that is 0.95 g CO2
    cfg = EnergyConfig(cpu_watts_per_core=10.0, grid_g_co2_per_kwh=475.0)
    r = estimated_reading(cfg, seconds=360.0, cpu_cores=2)
    assert r.joules == pytest.approx(7200.0)
    assert r.kwh == pytest.approx(0.002)
    assert cfg.co2_g(r.kwh) == pytest.approx(0.95)
    assert r.method == "estimated" and r.gpu_method is None


def test_estimate_with_gpu_and_cost():
    cfg = EnergyConfig(cpu_watts_per_core=10.0, gpu_watts=300.0, price_per_cpu_core_hour=0.05, price_per_gpu_hour=3.0)
    r = estimated_reading(cfg, seconds=3600.0, cpu_cores=4, gpu_fraction=0.5)
    assert r.cpu_joules == pytest.approx(4 * 10 * 3600)
    assert r.gpu_joules == pytest.approx(0.5 * 300 * 3600)
    assert r.kwh == pytest.approx(0.04 + 0.15)
    assert cfg.cost(cpu_core_hours=4, gpu_hours=0.5) == pytest.approx(0.2 + 1.5)


@pytest.mark.parametrize("bad", [{"cpu_watts_per_core": -1}, {"pue": 0.9}, {"currency": "US$"},
                                 {"grid_g_co2_per_kwh": float("nan")}])
def test_config_rejects_nonsense(bad):
    with pytest.raises(ValueError):
        EnergyConfig(**bad)


def test_reading_method_names():
    assert EnergyReading(1, 1, "rapl", 1, "nvml").method == "rapl+nvml"
    assert EnergyReading(1, 1, "estimated", 1, "nvml").method == "nvml+estimated"
    assert EnergyReading(1, 1, "rapl").measured
    assert not EnergyReading(1, 1, "estimated", 1, "estimated").measured
    r = EnergyReading(2.0, 3.0, "rapl", 4.0, "nvml", {"cpu": "x"})
    assert EnergyReading.from_dict(r.to_dict()) == r


def _zone(root: Path, name: str, label: str, energy: int, max_range: int = 1000_000) -> Path:
    d = root / name
    d.mkdir(parents=True)
    (d / "name").write_text(label + "\n")
    (d / "energy_uj").write_text(f"{energy}\n")
    (d / "max_energy_range_uj").write_text(f"{max_range}\n")
    return d


def _fake_rapl(tmp_path: Path) -> Path:
    root = tmp_path / "powercap"
    _zone(root, "intel-rapl:0", "package-0", 100)
    _zone(root, "intel-rapl:0:0", "core", 50)  # part of the package: not added
    _zone(root, "intel-rapl:0:1", "dram", 10)  # not part of the package: added
    _zone(root, "intel-rapl:1", "package-1", 999_000)  # about to wrap
    _zone(root, "intel-rapl:2", "psys", 5)  # contains the packages: not added
    return root


def test_rapl_delta_wraps():
    assert rapl_delta_uj(100, 300, 1000) == 200
    assert rapl_delta_uj(900, 100, 1000) == 200


def test_rapl_reader_zones_and_wrap(tmp_path):
    root = _fake_rapl(tmp_path)
    reader = RaplReader(root)
    assert reader.available, reader.reason
    assert [z.name for z in reader.zones] == ["package-0", "dram", "package-1"]
    before = reader.read()
    (root / "intel-rapl:0" / "energy_uj").write_text("2000100")  # +2 J
    (root / "intel-rapl:0:1" / "energy_uj").write_text("500010")  # +0.5 J
    (root / "intel-rapl:1" / "energy_uj").write_text("1000")  # wrapped: +1000 + 1000 µJ
    assert reader.delta_joules(before, reader.read()) == pytest.approx(2.0 + 0.5 + 0.002)


def test_rapl_unavailable_is_explained(tmp_path, monkeypatch):
    missing = RaplReader(tmp_path / "nope")
    assert not missing.available and "does not exist" in missing.reason
    root = _fake_rapl(tmp_path)
    real = Path.read_text

    def root_only(self: Path, *a, **k) -> str:  # what a non-root user sees since Linux 5.10
        if self.name == "energy_uj":
            raise PermissionError(13, "Permission denied", str(self))
        return real(self, *a, **k)

    monkeypatch.setattr(Path, "read_text", root_only)
    unreadable = RaplReader(root)
    assert not unreadable.available and "not readable" in unreadable.reason


class _Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_meter_measures_rapl_across_polls(tmp_path):
    root = _fake_rapl(tmp_path)
    clock = _Clock()
    meter = EnergyMeter(EnergyConfig(), cpu_cores=2, rapl_root=root, poll_s=3600, clock=clock).start()
    pkg = root / "intel-rapl:1" / "energy_uj"
    pkg.write_text("500")  # wrap 1: +1000 + 500 µJ
    meter.poll()
    pkg.write_text("999500")  # +999000 µJ
    meter.poll()
    pkg.write_text("200")  # wrap 2: +500 + 200 µJ; two wraps in all, both caught by polling
    clock.t = 10.0
    r = meter.stop()
    assert r.cpu_method == "rapl" and r.method == "rapl"
    assert r.cpu_joules == pytest.approx((1500 + 999_000 + 700) / 1e6)
    assert r.seconds == 10.0
    assert "package-0" in r.details["cpu"]


def test_meter_estimates_without_hardware(tmp_path):
    clock = _Clock()
    with EnergyMeter(EnergyConfig(cpu_watts_per_core=10, gpu_watts=200), cpu_cores=2, gpu_fraction=0.5,
                     rapl_root=tmp_path / "none", nvml_loader=lambda: (None, "no pynvml"), clock=clock) as meter:
        clock.t = 360.0
    r = meter.reading
    assert r is not None and r.method == "estimated"
    assert r.cpu_joules == pytest.approx(7200.0) and r.gpu_joules == pytest.approx(0.5 * 200 * 360)
    assert "no pynvml" in r.details["gpu"]


class _FakeNvml:
    """pynvml with two GPUs; ``counter=False`` models a pre-Volta GPU without the energy counter."""

    def __init__(self, counter: bool = True) -> None:
        self.counter, self.energy_mj, self.power_mw, self.shut = counter, [1000, 5000], [100_000, 50_000], False

    def nvmlInit(self) -> None: ...

    def nvmlShutdown(self) -> None:
        self.shut = True

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:
        return i

    def nvmlDeviceGetTotalEnergyConsumption(self, h: int) -> int:
        if not self.counter:
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        return self.energy_mj[h]

    def nvmlDeviceGetPowerUsage(self, h: int) -> int:
        return self.power_mw[h]


def test_meter_nvml_counter(tmp_path):
    nvml = _FakeNvml()
    meter = EnergyMeter(cpu_cores=1, gpu_fraction=1, rapl_root=tmp_path, nvml_loader=lambda: (nvml, ""),
                        gpu_indices=[1], clock=_Clock()).start()
    nvml.energy_mj = [9999, 7500]  # GPU 1: +2.5 J; GPU 0 is not ours
    r = meter.stop()
    assert r.gpu_method == "nvml" and r.gpu_joules == pytest.approx(2.5)
    assert r.method == "nvml+estimated" and nvml.shut


def test_meter_nvml_power_sampling(tmp_path):
    nvml, clock = _FakeNvml(counter=False), _Clock()
    meter = EnergyMeter(cpu_cores=1, gpu_fraction=1, rapl_root=tmp_path, nvml_loader=lambda: (nvml, ""),
                        gpu_poll_s=3600, clock=clock).start()  # 150 W in all
    clock.t = 2.0
    meter.poll()
    nvml.power_mw = [200_000, 50_000]  # 250 W
    clock.t = 4.0
    r = meter.stop()
    assert r.gpu_joules == pytest.approx(2 * 150 + 2 * (150 + 250) / 2)


def test_meter_read_before_start_fails():
    with pytest.raises(RuntimeError, match="start"):
        EnergyMeter(cpu_cores=1).read()


def test_available_sources_on_this_machine():
    found = available_sources()
    assert set(found) == {"rapl", "nvml"}
    assert all(v.startswith(("yes", "no: ")) for v in found.values())
