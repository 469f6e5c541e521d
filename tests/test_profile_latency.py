"""Latency measurement: median and spread of the timed passes, threads used, settings honoured and recorded."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from nas.profile import Latency, measure_latency, profile_model
from nas.profile.measure import torch_threads


class _Clock:
    """A fake ``time.perf_counter``: advanced by the scripted model, so the timings are exact."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class _Scripted(nn.Module):
    """Takes a scripted number of ms per call on the fake clock, so the median and quartiles are known by hand."""

    def __init__(self, ms: list[float], clock: _Clock) -> None:
        super().__init__()
        self.ms, self.calls, self.clock = list(ms), 0, clock

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.clock.now += self.ms[self.calls] / 1e3
        self.calls += 1
        return x


def test_median_and_iqr_of_the_timed_passes_only(monkeypatch):
    clock = _Clock()
    monkeypatch.setattr("nas.profile.measure.time.perf_counter", clock)
    # 2 warm-up passes of 200 ms are not timed; timed: 10, 20, 30, 40, 50 ms -> median 30, quartiles 20 and 40
    model = _Scripted([200, 200, 50, 10, 40, 20, 30], clock)
    lat = measure_latency(model, torch.zeros(1), warmup=2, repeats=5)
    assert model.calls == 7 and lat.times_ms == pytest.approx((50, 10, 40, 20, 30))
    assert lat.median_ms == pytest.approx(30) and lat.iqr_ms == pytest.approx(20)
    assert (lat.repeats, lat.warmup) == (5, 2)


def test_threads_are_set_for_the_measurement_and_restored():
    before = torch.get_num_threads()
    lat = measure_latency(nn.Linear(8, 8), torch.zeros(1, 8), warmup=0, repeats=3, threads=1)
    assert lat.threads == 1 and torch.get_num_threads() == before
    assert measure_latency(nn.Linear(8, 8), torch.zeros(1, 8), repeats=1).threads == before
    with pytest.raises(ValueError):
        with torch_threads(0):
            pass


def test_one_repeat_has_no_spread_and_bad_counts_are_refused():
    lat = measure_latency(nn.Linear(4, 4), torch.zeros(1, 4), warmup=0, repeats=1)
    assert isinstance(lat, Latency) and lat.iqr_ms == 0 and len(lat.times_ms) == 1
    for kw in ({"repeats": 0}, {"warmup": -1}):
        with pytest.raises(ValueError):
            measure_latency(nn.Linear(4, 4), torch.zeros(1, 4), **kw)


def test_profile_records_the_spread_threads_and_settings():
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    prof = profile_model(model, (1, 8, 8), warmup=1, repeats=7, threads=1, measure_memory=False)
    assert prof.latency_ms is not None and prof.latency_ms > 0
    assert prof.latency_iqr_ms is not None and prof.latency_iqr_ms >= 0
    assert (prof.latency_threads, prof.latency_warmup, prof.latency_repeats) == (1, 1, 7)
    off = profile_model(model, (1, 8, 8), measure_latency=False, measure_memory=False)
    assert (off.latency_iqr_ms, off.latency_threads, off.latency_repeats) == (None, None, None)



@pytest.mark.slow
def test_a_trial_logs_latency_spread_and_threads():
    from pathlib import Path

    from nas.space import load_space
    from nas.training.trial import TrialSpec, run_trial

    path = Path(__file__).resolve().parent.parent / "search_spaces" / "mlp.yaml"
    space = load_space(path)
    spec = TrialSpec(number=0, params=space.sample_random(0), space_yaml=path.read_text(), space_source=str(path),
                     space_hash=space.hash, data={"name": "digits", "seed": 0, "batch_size": 64},
                     training={"epochs": 1, "optimizer": "adam", "lr": 0.003, "max_seconds": None},
                     seed=0, mflops=0.0, cpu_threads=1, device="cpu")
    _, _, final = run_trial(spec)
    assert final["latency_ms"] > 0 and final["latency_iqr_ms"] >= 0 and final["latency_threads"] == 1
