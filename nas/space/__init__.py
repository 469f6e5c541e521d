"""Declarative search spaces: YAML files (docs/SPACE_FORMAT.md) -> validated ``Space`` objects that sample on
an Optuna trial (define-by-run) and resolve flat params into the nested config a builder receives."""

from nas.space.dims import Dimension
from nas.space.errors import SpaceError
from nas.space.space import Space, load_space, parse_space

__all__ = ["Dimension", "Space", "SpaceError", "load_space", "parse_space"]
