"""nas: efficiency-aware neural architecture search.

Searches architectures for the best accuracy at the least compute, and reports what the search itself cost.
``nas.load_model(run_id, rank=0)`` returns a Pareto-optimal model of a finished search, ready to use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["load_model", "pareto_set", "__version__"]


def __getattr__(name: str) -> Any:
    # Lazy: `import nas` stays cheap; MLflow and torch load only when a model is asked for.
    if name in ("load_model", "pareto_set"):
        from nas.tracking import models

        return getattr(models, name)
    raise AttributeError(f"module 'nas' has no attribute {name!r}")
