"""Where trials run and what they report to: ``resources:``, ``profile:`` and ``tracking:``."""

from __future__ import annotations

from pydantic import Field

from nas.config._schema import Float, Int, Str, section

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"


@section
class Resources:
    """What one trial holds: ``cpu`` cores (> 0) and a ``gpu`` fraction (>= 0, e.g. 0.25)."""

    cpu: Float = Field(1.0, gt=0)
    gpu: Float = Field(0.0, ge=0)


@section
class ProfileConfig:
    """How candidates are profiled before training: batch size, device, and timing warmup/repeats."""

    batch_size: Int = Field(1, ge=1)
    device: Str = Field("cpu", min_length=1)
    warmup: Int = Field(2, ge=0)
    repeats: Int = Field(5, ge=1)


@section
class TrackingConfig:
    """The MLflow tracking ``uri``, the ``experiment`` name (default: the experiment's ``name``), and
    ``live_after_s``: seconds into a trial before its child run is created, RUNNING, for the UI (0: at its start;
    a trial that ends sooner is written once, whole, when it ends: one write instead of three)."""

    uri: Str = Field(DEFAULT_TRACKING_URI, min_length=1)
    experiment: Str | None = Field(None, min_length=1)
    live_after_s: Float = Field(1.0, ge=0)
