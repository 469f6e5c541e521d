"""Shared fixtures. End-to-end tests start one real local Ray cluster per session (2 CPUs)."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"

os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")
os.environ.setdefault("MLFLOW_ENABLE_ASYNC_LOGGING", "false")


def write_experiment(folder: Path, name: str, **sections) -> Path:
    """``folder/exp.yaml``: the tiny CNN space on digits (seed 0, batch 64), MLflow in ``folder/mlflow.db``
    (experiment ``name``); each of ``sections`` replaces its default section whole."""
    import yaml

    doc = {"name": name, "space": str(FIXTURES / "tiny_cnn.yaml"),
           "data": {"name": "digits", "seed": 0, "batch_size": 64},
           "tracking": {"uri": f"sqlite:///{folder / 'mlflow.db'}", "experiment": name}, **sections}
    path = folder / "exp.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture(scope="session")
def ray_cluster():
    """A real local Ray cluster, shared by the end-to-end tests of one session."""
    import ray

    from nas.search.backends.ray import init_ray

    init_ray(num_cpus=2)
    yield ray
    ray.shutdown()


@contextlib.contextmanager
def open_builder(name: str):
    """Register, for the block, a builder that takes any parameter (for space tests that need no real model)."""
    from torch import nn

    from nas.space.registry import register_builder, unregister_builder

    unregister_builder(name)

    @register_builder(name)
    def _open(*, input_shape, num_classes, **config):
        """Takes any parameter."""
        return nn.Identity()

    try:
        yield
    finally:
        unregister_builder(name)
