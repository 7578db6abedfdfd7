"""A smaller student distilled from a trained run: the distillation step of the compress chain.

The student's config is the teacher's with every width scaled (hidden sizes, channels, embedding
and model dimensions; the number of layers kept), trained on the same data and split with
`teacher:` set (see `megalith.training.distill` for the loss).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from megalith.config import validate_config
from megalith.errors import ConfigError
from megalith.run import Run

SHRINKABLE = ("mlp", "cnn", "resnet", "gpt", "seq2seq")
"""Architectures whose widths `student_config` can scale."""


def distill_run(
    teacher: Run,
    output_dir: Path,
    *,
    width: float = 0.5,
    epochs: int | None = None,
    overrides: Sequence[str] = (),
    console: Console | None = None,
) -> Run:
    """Train a student `width` times as wide as `teacher` on its data, learning from it.

    Args:
        teacher: the trained run to distil.
        output_dir: the student's run directory.
        width: factor applied to every width (0.5: half the hidden sizes, channels, dims).
        epochs: train.epochs of the student (default: the teacher's).
        overrides: 'key=value' strings applied to the student's config, as `--set`.
        console: where progress goes (stderr by default).
    Returns:
        The student, loaded back from `output_dir`.
    Raises:
        ConfigError: an architecture that cannot be shrunk (a pretrained model), or a width
            that is not > 0; anything `megalith.train` raises.
    """
    config = student_config(teacher, width)
    if epochs is not None:
        config["train"]["epochs"] = epochs
    # the one stage that trains: through the public `megalith.train`, as a user would
    import megalith

    student = megalith.train(config, output_dir=output_dir, overrides=overrides, console=console)
    return Run.load(student.path)


def student_config(teacher: Run, width: float) -> dict[str, Any]:
    """The teacher's config (as JSON) with its widths scaled by `width` and `teacher:` set."""
    arch = teacher.config.model.arch
    if width <= 0:
        raise ConfigError(f"width must be > 0 (got {width}); 0.5 makes a student half as wide")
    if arch not in SHRINKABLE:
        raise ConfigError(
            f"cannot shrink model.arch {arch} of {teacher.path}: distillation builds students "
            f"for {', '.join(SHRINKABLE)}; write the student's config yourself and train it "
            "with `megalith train STUDENT.yaml --teacher RUN`"
        )
    data = teacher.config.model_dump(mode="json")
    data["model"] = _scaled_model(data["model"], width)
    data["inputs"] = [_scaled_input(feature, width) for feature in data["inputs"]]
    split = teacher.config.data.split  # pinned, so that a student's own seed keeps the rows
    data["data"]["split"]["seed"] = teacher.config.seed if split.seed is None else split.seed
    data["name"] = f"{teacher.config.name}-student"[:100]
    data["teacher"] = str(teacher.path.resolve())
    data["distill"] = None
    validate_config(data)  # a mistake here is ours: report it before any training
    return data


def _scaled(size: int, width: float, multiple: int = 1) -> int:
    """size * width rounded to a multiple of `multiple` (at least `multiple`)."""
    return max(multiple, multiple * round(size * width / multiple))


def _scaled_model(model: dict[str, Any], width: float) -> dict[str, Any]:
    model = dict(model)
    for key in ("hidden", "channels"):
        if isinstance(model.get(key), list):
            model[key] = [_scaled(size, width) for size in model[key]]
    if model["arch"] in ("gpt", "seq2seq"):  # heads kept: the dim stays a multiple of them
        model["dim"] = _scaled(model["dim"], width, model["heads"])
    return model


def _scaled_input(feature: dict[str, Any], width: float) -> dict[str, Any]:
    """Text and sequence encoders and category embeddings scaled; a Transformer encoder's
    embedding stays a multiple of its heads."""
    feature = dict(feature)
    encoder = feature.get("encoder")
    if isinstance(encoder, dict):
        feature["encoder"] = {**encoder, "hidden": _scaled(encoder["hidden"], width)}
    if feature.get("embedding_dim"):
        multiple = encoder["heads"] if encoder and encoder.get("kind") == "transformer" else 1
        feature["embedding_dim"] = _scaled(feature["embedding_dim"], width, multiple)
    return feature
