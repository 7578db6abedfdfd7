"""The search space: dotted config keys (list items by index, `inputs.0.embedding_dim`), each
with one distribution, checked against the config before any trial runs.

    train.optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}
    train.dropout:      {uniform: [0.0, 0.5], step: 0.1}
    inputs.0.embedding_dim: {int: [32, 256], step: 32}      (or log: true)
    model.hidden:       {choice: [[64], [128, 64]]}
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from megalith.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    import optuna

KINDS = ("uniform", "loguniform", "int", "choice")
OPTIONS = {"uniform": {"step"}, "loguniform": set(), "int": {"step", "log"}, "choice": set()}
"""The options each kind takes besides its values."""


@dataclass(frozen=True)
class Dimension:
    """One tuned key: its kind, bounds (low, high) or choices, and options."""

    key: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    def suggest(self, trial: optuna.Trial) -> Any:
        """The trial's value of this key (Optuna records it under the dotted key)."""
        if self.kind == "choice":
            shown = [param_text(choice) for choice in self.choices]
            return param_value(trial.suggest_categorical(self.key, shown))
        if self.kind == "int":
            step = int(self.step or 1)
            return trial.suggest_int(
                self.key, int(self.low), int(self.high), step=step, log=self.log
            )
        return trial.suggest_float(
            self.key, self.low, self.high, step=self.step, log=self.kind == "loguniform"
        )

    def grid(self) -> list[Any]:
        """Every value, for the grid sampler (choice and int keys, uniform with a step).

        Raises:
            ConfigError: a continuous kind without a step.
        """
        if self.kind == "choice":
            return [param_text(choice) for choice in self.choices]
        if self.step is None and self.kind != "int":
            raise ConfigError(
                f"space {self.key}: the grid sampler needs a finite set of values; give "
                "`step:` or use `choice:`, or choose --sampler tpe or random"
            )
        count = round((self.high - self.low) / (self.step or 1)) + 1
        values = [self.low + i * (self.step or 1) for i in range(count)]
        return [int(v) for v in values] if self.kind == "int" else values


def param_text(value: Any) -> Any:
    """Optuna's categorical values are scalars: a list or mapping travels as JSON text."""
    return json.dumps(value) if isinstance(value, list | dict) else value


def param_value(value: Any) -> Any:
    if isinstance(value, str) and value[:1] in "[{":
        return json.loads(value)
    return value


def parse_space(space: Any, origin: str = "space") -> list[Dimension]:
    """The dimensions of a space mapping {dotted key: {kind: values, option: value}}.

    Raises:
        ConfigError: the space is not a mapping, is empty, or a key has an unknown kind, more
            than one kind, an unknown option, or bad bounds (low >= high, loguniform <= 0,
            non-integer int bounds, empty choice); the message names the key.
    """
    if not isinstance(space, dict) or not space:
        raise ConfigError(
            f"{origin}: a search space is a mapping of config keys to distributions, e.g. "
            "train.optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}"
        )
    return [_dimension(str(key), spec, origin) for key, spec in space.items()]


def read_space(path: Path) -> list[Dimension]:
    """The space in a YAML file (see parse_space). Raises ConfigError naming the file."""
    from megalith.paths import check_readable
    from megalith.structured import parse_yaml, read_config_text

    check_readable(path, "search space file", error=ConfigError)
    space = parse_yaml(read_config_text(path), str(path))
    if not isinstance(space, dict) or not space:
        raise ConfigError(
            f"{path}: a search space is a YAML mapping of config keys to ranges, e.g. "
            "'train.optimizer.lr: {loguniform: [1.0e-4, 1.0e-2]}' (see docs/tune.md)"
        )
    return parse_space(space, str(path))


