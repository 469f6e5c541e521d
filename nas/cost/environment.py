"""What a run ran on: package versions and hardware, recorded on every search's parent run."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from typing import Any

import torch

_PACKAGES = ("nas", "torch", "optuna", "ray", "fvcore", "mlflow", "numpy", "moocore")


def package_versions() -> dict[str, str]:
    out = {}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def hardware() -> dict[str, Any]:
    return {
        "platform": platform.platform(), "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(), "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cuda_devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
    }
