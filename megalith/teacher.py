"""The teacher of a distilled run (`teacher: RUN`): loaded, checked against the student before
step 0, its encoding of the train rows prepared, and recorded in RUN/teacher.json.

The losses themselves are `megalith.training.distill`; this module sits beside the training
orchestration (`megalith.pipeline`) because it loads a `Run`.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from megalith.config import Config, is_language_model
from megalith.data.features.binary import BinaryOutputEncoder
from megalith.data.features.category import CategoryOutputEncoder
from megalith.data.features.image import ImageInput
from megalith.data.features.image_augment import resolve_augment
from megalith.data.features.number import NumberOutputEncoder
from megalith.data.preprocess import Preprocessor
from megalith.data.sources import Table
from megalith.data.tensors import TensorTable
from megalith.device import resolve_compile, resolve_device
from megalith.errors import ConfigError, DataError, MegalithError, RunError
from megalith.models import GPTConfig
from megalith.paths import resolved
from megalith.run import Run
from megalith.run_data import split_data, transform_split
from megalith.runs import RunDir
from megalith.training.distill import (
    TEACHER_PREFIX,
    ConsistentAugmenter,
    DistillationLoss,
    DistillConfig,
    OutputAlignment,
)
from megalith.training.loop import TrainJob

TEACHER_FILE = "teacher.json"
"""In a distilled run's directory: its teacher, the teacher's test metrics, both sizes."""


def teacher_override(teacher: str | Path | Run | None) -> list[str]:
    """`--teacher RUN` (or `train(teacher=...)`) as a `--set` override, the path made absolute
    from the current directory (a config's own `teacher:` resolves from the config's folder)."""
    if teacher is None:
        return []
    path = teacher.path if isinstance(teacher, Run) else Path(teacher)
    return [f"teacher={json.dumps(str(resolved(path)))}"]


@dataclass
class Teacher:
    """A loaded teacher, checked against its student, with its inputs for the train rows."""

    run: Run
    config: DistillConfig
    alignments: dict[str, OutputAlignment]
    inputs: dict[str, torch.Tensor]
    """`teacher:NAME` -> the teacher's encoding of the student's train rows, row for row."""

    def distill(self, job: TrainJob) -> TrainJob:
        """The job with the teacher's inputs among its train targets and the distillation
        loss; the student's model, data and schedule are unchanged. With augmentation the
        teacher reads the student's augmented images (`ConsistentAugmenter`)."""
        train = TensorTable(
            inputs=job.train.inputs,
            targets={**job.train.targets, **self.inputs},
            rows=job.train.rows,
        )
        device = job.distributed.device(resolve_device(job.config.device))
        compiled = resolve_compile(job.config.compile, device)
        loss = DistillationLoss(self.run.model, self.config, self.alignments, compiled)
        augment = ConsistentAugmenter(job.augment, loss) if job.augment is not None else None
        return dataclasses.replace(job, train=train, loss=loss, augment=augment)

    def record(self, run_dir: RunDir, student: nn.Module) -> dict[str, Any]:
        """Write RUN/teacher.json (and put the teacher back on the CPU); returns its content."""
        self.run.model.cpu()
        record = {
            "path": str(self.run.path),
            "alpha": self.config.alpha,
            "temperature": self.config.temperature,
            "parameters": {
                "teacher": sum(p.numel() for p in self.run.model.parameters()),
                "student": sum(p.numel() for p in student.parameters()),
            },
            "teacher_test_metrics": self.run.metrics.get("test", {}),
        }
        run_dir.write_json(run_dir.path / TEACHER_FILE, record)
        return record


def attach_teacher(
    cfg: Config,
    preprocessor: Preprocessor,
    splits: Mapping[str, pd.DataFrame],
    table: Table,
    train: TensorTable,
    resuming: bool = False,
) -> Teacher | None:
    """Load `cfg.teacher` and check it can teach this student, before anything is written.

    Args:
        cfg: the student's config (paths already absolute).
        preprocessor: the student's fitted preprocessing.
        splits: the student's split rows; table: the table they came from.
        train: the student's encoded train split.
        resuming: a checkpoint is being resumed (a missing teacher is then one that moved).
    Raises:
        RunError: the teacher run cannot be loaded.
        ConfigError: it predicts other outputs, classes or vocabularies, or learned from
            other data (or from the student's test rows).
        DataError: it cannot encode some of the student's train rows.
    """
    if not cfg.teacher:
        return None
    teacher = _load_teacher(Path(cfg.teacher), resuming)
    _check_same_task(cfg, teacher)
    _check_same_data(cfg, teacher, table, splits)
    alignments = {
        feature.name: _alignment(feature.name, encoder, teacher_encoder, teacher.path)
        for feature, encoder, teacher_encoder in zip(
            cfg.outputs, preprocessor.outputs, _outputs_by_name(cfg, teacher), strict=True
        )
    }
    _check_lengths(cfg, preprocessor, teacher)
    _check_views(cfg, preprocessor, teacher)
    inputs = _teacher_inputs(cfg, teacher, splits["train"], table, train)
    return Teacher(teacher, cfg.distill or DistillConfig(), alignments, inputs)


