"""Preprocessing fitted on the train split: table rows -> tensors, model outputs -> predictions.

One encoder per configured feature (see megalith/data/features/). The fitted state is plain JSON
(`preprocessor.json` in the run directory), never a pickle, so a later stage or another machine
rebuilds exactly the same transform from the config and the state alone. Encoding is numpy
(`encode_inputs`); this module imports torch only to wrap those arrays for training
(`transform`), so the torch-free runtime (megalith.runtime) uses it as it is.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable, Hashable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd
import pydantic

from megalith.configbase import ConfigModel
from megalith.data.arrays import to_tensor
from megalith.data.column_checks import (
    FIX_CONFIG,
    check_columns,
    check_unique_names,
    column_advice,
)
from megalith.data.features import InputFeature, OutputFeature
from megalith.data.features.audio import AudioInputEncoder
from megalith.data.features.binary import BinaryInputEncoder, BinaryOutputEncoder
from megalith.data.features.category import CategoryInputEncoder, CategoryOutputEncoder
from megalith.data.features.image import ImageInputEncoder
from megalith.data.features.names import SetInputEncoder
from megalith.data.features.number import NumberInputEncoder, NumberOutputEncoder
from megalith.data.features.sequence import SequenceInputEncoder
from megalith.data.features.text import TextInputEncoder, TextOutputEncoder, text_cells
from megalith.data.rows import describe_rows
from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import DataError, RunError, cannot_write
from megalith.structured import parse_json

if TYPE_CHECKING:
    import torch

    from megalith.data.tensors import TensorTable

FORMAT = "megalith.preprocessor"
VERSION = 1


class InputEncoder(Protocol):
    """What every input encoder offers (see megalith/data/features/*.py)."""

    @property
    def config(self) -> ConfigModel: ...
    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None: ...
    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor: ...
    def encode(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> np.ndarray: ...
    def state(self) -> dict[str, Any]: ...
    def spec(self) -> InputSpec: ...


class OutputEncoder(Protocol):
    """An encoder for a target, which also turns model outputs back into predictions."""

    @property
    def config(self) -> ConfigModel: ...
    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None: ...
    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor: ...
    def decode(self, outputs: torch.Tensor | np.ndarray) -> dict[str, Any]: ...
    def state(self) -> dict[str, Any]: ...
    def spec(self) -> OutputSpec: ...


# feature type -> encoder(config, state or None)
_INPUT_ENCODERS: dict[str, Callable[[Any, dict[str, Any] | None], InputEncoder]] = {
    "number": NumberInputEncoder,
    "binary": BinaryInputEncoder,
    "category": CategoryInputEncoder,
    "image": ImageInputEncoder,
    "text": TextInputEncoder,
    "sequence": SequenceInputEncoder,
    "audio": AudioInputEncoder,
    "set": SetInputEncoder,
}
_OUTPUT_ENCODERS: dict[str, Callable[[Any, dict[str, Any] | None], OutputEncoder]] = {
    "number": NumberOutputEncoder,
    "binary": BinaryOutputEncoder,
    "category": CategoryOutputEncoder,
    "text": TextOutputEncoder,
}
_INPUT_CONFIG: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(InputFeature)
_OUTPUT_CONFIG: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(OutputFeature)


class Preprocessor:
    """Fitted encoders for the inputs and outputs of one model.

    `last_dropped` maps each output name to the index labels of the rows that the latest `fit` or
    `transform` dropped because that target was missing (a row missing two targets is listed under
    both); `dropped_notices()` words it for people.
    """

    def __init__(self, inputs: list[InputEncoder], outputs: list[OutputEncoder]) -> None:
        self.inputs = inputs
        self.outputs = outputs
        self.last_dropped: dict[str, list[Hashable]] = {}
        self.trained_model: str | None = None
        """The run or bundle whose model this preprocessor feeds, once loaded for it: a missing
        column is then the data's fault, not the config's, and the error says so."""

    @classmethod
    def fit(
        cls,
        inputs: Sequence[InputFeature],
        outputs: Sequence[OutputFeature],
        train: pd.DataFrame,
        *,
        base_dir: Path | None,
        origin: str,
    ) -> Preprocessor:
        """Fit every encoder on the train rows (rows with a missing target dropped first).

        Raises:
            DataError: a column is absent, train is empty, or a value cannot be encoded.
        """
        check_unique_names(inputs, "inputs")
        check_unique_names(outputs, "outputs")
        preprocessor = cls(
            [_INPUT_ENCODERS[c.type](c, None) for c in inputs],
            [_OUTPUT_ENCODERS[c.type](c, None) for c in outputs],
        )
        names = [c.name for c in [*inputs, *outputs]]
        check_columns(train, names, origin, FIX_CONFIG)
        train = preprocessor._drop_missing_targets(train, origin)
        if len(train) == 0:
            raise DataError(f"{origin}: the train split has no rows (with a target) to fit on.")
        encoders: list[InputEncoder | OutputEncoder] = [*preprocessor.inputs, *preprocessor.outputs]
        for encoder in encoders:
            encoder.fit(train[_name(encoder.config)], where=origin, base_dir=base_dir)
        return preprocessor

    def transform(
        self,
        frame: pd.DataFrame,
        *,
        base_dir: Path | None,
        origin: str,
        with_targets: bool = True,
    ) -> TensorTable:
        """Encode a frame; with targets, rows whose target is missing are dropped (`last_dropped`).

        Raises:
            DataError: a column is absent, a target is missing where it may not be, or a value
                cannot be encoded; the message names the column, the row and the value.
        """
        columns = [_name(e.config) for e in self.inputs]
        if with_targets:
            columns += [_name(e.config) for e in self.outputs]
        check_columns(frame, columns, origin, self._column_advice(columns))
        if with_targets:
            frame = self._drop_missing_targets(frame, origin)
        else:
            self.last_dropped = {}
        inputs = {
            name: to_tensor(array)
            for name, array in self._encode_inputs(frame, base_dir=base_dir, origin=origin).items()
        }
        targets = {
            _name(e.config): e.transform(frame[_name(e.config)], where=origin, base_dir=base_dir)
            for e in (self.outputs if with_targets else [])
        }
        from megalith.data.tensors import TensorTable

        return TensorTable(inputs=inputs, targets=targets, rows=frame.index.to_numpy())

    def encode_inputs(
        self, frame: pd.DataFrame, *, base_dir: Path | None, origin: str
    ) -> dict[str, np.ndarray]:
        """Encode the input columns of a frame as numpy arrays, one per input (shapes and dtypes
        as in megalith.data.specs); the arrays `transform` wraps as tensors.

        Raises:
            DataError: an input column is absent, or a value cannot be encoded.
        """
        columns = [_name(e.config) for e in self.inputs]
        check_columns(frame, columns, origin, self._column_advice(columns, frame.columns))
        self.last_dropped = {}
        return self._encode_inputs(frame, base_dir=base_dir, origin=origin)

    def _column_advice(self, columns: Sequence[str], present: Iterable[object] = ()) -> str:
        configs = [e.config for e in self.inputs]
        return column_advice(self.trained_model, configs, columns, present)

    def _encode_inputs(
        self, frame: pd.DataFrame, *, base_dir: Path | None, origin: str
    ) -> dict[str, np.ndarray]:
        return {
            _name(e.config): e.encode(frame[_name(e.config)], where=origin, base_dir=base_dir)
            for e in self.inputs
        }

    def transform_corpus(self, frame: pd.DataFrame, *, context: int, origin: str) -> TensorTable:
        """A language model's rows: its text column's documents cut into `context`-token windows.

        Raises:
            DataError: the text column is absent.
        """
        from megalith.data.corpus import language_model_windows

        (encoder,) = self.outputs
        assert isinstance(encoder, TextOutputEncoder), "a language model has one text output"
        check_columns(
            frame, [encoder.config.name], origin, self._column_advice([encoder.config.name])
        )
        documents = frame[encoder.config.name].dropna()
        return language_model_windows(encoder, text_cells(documents), context)

    def _drop_missing_targets(self, frame: pd.DataFrame, origin: str) -> pd.DataFrame:
        """Remove rows with a missing target (one mask for all outputs); missing='error' raises."""
        drop = np.zeros(len(frame), dtype=bool)
        self.last_dropped = {}
        for encoder in self.outputs:
            name = _name(encoder.config)
            missing = frame[name].isna().to_numpy()
            if not missing.any():
                continue
            if getattr(encoder.config, "missing", "drop") == "error":
                raise DataError(
                    f"{origin}: target '{name}' is missing in "
                    f"{describe_rows(frame.index[missing])}; fill these cells, or set "
                    "'missing: drop' on this output to skip the rows."
                )
            self.last_dropped[name] = frame.index[missing].tolist()
            drop |= missing
        return frame[~drop] if drop.any() else frame

    def dropped_notices(self) -> list[str]:
        """One line per output: "dropped 3 rows whose target 'label' is missing (rows 4, 9, 17)"."""
        return [
            f"dropped {len(rows)} row{'s' if len(rows) > 1 else ''} whose target '{name}' is "
            f"missing ({describe_rows(rows, limit=10)})"
            for name, rows in self.last_dropped.items()
        ]

    def check_features(
        self,
        inputs: Sequence[InputFeature],
        outputs: Sequence[OutputFeature],
        *,
        where: str | Path,
    ) -> None:
        """Make sure this state was fitted for these features (names and types, in order).

        Raises:
            RunError: naming `where` (the preprocessor file) and both lists of features.
        """
        for group, features, encoders in (
            ("inputs", inputs, self.inputs),
            ("outputs", outputs, self.outputs),
        ):
            expected = [f"{f.name} ({f.type})" for f in features]
            found = [f"{_name(e.config)} ({getattr(e.config, 'type', '?')})" for e in encoders]
            if found != expected:
                raise RunError(
                    f"{where} was fitted for other {group} than the config names "
                    f"({', '.join(found) or 'none'} instead of {', '.join(expected)}); "
                    "the run directory is damaged or mixed up: retrain it."
                )

    @property
    def input_specs(self) -> list[InputSpec]:
        return [encoder.spec() for encoder in self.inputs]

    @property
    def output_specs(self) -> list[OutputSpec]:
        return [encoder.spec() for encoder in self.outputs]

    def decode(self, outputs: dict[str, torch.Tensor] | dict[str, np.ndarray]) -> pd.DataFrame:
        """Model outputs -> one column of predictions per output (named as the output), plus
        `{name}_prob_{value}` columns for category and binary outputs."""
        return pd.DataFrame(self.decode_columns(outputs))

    def decode_columns(self, outputs: dict[str, Any]) -> dict[str, Any]:
        """`decode`'s columns, name -> a list or 1-D array of rows, before any DataFrame."""
        columns: dict[str, Any] = {}
        for encoder in self.outputs:
            name = _name(encoder.config)
            if name not in outputs:
                raise KeyError(f"model outputs lack '{name}' (got: {', '.join(outputs)})")
            columns.update(encoder.decode(outputs[name]))
        return columns

    def to_json(self) -> dict[str, Any]:
        """The configs and fitted states, as plain JSON values."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "inputs": [_entry(encoder.config, encoder.state()) for encoder in self.inputs],
            "outputs": [_entry(encoder.config, encoder.state()) for encoder in self.outputs],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preprocessor:
        """Rebuild from `to_json()` output.

        Raises:
            DataError: the data is not a Megalith preprocessor, or is from a newer version.
        """
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise DataError(f"not a Megalith preprocessor (expected format '{FORMAT}').")
        if data.get("version") != VERSION:
            raise DataError(
                f"preprocessor version {data.get('version')!r} is not supported (this Megalith "
                f"reads version {VERSION}); use the Megalith version that trained the run."
            )
        try:
            inputs = [_rebuild(e, _INPUT_CONFIG, _INPUT_ENCODERS) for e in data["inputs"]]
            outputs = [_rebuild(e, _OUTPUT_CONFIG, _OUTPUT_ENCODERS) for e in data["outputs"]]
        except (KeyError, TypeError, ValueError) as error:  # pydantic's ValidationError included
            raise DataError(f"the preprocessor state is invalid ({error}).") from None
        return cls(inputs, outputs)

    def save(self, path: Path) -> None:
        """Write JSON atomically: a temporary file in the same folder, then renamed over `path`."""
        path = Path(path)
        text = json.dumps(self.to_json(), indent=1, allow_nan=False)
        try:
            with tempfile.NamedTemporaryFile(
                "w", dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
            ) as handle:
                temporary = Path(handle.name)
                try:
                    handle.write(text)
                    handle.flush()
                    os.fsync(handle.fileno())
                except BaseException:
                    handle.close()
                    temporary.unlink(missing_ok=True)
                    raise
            try:
                os.replace(temporary, path)
            except BaseException:
                temporary.unlink(missing_ok=True)
                raise
        except OSError as error:
            raise cannot_write(path, error) from error

    @classmethod
    def load(cls, path: Path) -> Preprocessor:
        """Read a file written by `save`.

        Raises:
            DataError: the file is missing, is not JSON, or is not a valid preprocessor.
        """
        path = Path(path)
        try:
            data = parse_json(path.read_text(encoding="utf-8"), str(path), DataError)
        except FileNotFoundError:
            raise DataError(
                f"{path}: preprocessor file not found; is this a finished run?"
            ) from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise DataError(f"{path}: cannot read the preprocessor ({error}).") from None
        try:
            return cls.from_json(data)
        except DataError as error:
            raise DataError(f"{path}: {error}") from None


def _name(config: ConfigModel) -> str:
    return str(getattr(config, "name"))  # noqa: B009 - every feature config has a name


def _entry(config: ConfigModel, state: dict[str, Any]) -> dict[str, Any]:
    return {"config": config.model_dump(mode="json"), "state": state}


def _rebuild(
    entry: dict[str, Any],
    configs: pydantic.TypeAdapter[Any],
    encoders: dict[str, Callable[[Any, dict[str, Any] | None], Any]],
) -> Any:
    config = configs.validate_python(entry["config"])
    return encoders[config.type](config, dict(entry["state"]))
