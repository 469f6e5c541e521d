"""Latency measurement: median and spread of the timed passes, threads used, settings honoured and recorded."""

from __future__ import annotations

import time

import pytest
import torch
from torch import nn

from nas.profile import Latency, measure_latency, profile_model
from nas.profile.measure import torch_threads


class _Scripted(nn.Module):
    """Sleeps a scripted number of ms per call, so the median and the quartiles are known by hand."""

    def __init__(self, ms: list[float]) -> None:
        super().__init__()
        self.ms, self.calls = list(ms), 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        time.sleep(self.ms[self.calls] / 1e3)
        self.calls += 1
        return x


def test_median_and_iqr_of_the_timed_passes_only():
    # 2 warm-up passes of 200 ms are not timed; timed: 10, 20, 30, 40, 50 ms -> median 30, quartiles 20 and 40
    model = _Scripted([200, 200, 10, 20, 30, 40, 50])
    lat = measure_latency(model, torch.zeros(1), warmup=2, repeats=5)
    assert model.calls == 7 and len(lat.times_ms) == 5
    assert lat.median_ms == pytest.approx(30, abs=5)
    assert lat.iqr_ms == pytest.approx(20, abs=8)
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
    assert isinstance(lat, Latency) and lat.iqr_ms == 0
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