def _load_teacher(path: Path, resuming: bool) -> Run:
    if not path.is_dir() and resuming:  # the checkpoint fits only the teacher it learned from
        raise RunError(
            f"teacher {path}: no such run directory; this run was distilled from it, and a "
            f"resumed run must learn from the same teacher: put the teacher back at that path "
            f"(or start a new run with --teacher NEW_PATH)"
        )
    if not path.is_dir():
        raise RunError(f"teacher {path}: no such run directory; give a trained run's directory")
    try:
        return Run.load(path)
    except MegalithError as error:
        raise RunError(f"teacher {path} cannot be loaded: {error}") from None


def _check_same_task(cfg: Config, teacher: Run) -> None:
    """The same outputs (names and types), and the same kind of model for text outputs."""
    mine = {f.name: f.type for f in cfg.outputs}
    theirs = {f.name: f.type for f in teacher.config.outputs}
    if mine != theirs:
        raise ConfigError(
            f"teacher {teacher.path} predicts {_listed(theirs)} but this model predicts "
            f"{_listed(mine)}: a teacher must predict the same outputs, with the same types"
        )
    if is_language_model(cfg) != is_language_model(teacher.config):
        raise ConfigError(
            f"teacher {teacher.path} is {teacher.config.model.arch} and this model is "
            f"{cfg.model.arch}: a language model learns only from a language model, a "
            "seq2seq model from a seq2seq model"
        )


def _listed(features: Mapping[str, str]) -> str:
    return ", ".join(f"{name} ({kind})" for name, kind in features.items())


def _check_same_data(
    cfg: Config, teacher: Run, table: Table, splits: Mapping[str, pd.DataFrame]
) -> None:
    """The same data source, and none of the student's test rows in the teacher's train split
    (the student would learn their labels through the teacher: flattering test metrics)."""
    source = teacher.config.data.source
    if source != cfg.data.source:
        raise ConfigError(
            f"teacher {teacher.path} learned from {source} but data.source is "
            f"{cfg.data.source}: distil on the teacher's data"
        )
    leaked = _leaked_rows(teacher, table, splits["test"])
    if leaked:
        seed = teacher.config.data.split.seed
        seed = teacher.config.seed if seed is None else seed
        raise ConfigError(
            f"{leaked} of this run's test rows are in the train split of teacher "
            f"{teacher.path}: split the data like the teacher (data.split as in its "
            f"config.yaml, with data.split.seed: {seed})"
        )


def _leaked_rows(teacher: Run, table: Table, test: pd.DataFrame) -> int:
    theirs = split_data(teacher.config, table)["train"]
    return int(test.index.isin(theirs.index).sum())


def _outputs_by_name(cfg: Config, teacher: Run) -> list[Any]:
    """The teacher's output encoders in the order of the student's outputs."""
    names = [feature.name for feature in teacher.config.outputs]
    return [teacher.preprocessor.outputs[names.index(f.name)] for f in cfg.outputs]