def _dimension(key: str, spec: Any, origin: str) -> Dimension:
    where = f"{origin}: {key}"
    if not isinstance(spec, dict):
        raise ConfigError(f"{where}: give one distribution, e.g. {{choice: [a, b]}}, not {spec!r}")
    kinds = [name for name in spec if name in KINDS]
    if len(kinds) != 1:
        unknown = [name for name in spec if name not in KINDS and name not in ("step", "log")]
        hint = did_you_mean(str(unknown[0]), KINDS) if unknown else ""
        found = f"'{unknown[0]}'{hint}" if unknown else f"{len(kinds)} kinds"
        raise ConfigError(f"{where}: {found}; give exactly one of {', '.join(KINDS)}")
    kind = kinds[0]
    extra = set(spec) - {kind} - OPTIONS[kind]
    if extra:
        allowed = ", ".join(sorted(OPTIONS[kind])) or "none"
        raise ConfigError(f"{where}: {kind} takes no '{sorted(extra)[0]}' (options: {allowed})")
    values = spec[kind]
    if kind == "choice":
        if not isinstance(values, list) or not values:
            raise ConfigError(f"{where}: choice needs a non-empty list of values")
        return Dimension(key, kind, choices=tuple(values))
    low, high = _bounds(values, kind, where)
    step = _step(spec.get("step"), kind, low, high, where)
    log = spec.get("log", False)
    if not isinstance(log, bool) or (log and step not in (None, 1)):
        raise ConfigError(f"{where}: log is true or false, and a log scale takes no step")
    return Dimension(key, kind, low, high, step, log)


def _bounds(values: Any, kind: str, where: str) -> tuple[float, float]:
    numbers = isinstance(values, list) and len(values) == 2
    numbers = numbers and all(
        isinstance(v, int | float) and not isinstance(v, bool) for v in values
    )
    if not numbers or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{where}: {kind} needs [low, high], two finite numbers, not {values!r}")
    low, high = values
    if kind == "int" and not all(float(v).is_integer() for v in values):
        raise ConfigError(f"{where}: int bounds must be whole numbers, not {values!r}")
    if low >= high:
        raise ConfigError(f"{where}: low {low} must be below high {high}")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: loguniform needs low > 0 (got {low})")
    return float(low), float(high)


def _step(step: Any, kind: str, low: float, high: float, where: str) -> float | None:
    if step is None:
        return None
    if isinstance(step, bool) or not isinstance(step, int | float) or step <= 0:
        raise ConfigError(f"{where}: step must be a positive number, not {step!r}")
    if kind == "int" and not float(step).is_integer():
        raise ConfigError(f"{where}: an int step must be a whole number, not {step!r}")
    if step > high - low:
        raise ConfigError(f"{where}: step {step} is wider than [{low}, {high}]")
    return float(step)


def check_keys(dimensions: list[Dimension], resolved: dict[str, Any]) -> None:
    """Each key must name a setting of the config (`resolved`: its dump with defaults filled
    in), through mappings and list indices; a key under a section left out (null) is allowed.

    Raises:
        ConfigError: naming the key, the part not found, and a close match.
    """
    for dimension in dimensions:
        node: Any = resolved
        parts = dimension.key.split(".")
        for i, part in enumerate(parts):
            where = ".".join(parts[: i + 1])
            if node is None:
                break
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(
                        f"space {dimension.key}: {where} is not an index of a list of "
                        f"{len(node)} items"
                    )
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                known = list(node) if isinstance(node, dict) else []
                raise ConfigError(
                    f"space {dimension.key}: the config has no key {where}"
                    f"{did_you_mean(part, known)}"
                )


def overrides_for(values: dict[str, Any]) -> list[str]:
    """`--set`-style overrides for sampled values (JSON is YAML, so apply_override reads them)."""
    return [f"{key}={json.dumps(value)}" for key, value in values.items()]


def section_overrides(raw: dict[str, Any], resolved: dict[str, Any], keys: list[str]) -> list[str]:
    """Overrides that write out, from `resolved` (the config with defaults filled in), each
    section a tuned key lies in that the config as written (`raw`) leaves out, so that
    `model.hidden=[64]` lands in the default model (arch mlp) rather than a bare {hidden: ...}."""
    filled: list[str] = []
    for key in keys:
        raw_node: Any = raw
        resolved_node: Any = resolved
        parts = key.split(".")
        for i, part in enumerate(parts[:-1]):
            index: Any = int(part) if isinstance(resolved_node, list) else part
            resolved_node = resolved_node[index] if resolved_node is not None else None
            present = isinstance(raw_node, dict) and raw_node.get(part) is not None
            present = present or (isinstance(raw_node, list) and index < len(raw_node))
            if not present:
                override = f"{'.'.join(parts[: i + 1])}={json.dumps(resolved_node)}"
                if override not in filled:
                    filled.append(override)
                break
            raw_node = raw_node[index]
    return filled
