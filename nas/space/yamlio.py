"""Read a space file: text -> data (``yaml.safe_load``), with errors as ``SpaceError``.

The file is composed once (``yaml.compose`` with the safe loader: nodes only, no objects built) to refuse
duplicate keys, which ``safe_load`` silently collapses, to find the line of an error path, and to bound what
aliases expand to: a file whose aliases would expand past :data:`MAX_EXPANDED_NODES` nodes (a "billion laughs")
is refused before anything walks it. Only then are the objects constructed, from the same nodes.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from nas.space.errors import SpaceError, join

_READ_ERRORS: tuple[tuple[type[Exception], str, str], ...] = (
    (
        FileNotFoundError,
        "the file does not exist",
        "check the path (search spaces live under search_spaces/)",
    ),
    (IsADirectoryError, "this is a directory, not a file", "pass the path of a .yaml file"),
    (UnicodeDecodeError, "the file is not UTF-8 text", "save it as UTF-8"),
    (OSError, "the file cannot be read", "check that it exists and is readable"),
)


def read_yaml(path: str | os.PathLike[str]) -> tuple[Any, yaml.Node | None]:
    """The loaded data and the composed node tree of the file at ``path``."""
    src = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        problem, fix = next((p, f) for kind, p, f in _READ_ERRORS if isinstance(err, kind))
        raise SpaceError(src, "", problem, fix) from None
    try:
        return load_yaml(text, src)
    except yaml.YAMLError as err:
        raise _yaml_error(src, err) from None


#: The most nodes a file may expand to once aliases are followed (a real space or experiment has hundreds).
MAX_EXPANDED_NODES = 100_000


def load_yaml(text: str, src: str) -> tuple[Any, yaml.Node | None]:
    """Like :func:`read_yaml`, from text; ``src`` names the file in errors. Malformed YAML raises
    ``yaml.YAMLError``; too large an expansion and duplicate keys raise :class:`SpaceError`."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, None
        size = _expanded_size(node, {}, ())
        if size > MAX_EXPANDED_NODES:
            raise SpaceError(src, "", f"its aliases (*name) expand to more than {MAX_EXPANDED_NODES:,} nodes",
                             "write the values out, or use fewer nested aliases")
        _refuse_duplicates(node, "", src, ())
        data = loader.construct_document(node)
    finally:
        loader.dispose()
    return data, node


def _expanded_size(node: yaml.Node, memo: dict[int, int], stack: tuple[int, ...]) -> int:
    """Nodes in the tree once every alias is expanded (linear time: shared nodes are counted once, then reused)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in stack:  # a recursive alias: _refuse_duplicates names it
        return 1
    stack = (*stack, key)
    if isinstance(node, yaml.MappingNode):
        size = 1 + sum(_expanded_size(k, memo, stack) + _expanded_size(v, memo, stack) for k, v in node.value)
    elif isinstance(node, yaml.SequenceNode):
        size = 1 + sum(_expanded_size(v, memo, stack) for v in node.value)
    else:
        size = 1
    memo[key] = min(size, MAX_EXPANDED_NODES + 1)
    return memo[key]


def _yaml_error(src: str, err: yaml.YAMLError) -> SpaceError:
    mark = getattr(err, "problem_mark", None)
    what = getattr(err, "problem", None) or str(err)
    context = getattr(err, "context", None)
    if mark is None:
        return SpaceError(src, "", f"invalid YAML: {what}", "fix the YAML syntax")
    line = mark.line + 1
    detail = f"{what} ({context})" if context else what
    return SpaceError(
        src,
        "",
        f"invalid YAML at line {line}, column {mark.column + 1}: {detail}",
        f"fix the YAML syntax near line {line} (indentation, a missing ':' or an unclosed bracket or quote)",
        line=line,
    )


def _refuse_duplicates(node: yaml.Node, path: str, src: str, stack: tuple[int, ...]) -> None:
    if id(node) in stack:
        raise SpaceError(
            src,
            path,
            "an alias refers to a mapping or list that contains it",
            "remove the recursive alias",
            line=node.start_mark.line + 1,
        )
    stack = (*stack, id(node))
    if isinstance(node, yaml.MappingNode):
        seen: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
                line = key.start_mark.line + 1
                if (key.tag, key.value) in seen:
                    raise SpaceError(
                        src,
                        join(path, key.value),
                        f"key {key.value!r} appears twice (lines {seen[key.tag, key.value]} and {line}); YAML would keep only the last",
                        "remove one of them",
                        line=line,
                    )
                seen[key.tag, key.value] = line
            _refuse_duplicates(value, join(path, getattr(key, "value", "?")), src, stack)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicates(item, join(path, i), src, stack)


def line_of(node: yaml.Node, path: str) -> int | None:
    """1-based line of the deepest node along ``path`` ('/'-joined keys and indices)."""
    line = node.start_mark.line + 1
    for part in path.split("/") if path else ():
        if isinstance(node, yaml.MappingNode):
            hit = next(
                ((k, v) for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == part), None
            )
            if hit is None:
                return line
            line, node = hit[0].start_mark.line + 1, hit[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            line = node.start_mark.line + 1
        else:
            return line
    return line
