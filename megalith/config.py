"""The top-level Config: one YAML file (or dict) describing data, features, model and training.

Each section's settings live next to the code they configure; this module assembles them,
applies `--set key=value` overrides and turns validation errors into one line per mistake.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import Field, ValidationError, field_validator, model_validator

from megalith.config_errors import describe_error
from megalith.config_keys import split_override
from megalith.configbase import ConfigModel
from megalith.data.features import InputFeature, OutputFeature
from megalith.data.sources import DataConfig
from megalith.errors import ConfigError
from megalith.models import ModelConfig
from megalith.models.asr import check_asr_features
from megalith.models.mlp import MLPConfig
from megalith.paths import check_readable, resolved
from megalith.recommend.settings import RECOMMENDER_ARCHS, RecommendConfig
from megalith.structured import parse_yaml, read_config_text
from megalith.training.distill import DistillConfig
from megalith.training.loop import TrainConfig
from megalith.tuning.settings import TuneConfig


class Config(ConfigModel):
    """A whole Megalith job."""

    name: str = Field("run", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
    """Name of the run; the run directory is runs/<name>-<timestamp> by default."""
    seed: int = 0
    """Seed for splitting, initialisation and shuffling; a CPU run with a seed is reproducible."""
    data: DataConfig
    """Where the rows come from and how they are split."""
    inputs: list[InputFeature] = []
    """Input columns and their types (number, binary, category, text, image); none for gpt."""
    outputs: list[OutputFeature] = []
    """Target columns and their types (category, binary, number; text for gpt); none for a
    recommender."""
    model: ModelConfig = MLPConfig()
    """The model family (arch) and its settings."""
    train: TrainConfig = TrainConfig()
    """Optimizer, schedule, epochs, precision and the rest of training."""
    tune: TuneConfig | None = None
    """What `megalith tune` searches (ignored by `megalith train`)."""
    teacher: str | None = None
    """A trained run directory this model learns from as well as the labels (distillation)."""
    distill: DistillConfig | None = None
    """How to learn from `teacher`: alpha and temperature (default 0.5 and 2.0)."""
    recommend: RecommendConfig | None = None
    """A recommender's interactions: user / item / rating / timestamp columns, split, loss
    (with model.arch mf, ncf or two_tower; see docs/recommend.md)."""

    @field_validator("inputs", "outputs")
    @classmethod
    def _unique_names(cls, features: list[Any]) -> list[Any]:
        names = [f.name for f in features]
        repeated = sorted(name for name, n in Counter(names).items() if n > 1)
        if repeated:
            raise ValueError(f"column(s) listed twice: {', '.join(repeated)}")
        return features

    @model_validator(mode="after")
    def _features_fit_the_model(self) -> Config:
        texts = [f.name for f in self.outputs if f.type == "text"]
        if self.model.arch in RECOMMENDER_ARCHS or self.recommend is not None:
            self._fit_recommender()
        elif self.data.items is not None or self.data.users is not None:
            raise ValueError(
                "data.items / data.users are a recommender's side tables (model.arch "
                "two_tower with recommend:); a model of inputs and outputs reads data.source"
            )
        elif not self.outputs:
            raise ValueError("outputs: give at least one output column")
        elif self.model.arch == "pretrained":
            self._fit_pretrained(bool(texts))
        elif self.model.arch == "gpt":
            if self.inputs or len(self.outputs) != 1 or not texts:
                raise ValueError(
                    "model.arch gpt is a language model of one text column: give `inputs: []` "
                    "and one output of type text"
                )
        elif self.model.arch == "asr":
            check_asr_features(self.inputs, self.outputs)
        elif self.model.arch == "seq2seq":
            one_text_input = len(self.inputs) == 1 and self.inputs[0].type == "text"
            if not one_text_input or len(self.outputs) != 1 or not texts:
                raise ValueError(
                    "model.arch seq2seq reads one text input and writes one text output"
                )
            if getattr(self.outputs[0], "tokenizer", None) == "pretrained":
                raise ValueError(
                    f"outputs.{texts[0]}.tokenizer: seq2seq fits its own target tokenizer; "
                    "choose bpe, wordpiece, word or char"
                )
        elif not self.inputs:
            raise ValueError("inputs: give at least one input column")
        elif texts:
            raise ValueError(
                f"outputs.{texts[0]}: a text output is written by a language model or a "
                "seq2seq model; use model.arch gpt or seq2seq"
            )
        return self

    def _fit_recommender(self) -> None:
        """Recommenders read the columns named in `recommend:`, not inputs and outputs."""
        if self.model.arch not in RECOMMENDER_ARCHS:
            raise ValueError(
                f"recommend: is read by the recommenders ({', '.join(RECOMMENDER_ARCHS)}); "
                f"model.arch {self.model.arch} takes inputs and outputs instead"
            )
        if self.inputs or self.outputs:
            raise ValueError(
                f"model.arch {self.model.arch} reads the columns named in `recommend:` (user, "
                "item, rating, timestamp); leave inputs and outputs out"
            )
        if self.train.privacy is not None:  # ignored, the run would look private and not be
            raise ValueError(
                f"train.privacy: model.arch {self.model.arch} (a recommender) is not trained "
                "with DP-SGD; only models of inputs and outputs are. Remove train.privacy"
            )
        if self.recommend is None:
            self.recommend = RecommendConfig()

    def _fit_pretrained(self, writes_text: bool) -> None:
        """One text input and one output, or a language model of one text output; the text
        features read the model's own tokenizer."""
        if writes_text:
            if self.inputs or len(self.outputs) != 1:
                raise ValueError(
                    "model.arch pretrained as a language model: give `inputs: []` and one "
                    "output of type text"
                )
        elif len(self.inputs) != 1 or self.inputs[0].type != "text" or len(self.outputs) != 1:
            raise ValueError(
                "model.arch pretrained reads one text input and predicts one category, binary "
                "or number output (or, as a language model, writes one text output)"
            )
        path = getattr(self.model, "path", None)
        for section, feature in [("inputs", f) for f in self.inputs] + [
            ("outputs", f) for f in self.outputs
        ]:
            if feature.type != "text":
                continue
            if "tokenizer" in feature.model_fields_set and feature.tokenizer != "pretrained":
                raise ValueError(
                    f"{section}.{feature.name}.tokenizer: a pretrained model reads the ids of "
                    "its own tokenizer; leave tokenizer out"
                )
            feature.tokenizer = "pretrained"
            if feature.tokenizer_path is None:
                feature.tokenizer_path = path

    @model_validator(mode="after")
    def _distill_has_a_teacher(self) -> Config:
        if self.distill is not None and not self.teacher:
            raise ValueError(
                "distill is set but there is no teacher: give `teacher: RUN_DIR` "
                "(or --teacher RUN_DIR), or remove distill"
            )
        return self

    @model_validator(mode="after")
    def _targets_are_not_inputs(self) -> Config:
        both = {f.name for f in self.inputs} & {f.name for f in self.outputs}
        if both:
            raise ValueError(f"column(s) both input and output: {', '.join(sorted(both))}")
        return self


