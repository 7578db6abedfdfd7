"""Reading structured text (YAML, JSON) that someone else may have written to hurt.

A config is kilobytes, nested a few levels: a file larger than `max_config_bytes()`, a
value nested deeper than `MAX_DEPTH` levels, or a document that expands (through YAML aliases)
to more than `MAX_VALUES` values is refused in one line before anything walks it. YAML is
read with PyYAML's safe loader (the C one when libyaml is installed, as it is with the
PyYAML wheels), which builds only plain data and refuses a mapping that repeats a key: with
the last one silently winning, a typo would change a run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import yaml

from megalith.errors import ConfigError, MegalithError
from megalith.memory import format_bytes

MAX_CONFIG_BYTES_ENV = "MEGALITH_MAX_CONFIG_BYTES"
"""Environment variable that raises (or lowers) the config size limit, in bytes."""
DEFAULT_MAX_CONFIG_BYTES = 1_000_000
"""A config file larger than this (1 MB) is refused unless MEGALITH_MAX_CONFIG_BYTES allows it."""
MAX_DEPTH = 100
"""Most levels of nesting in a config, a --set value or a JSON record (configs use ~5)."""
MAX_VALUES = 1_000_000
"""Most values (scalars, lists, mappings) one YAML document may expand to, aliases expanded."""

_SafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_MERGE = "tag:yaml.org,2002:merge"


class _UniqueKeyLoader(_SafeLoader):  # type: ignore[valid-type, misc]  # C or Python loader
    """The safe loader, refusing a mapping that names the same key twice."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
                continue  # '<<: *base' merges keys that this mapping may override
            key = self.construct_object(key_node)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"the key '{key}' appears twice (lines {seen[key]} and {line}); "
                    "keep one of them",
                    key_node.start_mark,
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def max_config_bytes() -> int:
    """The config size limit: $MEGALITH_MAX_CONFIG_BYTES, else 1 MB.

    Raises:
        ConfigError: the variable is set but not a positive whole number.
    """
    raw = os.environ.get(MAX_CONFIG_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_CONFIG_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(f"{MAX_CONFIG_BYTES_ENV}={raw!r}: give a number of bytes, e.g. 5000000")
    return int(raw)


def read_config_text(path: Path) -> str:
    """A config file's text, refused above `max_config_bytes()` before it is read.

    Raises:
        ConfigError: the file is missing, unreadable, not UTF-8 or too large.
    """
    limit = max_config_bytes()
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as error:
        raise ConfigError(f"cannot read config file {path}: {error.strerror or error}") from None
    if len(data) > limit:
        size = _file_size(path, len(data))
        raise ConfigError(
            f"{path} is {format_bytes(size)}, larger than a config can be "
            f"({format_bytes(limit)}); is it the right file? To read it anyway set "
            f"{MAX_CONFIG_BYTES_ENV} to its size in bytes"
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(
            f"cannot read config file {path}: not UTF-8 text (byte {error.start})"
        ) from None


def parse_yaml(
    text: str,
    where: str,
    error: type[MegalithError] = ConfigError,
    *,
    text_if_invalid: bool = False,
) -> Any:
    """Plain data from YAML text, bounded in depth and size, with no key repeated.

    Args:
        text: the YAML document.
        where: how the message names the text: 'config.yaml', "--set 'a=b'".
        error: the class of the error raised.
        text_if_invalid: return `text` itself when it is not valid YAML (a --set value such
            as 'a: b: c'); too deep, too large or a repeated key is still refused.

    Raises:
        error: invalid YAML (with its line and column), a repeated key, a date-like value
            PyYAML cannot read, or too deep / too large a document.
    """
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # a safe loader
    except yaml.YAMLError as problem:
        what = " ".join(str(getattr(problem, "problem", None) or problem).split())
        if "nesting depth" in what:  # libyaml stops at 1000 levels
            raise error(_too_deep(where)) from None
        if text_if_invalid and "appears twice" not in what:
            return text
        mark = getattr(problem, "problem_mark", None)
        at = f" line {mark.line + 1}, column {mark.column + 1}:" if mark else ""
        raise error(f"{where}:{at} invalid YAML: {what}") from None
    except ValueError as problem:  # PyYAML reads 2020-13-45 as a date and fails
        if text_if_invalid:
            return text
        raise error(
            f"{where}: invalid YAML value ({problem}); put quotes around it to keep it as text"
        ) from None
    except RecursionError:  # the pure-Python loader, without libyaml's own depth limit
        raise error(_too_deep(where)) from None
    check_bounded(data, where, error)
    return data


def parse_json(text: str | bytes, where: str, error: type[MegalithError]) -> Any:
    """json.loads, refusing nesting deeper than `MAX_DEPTH` in one line.

    Raises:
        json.JSONDecodeError: invalid JSON (the caller names the line as it counts lines).
        error: the value is nested too deeply.
    """
    try:
        data = json.loads(text)
    except RecursionError:
        raise error(_too_deep(where)) from None
    brackets = text.count("[") + text.count("{") if isinstance(text, str) else MAX_DEPTH + 1
    if brackets > MAX_DEPTH:  # else it cannot be too deep: skip the walk
        check_bounded(data, where, error, max_values=None)
    return data


def check_bounded(
    data: Any,
    where: str,
    error: type[MegalithError],
    *,
    max_values: int | None = MAX_VALUES,
) -> None:
    """Refuse data nested deeper than `MAX_DEPTH` or (with `max_values`) holding more values.

    The walk keeps its own stack, so it cannot overflow Python's, and stops at the limit, so
    a document of aliases that expands exponentially is refused after `max_values` steps.
    """
    stack: list[tuple[Any, int]] = [(data, 1)]
    seen = 0
    while stack:
        value, depth = stack.pop()
        seen += 1
        if max_values is not None and seen > max_values:
            raise error(
                f"{where}: holds more than {max_values:,} values (YAML aliases expanded); "
                "a config is a few dozen keys: is it the right file?"
            )
        if depth > MAX_DEPTH:
            raise error(_too_deep(where))
        if isinstance(value, dict):
            stack.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            stack.extend((item, depth + 1) for item in value)


def _too_deep(where: str) -> str:
    return f"{where}: nested more than {MAX_DEPTH} levels deep; is it the right file?"


def _file_size(path: Path, at_least: int) -> int:
    try:
        return max(path.stat().st_size, at_least)
    except OSError:
        return at_least
