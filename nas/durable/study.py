"""Where a search keeps its Optuna study: one journal file per search, named from its run id.

Beside a sqlite tracking store ``<dir>/mlflow.db``, the study of run ``R`` is ``<dir>/nas_studies/R.journal``, and
the parent run records that path relative to ``<dir>`` (tag :data:`TAG_JOURNAL`), so a project folder moved as a
whole still finds it. ``search.storage`` set to an RDB URL keeps the study there instead (recorded as the URL);
set to a file path, that journal is used as given (recorded absolute). The study is named ``nas-<run id>`` and
carries the run id as a user attribute, so a study of another run is recognised and refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

STUDIES_DIR = "nas_studies"
TAG_JOURNAL = "nas.study_journal"  # journal path relative to the tracking store's folder
TAG_STORAGE = "nas.study_storage"  # an RDB URL or absolute journal path (search.storage), or "" (in memory)
TAG_NAME = "nas.study_name"
RUN_ATTR = "nas_run_id"  # on the study: the run that owns it


@dataclass(frozen=True)
class StudyLocation:
    """``storage``: what Optuna opens (an absolute journal path, an RDB URL, or None for in memory);
    ``journal``: the local journal file, if the study lives in one (it gets the driver lease)."""

    storage: str | None
    study_name: str
    journal: Path | None
    tags: dict[str, str]


def store_dir(tracking_uri: str) -> Path | None:
    """The folder of a ``sqlite:///`` tracking store; None for other stores."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    return Path(tracking_uri[len("sqlite:///"):]).expanduser().resolve().parent


def study_name(run_id: str) -> str:
    return f"nas-{run_id}"


def is_url(storage: str) -> bool:
    return "://" in storage


def new_location(tracking_uri: str, search_storage: str | None, run_id: str) -> StudyLocation:
    """Where a new search's study goes (see the module docstring)."""
    name = study_name(run_id)
    if search_storage:
        journal = None if is_url(search_storage) else Path(search_storage).expanduser().resolve()
        storage = search_storage if journal is None else str(journal)
        return StudyLocation(storage, name, journal, {TAG_STORAGE: storage, TAG_NAME: name})
    folder = store_dir(tracking_uri)
    if folder is None:
        return StudyLocation(None, name, None, {TAG_STORAGE: "", TAG_NAME: name})
    rel = f"{STUDIES_DIR}/{run_id}.journal"
    return StudyLocation(str(folder / rel), name, folder / rel, {TAG_JOURNAL: rel, TAG_NAME: name})


def recorded_location(tracking_uri: str, run_id: str, tags: dict[str, str]) -> StudyLocation:
    """Where the run's study was stored, from the parent run's tags (``nas.study_journal`` relative to the current
    store's folder first). A run whose driver died before tagging it is found by its name rule. Raises
    ``LookupError`` with the reason when the run kept its study in memory."""
    name = tags.get(TAG_NAME) or study_name(run_id)
    rel = tags.get(TAG_JOURNAL)
    folder = store_dir(tracking_uri)
    if rel and folder is not None:
        return StudyLocation(str(folder / rel), name, folder / rel, {})
    storage = tags.get(TAG_STORAGE)
    if storage:
        journal = None if is_url(storage) else Path(storage)
        return StudyLocation(storage, name, journal, {})
    if storage is None and folder is not None:  # not tagged at all: the driver died between two writes
        rel = f"{STUDIES_DIR}/{run_id}.journal"
        return StudyLocation(str(folder / rel), name, folder / rel, {})
    raise LookupError(f"run {run_id} kept its Optuna study in memory (no sqlite tracking store, no search.storage)")


def owner(study_user_attrs: dict[str, Any]) -> str | None:
    """The run id a study belongs to, from its user attributes (None for studies made before this was kept)."""
    value = study_user_attrs.get(RUN_ATTR)
    return str(value) if value is not None else None


def run_study_storage(tracking_uri: str, run_id: str, search_storage: str | None = None) -> str | None:
    """Where a search started with these settings keeps run ``run_id``'s study (what ``open_storage`` takes)."""
    return new_location(tracking_uri, search_storage, run_id).storage