def is_language_model(cfg: Config) -> bool:
    """A model that writes a text corpus: gpt, or a pretrained causal language model."""
    return cfg.model.arch == "gpt" or (
        cfg.model.arch == "pretrained" and cfg.outputs[0].type == "text"
    )


def load_config(
    source: str | Path | Mapping[str, Any] | Config, overrides: Sequence[str] = ()
) -> tuple[Config, Path]:
    """Read, override and validate a config; also return the folder paths resolve in."""
    origin = "config"
    if isinstance(source, Config):
        data: dict[str, Any] = source.model_dump(mode="json", exclude_unset=True)
        base_dir = Path.cwd()
    elif isinstance(source, Mapping):
        data, base_dir = copy.deepcopy(dict(source)), Path.cwd()  # overrides leave it alone
    else:
        path = Path(source)
        data, base_dir = read_yaml(path), resolved(path).parent
        origin = str(path)
    for override in overrides:
        apply_override(data, override)
    return validate_config(data, origin=origin), base_dir


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from a file, with the line of any syntax error.

    Raises:
        ConfigError: the file is missing, larger than a config can be (1 MB unless
            $MEGALITH_MAX_CONFIG_BYTES says otherwise), invalid YAML, repeats a key, is nested
            too deeply, or is not a mapping.
    """
    check_readable(path, "config file", error=ConfigError)  # a FIFO would block the read
    data = parse_yaml(read_config_text(path), str(path))
    if data is None:
        raise ConfigError(f"{path}: the config file is empty; it needs data, inputs and outputs")
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: a config must be a YAML mapping (key: value), not {type(data).__name__}"
        )
    return data


def apply_override(data: dict[str, Any], override: str) -> None:
    """Apply 'a.b.c=value' in place; the value is parsed as YAML (3 -> int, [1,2] -> list).
    A key part holding '.' is quoted: 'model.modality_dropout_by_input."a.b"=0.3' (or ["a.b"]).
    """
    parts, raw = split_override(override)
    key = ".".join(parts)
    value = _override_value(override, raw)
    node: Any = data
    for i, part in enumerate(parts[:-1]):
        node = _child(node, part, create=True, where=".".join(parts[: i + 1]))
    last = parts[-1]
    if isinstance(node, list):
        node[_list_index(node, last, key)] = value
    elif isinstance(node, dict):
        node[last] = value
    else:
        parent = ".".join(parts[:-1])
        raise ConfigError(
            f"--set {key.strip()}: {parent} holds {node!r}, not a mapping with a key '{last}'"
        )


def _override_value(override: str, raw: str) -> Any:
    """The YAML value of --set, or the text itself when it is not YAML ('a: b' or 2020-13-45);
    a value nested too deeply, or repeating a key, is refused."""
    if not raw.strip():
        return raw
    return parse_yaml(raw, f"--set '{_shortened(override)}'", text_if_invalid=True)


def _shortened(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[: most - 3] + "..."


def _child(node: Any, part: str, create: bool, where: str) -> Any:
    if isinstance(node, list):
        return node[_list_index(node, part, where)]
    if not isinstance(node, dict):
        raise ConfigError(f"--set {where}: '{part}' is inside a value that is not a mapping")
    if part not in node or node[part] is None:
        node[part] = {}
    return node[part]


def _list_index(node: list[Any], part: str, where: str) -> int:
    if not part.isdigit() or int(part) >= len(node):
        raise ConfigError(f"--set {where}: '{part}' is not an index of a list of {len(node)} items")
    return int(part)


def validate_config(data: Mapping[str, Any], *, origin: str = "config") -> Config:
    """A Config, or a ConfigError listing every mistake with its path (`origin`: the file)."""
    try:
        return Config.model_validate(data)
    except ValidationError as error:
        problems: dict[str, list[str]] = {}  # path -> problems, e.g. one per member of a union
        shown: dict[str, str] = {}
        for e in error.errors():
            path, problem, value = describe_error(e, Config)
            if problem not in problems.setdefault(path, []):
                problems[path].append(problem)
            shown.setdefault(path, value)
        lines = [f"{path}: {'; or '.join(p)}{shown[path]}" for path, p in problems.items()]
        where = "invalid config" if origin == "config" else f"{origin}: invalid config"
        raise ConfigError(f"{where}:\n  " + "\n  ".join(lines)) from None


class _Dumper(yaml.SafeDumper):
    """SafeDumper that double-quotes text holding a Unicode line break.

    In a plain or single-quoted scalar PyYAML would write U+0085 / U+2028 / U+2029 raw, and read
    them back as folded line breaks: a column named with one would not survive the round trip.
    """


def _represent_text(dumper: yaml.SafeDumper, text: str) -> yaml.ScalarNode:
    style = '"' if any(c in text for c in "\x85\u2028\u2029") else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_text)


def config_to_yaml(config: Config) -> str:
    """The fully resolved config as YAML, defaults filled in, keys in declaration order."""
    return yaml.dump(
        config.model_dump(mode="json"), Dumper=_Dumper, sort_keys=False, allow_unicode=True
    )
