"""nas.cost.forecast on the shipped cnn space (digits: 1x8x8, 10 classes): ordered ranges, early stopping lowers them."""

from __future__ import annotations

from pathlib import Path

import pytest

from nas.config.experiment import Constraint, Resources
from nas.cost.energy import EnergyConfig
from nas.cost.forecast import SpeedProbe, duration, fit_speed, forecast
from nas.space import load_space

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cnn():
    return load_space(ROOT / "search_spaces" / "cnn.yaml")


def test_forecast_cnn_space(cnn):
    f = forecast(cnn, (1, 8, 8), 10, trials=20, epochs=10, train_samples=1078, val_samples=359,
                 resources=Resources(cpu=1), samples=8, probe_seconds=0.05,
                 speed_probes=3)
    t = f.full
    for r in (t.train_flops, t.trial_seconds, t.device_hours, t.energy_kwh, t.co2_g, t.cost):
        assert 0 < r.low <= r.median <= r.high
    # FLOPs are counted: the total is trials x 3 x forward x epochs x samples of the sampled architectures
    assert f.full.train_flops.median == pytest.approx(20 * 3 * f.forward_mflops["p50"] * 1e6 * 10 * 1078, rel=1e-6)
    assert f.speed and all(p.seconds_per_sample > 0 for p in f.speed)  # measured, not assumed
    assert f.full.co2_g.median == pytest.approx(f.full.energy_kwh.median * 475)
    text = "\n".join(f.lines())
    for word in ("FLOPs", "device-hours", "kWh", "CO2", "timed on this machine"):
        assert word in text, word


def test_forecast_given_speed_and_constraints(cnn):
    cfg = EnergyConfig(cpu_watts_per_core=10)
    f = forecast(cnn, (1, 8, 8), 10, trials=4, epochs=2, train_samples=1000, resources=Resources(cpu=2),
                 energy_config=cfg, samples=6, seconds_per_tflop=1000.0, workers=2,
                 constraints=[Constraint("mflops", max=0.3), Constraint("latency_ms", max=1.0)])
    assert f.speed == [] and "given" in f.speed_method
    assert f.forward_mflops["max"] <= 0.3 and f.infeasible == 1 and f.unbuildable == 0  # seeds 0..5
    assert f.unchecked_constraints == ["latency_ms"]
    # 1000 s per TFLOP of training: seconds = FLOPs / 1e12 x 1000; two cores at 10 W each
    assert f.full.trial_seconds.median == pytest.approx(f.full.train_flops.median / 1e9)
    assert f.full.energy_kwh.median == pytest.approx(f.full.trial_seconds.median * 20 / 3.6e6)
    assert f.full.wall_hours.median == pytest.approx(f.full.trial_seconds.median / 2 / 3600)
    with pytest.raises(ValueError, match="meets the constraints"):
        forecast(cnn, (1, 8, 8), 10, trials=1, epochs=1, train_samples=10, resources=Resources(), samples=2,
                 seconds_per_tflop=1.0, constraints=[Constraint("mflops", max=1e-9)])


def test_fit_speed():
    probes = [SpeedProbe(1e6, 1e-4 + 1e-9 * 1e6, 10, 64), SpeedProbe(3e6, 1e-4 + 1e-9 * 3e6, 10, 64)]
    a, b = fit_speed(probes)
    assert a == pytest.approx(1e-4) and b == pytest.approx(1e-9)
    assert fit_speed([SpeedProbe(1e6, 2e-4, 1, 1), SpeedProbe(2e6, 1e-4, 1, 1)]) == (pytest.approx(1.5e-4), 0.0)
    assert fit_speed(probes[:1]) == (pytest.approx(probes[0].seconds_per_sample), 0.0)


def test_duration():
    assert duration(42) == "42 s" and duration(300) == "5 min" and duration(3 * 3600) == "3 h"
    assert duration(5 * 86400) == "5 days"
