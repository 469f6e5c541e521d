"""The controller: an Optuna study that proposes feasible architectures and learns from their results.

- :mod:`.core`: :class:`Controller` (propose / tell), candidates and counts.
- :mod:`.samplers`: the ``search.sampler`` registry.
- :mod:`.storage`: where the study lives (RDB URL, journal file, memory).
- :mod:`.feasibility`: the one hard-constraint check.
- :mod:`.profiling`: profiles of proposed architectures, measured once each.
- :mod:`.repeats`: canonical trial keys and known results (never train twice).
- :mod:`.screening`: zero-cost proxies (scores, trust, screening, prior seeding).
"""

from nas.search.controller.core import (
    REASON_ATTR,
    RECORD_ATTR,
    SAVED_ATTR,
    STATUS_ATTR,
    Candidate,
    Controller,
    ControllerStats,
    NoFeasibleCandidateError,
)
from nas.search.controller.samplers import SAMPLERS, make_sampler
from nas.search.controller.storage import open_storage

__all__ = ["REASON_ATTR", "RECORD_ATTR", "SAMPLERS", "SAVED_ATTR", "STATUS_ATTR", "Candidate", "Controller",
           "ControllerStats", "NoFeasibleCandidateError", "make_sampler", "open_storage"]
