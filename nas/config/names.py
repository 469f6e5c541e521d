"""Allowed names, read from the registries that own them: one source of truth for each kind of name.

The registries live in the packages that implement the names (Optuna samplers in the search controller, proxies in
``nas.proxies``...), most of them above ``nas.config`` in the layering. So the schema names each registry by
module and attribute and reads it when an experiment is validated, never at import: ``nas.config`` imports no
torch, Optuna or registry package, and a name registered by a plugin at run time is accepted like a built-in one.
``tests/test_experiment.py`` checks that every entry resolves.
"""

from __future__ import annotations

import importlib

#: kind of name -> (module, attribute): a mapping whose keys are the names, or a function returning them
REGISTRIES: dict[str, tuple[str, str]] = {
    "sampler": ("nas.search.controller.samplers", "SAMPLERS"),
    "optimizer": ("nas.training.train", "OPTIMIZERS"),
    "lr_schedule": ("nas.training.train", "LR_SCHEDULES"),
    "proxy": ("nas.proxies", "PROXIES"),
    "dataset": ("nas.data", "dataset_names"),
}


def registered(kind: str) -> list[str]:
    """The names registered for ``kind`` (a key of :data:`REGISTRIES`), in registration order."""
    module, attr = REGISTRIES[kind]
    table = getattr(importlib.import_module(module), attr)
    return list(table() if callable(table) else table)
