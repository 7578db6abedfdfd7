"""The settings of `megalith compress`: typed, validated with key paths, read from the CLI's
options or from a `compress:` block of a YAML file."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator

from megalith.configbase import ConfigModel
from megalith.errors import ConfigError, did_you_mean

STEP_ORDER = ("distill", "prune", "quantize")
"""The named steps in the only order they may run: quantize writes a bundle, so it is last."""


class CompressSettings(ConfigModel):
    """What `megalith compress` does to a run, and the gates each step must pass."""

    steps: list[str] = Field(default_factory=lambda: ["quantize"])
    """The steps, in order: distill, prune, quantize (a subset, in that order)."""
    prune: float = Field(0.5, gt=0.0, lt=1.0)
    """prune: the fraction of the MACs (or, by channels, of each layer's channels) removed."""
    prune_by: Literal["macs", "channels"] = "macs"
    """prune: macs (widths aligned to 16, one keep fraction, MACs cut by `prune`) or channels."""
    finetune_epochs: int | None = Field(None, ge=1)
    """prune: epochs of fine-tuning after pruning (default: the pruning step's own)."""
    distill_width: float = Field(0.5, gt=0.0, le=1.0)
    """distill: the student's widths as a fraction of the teacher's."""
    distill_epochs: int | None = Field(None, ge=1)
    """distill: the student's train.epochs (default: the teacher's)."""
    quantize: Literal["int8"] = "int8"
    """quantize: the number format (int8 through ONNX Runtime)."""
    scheme: Literal["auto", "dynamic", "static"] = "auto"
    """quantize: dynamic (MatMul-heavy graphs), static with calibration (convolutions), or auto."""
    calibration_rows: int = Field(256, gt=0)
    """quantize (static): rows of the train split used to calibrate activation ranges."""
    max_metric_drop: float = Field(1.0, ge=0.0)
    """Gate: the most the watched metric may fall below the original, in points (0.01)."""
    min_speedup: float = Field(1.05, gt=0.0)
    """Gate: latency of the previous accepted model / this step's, at batch 1 and 32, at least."""
    watch: str | None = None
    """The test metric the gate watches (default: see megalith.compress.gates.watched_metric)."""
    force: bool = False
    """Take every step forward, even one the gates reject (still reported)."""
    threads: int | None = Field(None, gt=0)
    """ONNX Runtime intra-op threads for timing (default: the machine's CPU count)."""
    timing_runs: int = Field(50, ge=5)
    """Timed runs per model and batch size (the median is reported), after warm-up."""

    @field_validator("steps", mode="before")
    @classmethod
    def _steps_may_be_one_string(cls, steps: object) -> object:
        """`steps: prune,quantize` in a YAML file, as on the command line."""
        if isinstance(steps, str):
            return [step.strip() for step in steps.split(",") if step.strip()]
        return steps

    @field_validator("steps")
    @classmethod
    def _known_steps_in_order(cls, steps: list[str]) -> list[str]:
        check_step_names(steps)
        return steps


def check_step_names(steps: list[str]) -> None:
    """Named steps must be known, appear once and follow STEP_ORDER.

    Raises:
        ValueError: naming the step and the order to use (pydantic adds the key path).
    """
    if not steps:
        raise ValueError("give at least one step: distill, prune or quantize")
    for step in steps:
        if step not in STEP_ORDER:
            raise ValueError(f"unknown step '{step}'{did_you_mean(step, STEP_ORDER)}")
    if len(set(steps)) != len(steps):
        raise ValueError(f"a step appears twice in {','.join(steps)}")
    if sorted(steps, key=STEP_ORDER.index) != steps:
        wanted = ",".join(sorted(steps, key=STEP_ORDER.index))
        raise ValueError(
            f"steps {','.join(steps)} are out of order; they run as distill -> prune -> "
            f"quantize (quantize writes a bundle, so it comes last): use {wanted}"
        )


def validate_settings(data: dict[str, Any], origin: str = "compress") -> CompressSettings:
    """CompressSettings from a mapping, or a ConfigError listing each mistake with its path
    (`origin`: where the mapping came from, e.g. `compress.yaml: compress`)."""
    try:
        return CompressSettings.model_validate(data)
    except ValidationError as error:
        lines = []
        for problem in error.errors():
            path = ".".join(str(part) for part in problem["loc"])
            message = str(problem["msg"]).removeprefix("Value error, ")
            if problem["type"] == "extra_forbidden":
                hint = did_you_mean(path.split(".")[-1], CompressSettings.model_fields)
                message = f"unknown key{hint}"
            lines.append(f"{origin}.{path}: {message}")
        raise ConfigError("invalid compress settings:\n  " + "\n  ".join(lines)) from None


def read_settings_file(path: Path) -> dict[str, Any]:
    """The `compress:` block of a YAML file (the file may hold a whole run config too).

    Raises:
        ConfigError: the file cannot be read, or has no `compress:` mapping.
    """
    from megalith.config import read_yaml

    data = read_yaml(path)
    block = data.get("compress")
    if not isinstance(block, dict):
        raise ConfigError(
            f"{path}: no `compress:` block; write the settings under it, e.g. "
            "compress: {steps: [prune, quantize], prune: 0.5}"
        )
    return block