def _alignment(name: str, student: Any, teacher: Any, where: Path) -> OutputAlignment:
    """How the teacher's output is read in the student's terms, or ConfigError when it cannot."""
    if isinstance(student, CategoryOutputEncoder):
        mine, theirs = [str(c) for c in student.classes], [str(c) for c in teacher.classes]
        if set(mine) != set(theirs) or len(mine) != len(theirs):
            only_teacher = sorted(set(theirs) - set(mine))
            only_student = sorted(set(mine) - set(theirs))
            raise ConfigError(
                f"output '{name}': teacher {where} knows other classes than this model "
                f"(only the teacher: {only_teacher or 'none'}; only this model: "
                f"{only_student or 'none'}): distillation needs the same classes"
            )
        return OutputAlignment(order=tuple(theirs.index(c) for c in mine))
    if isinstance(student, BinaryOutputEncoder):
        mine = [student.codec.negative, student.codec.positive]
        theirs = [teacher.codec.negative, teacher.codec.positive]
        if mine == theirs:
            return OutputAlignment()
        if mine == theirs[::-1]:
            return OutputAlignment(flip=True)
        raise ConfigError(
            f"output '{name}': teacher {where} learned the values {theirs} (negative, "
            f"positive), this model {mine}: distillation needs the same two values"
        )
    if isinstance(student, NumberOutputEncoder):
        s, t = student.spec(), teacher.spec()
        return OutputAlignment(scale=t.std / s.std, shift=(t.mean - s.mean) / s.std)
    if student.tokenizer.state() != teacher.tokenizer.state():
        raise ConfigError(
            f"output '{name}': teacher {where} writes tokens of another vocabulary; token-level "
            "distillation compares both models' probability of every next token, so the "
            "student needs the teacher's tokenizer: the same tokenizer and vocab_size fitted "
            "on the same train split"
        )
    return OutputAlignment()


def _check_lengths(cfg: Config, student: Preprocessor, teacher: Run) -> None:
    """A text teacher reads the student's token rows: they must fit its positions."""
    theirs = teacher.config.model
    if isinstance(cfg.model, GPTConfig) and isinstance(theirs, GPTConfig):
        if theirs.context < cfg.model.context:
            raise ConfigError(
                f"model.context {cfg.model.context} is longer than teacher {teacher.path}'s "
                f"{theirs.context}; use a context of at most {theirs.context}"
            )
    elif cfg.model.arch == "seq2seq":
        mine = student.output_specs[0].shape[0]
        longest = teacher.preprocessor.output_specs[0].shape[0]
        if longest < mine:
            raise ConfigError(
                f"outputs.{cfg.outputs[0].name}: this model writes up to {mine} tokens, teacher "
                f"{teacher.path} up to {longest}; give the output a max_length of at most "
                f"{longest - 2}"
            )


def _check_views(cfg: Config, student: Preprocessor, teacher: Run) -> None:
    """An augmented image input is shown to the teacher as the student sees it (resized to the
    teacher's size if need be): the two must read the same number of channels."""
    augmented = {
        feature.name
        for feature in cfg.inputs
        if isinstance(feature, ImageInput) and resolve_augment(feature.augment).enabled
    }
    theirs = {spec.name: spec for spec in teacher.preprocessor.input_specs}
    for spec in student.input_specs:
        other = theirs.get(spec.name)
        if spec.name in augmented and other is not None and other.shape[0] != spec.shape[0]:
            raise ConfigError(
                f"inputs.{spec.name}: this model augments {spec.shape[0]}-channel images and "
                f"teacher {teacher.path} reads {other.shape[0]} channels; the teacher is shown "
                f"the student's augmented images, so give inputs.{spec.name}.channels: "
                f"{other.shape[0]} (or remove its augment)"
            )


def _teacher_inputs(
    cfg: Config, teacher: Run, frame: pd.DataFrame, table: Table, train: TensorTable
) -> dict[str, torch.Tensor]:
    """The teacher's encoding of the student's train rows, in the student's row order.

    Inputs named like a text output (a language model's tokens, a seq2seq decoder's input)
    are the student's own: the vocabularies are the same and the positions must line up.
    """
    texts = {f.name for f in cfg.outputs if f.type == "text"}
    if is_language_model(cfg):
        encoded = train
    else:
        encoded = transform_split(teacher.config, teacher.preprocessor, frame, table, "train")
    position = _positions(encoded.rows, train.rows, teacher.path)
    return {
        TEACHER_PREFIX + name: train.inputs[name] if name in texts else tensor[position]
        for name, tensor in encoded.inputs.items()
    }


def _positions(theirs: np.ndarray, mine: np.ndarray, where: Path) -> torch.Tensor:
    """Index into the teacher's rows giving the student's rows in order."""
    if len(theirs) == len(mine) and (theirs == mine).all():
        return torch.arange(len(mine))
    at = pd.Index(theirs).get_indexer(mine)
    if (at < 0).any():
        missing = [str(row) for row in mine[at < 0][:3]]
        raise DataError(
            f"teacher {where} cannot encode {int((at < 0).sum())} of the train rows (e.g. row "
            f"{', '.join(missing)}), which its preprocessing drops: clean those rows"
        )
    return torch.from_numpy(at)
