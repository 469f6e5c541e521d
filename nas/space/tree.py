"""The parsed space as an immutable tree. Leaves are constants and ``Dimension``s (anonymous: ``name == ''``;
a dimension's name comes from its position, see docs/SPACE_FORMAT.md)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nas.space.dims import Dimension


@dataclass(frozen=True)
class Const:
    """A constant: a scalar, or a tuple of scalars (a YAML list; resolved back to a list)."""

    value: Any


@dataclass(frozen=True)
class Group:
    """A mapping of fields, in file order."""

    fields: tuple[tuple[str, Node], ...]


@dataclass(frozen=True)
class Repeat:
    """A list of ``low..high`` elements, each an instance of ``each``; ``fixed`` when ``repeat`` was an int."""

    low: int
    high: int
    fixed: bool
    each: Group

    def count_dimension(self, name: str) -> Dimension:
        """The dimension of the element count, named ``<path>/n``."""
        return Dimension(name=f"{name}/n", kind="int", low=self.low, high=self.high, step=1)


@dataclass(frozen=True)
class Choice:
    """Conditional branches, in file order: branch name -> sub-space."""

    branches: tuple[tuple[str, Group], ...]

    def branch_dimension(self, name: str) -> Dimension:
        """The categorical over the branch names, named ``<path>``."""
        return Dimension(name=name, kind="categorical", choices=tuple(b for b, _ in self.branches))

    def body(self, branch: str) -> Group:
        """The sub-space of ``branch``."""
        return dict(self.branches)[branch]


Node = Const | Dimension | Group | Repeat | Choice
