"""Profiles of proposed architectures, measured once per architecture (categorical spaces repeat them).

Built with the space's builder and measured by fvcore (:func:`nas.profile.profile_model`), or, for a tabular
backend, looked up by the ``profiler`` given. Latency and memory are measured here, on the driver's critical
path, only when an objective or constraint needs them before training; otherwise the trial measures latency on
its own device after training (:mod:`nas.training.trial`), so every child run still records it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from nas.builders import build
from nas.config.experiment import Experiment
from nas.profile import Profile, profile_model
from nas.space import Space


class ProfileCache:
    """``cache(params)``: the profile of an architecture (raises when it cannot be built or profiled)."""

    def __init__(self, exp: Experiment, space: Space, input_shape: tuple[int, ...], num_classes: int,
                 profiler: Callable[[Mapping[str, Any]], Profile] | None = None) -> None:
        self.exp, self.space, self.profiler = exp, space, profiler
        self.input_shape, self.num_classes = tuple(input_shape), num_classes
        self._profiles: dict[str, Profile] = {}  # by architecture (params as sorted JSON)

    def __call__(self, params: Mapping[str, Any]) -> Profile:
        key = json.dumps(dict(params), sort_keys=True, default=str)
        if key not in self._profiles:
            self._profiles[key] = self._measure(params)
        return self._profiles[key]

    def _measure(self, params: Mapping[str, Any]) -> Profile:
        if self.profiler is not None:
            return self.profiler(params)
        model = build(self.space, params, input_shape=self.input_shape, num_classes=self.num_classes)
        p = self.exp.profile
        names = [o.name for o in self.exp.objectives] + [c.metric for c in self.exp.constraints]
        return profile_model(
            model, self.input_shape, device=p.device, batch_size=p.batch_size, warmup=p.warmup, repeats=p.repeats,
            measure_latency="latency_ms" in names, measure_memory="peak_mem_mb" in names,
        )
