"""`Bundle`: an exported model loaded into ONNX Runtime, predicting on raw rows."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from megalith.data.preprocess import Preprocessor
from megalith.errors import RunError
from megalith.runtime.bundle import DESCRIPTION_FILE, BundleFiles, read_description

DEFAULT_BATCH_SIZE = 256


class Bundle:
    """A bundle written by `megalith export`: its description, preprocessing and ONNX session."""

    def __init__(
        self,
        path: str | Path,
        *,
        providers: Sequence[str] | None = None,
        threads: int | None = None,
    ) -> None:
        """Load `path` (a bundle folder); `providers` are ONNX Runtime's execution providers
        (default: the CPU); `threads` its intra-op threads (default: ONNX Runtime's choice).

        Raises:
            RunError: the folder is not a complete bundle, or its files disagree.
            DataError: preprocessor.json is unreadable.
        """
        import onnxruntime

        self.files = BundleFiles(Path(path))
        self.path = self.files.path
        self.description = read_description(self.files)
        self.preprocessor = Preprocessor.load(self.files.preprocessor)
        options = onnxruntime.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = threads
        self.session = onnxruntime.InferenceSession(
            str(self.files.model),
            sess_options=options,
            providers=list(providers or ["CPUExecutionProvider"]),
        )
        self._inputs = [entry["graph_name"] for entry in self.description["inputs"]]
        self._outputs = [entry["graph_name"] for entry in self.description["outputs"]]
        self._check_matches()

    @property
    def input_names(self) -> list[str]:
        """The columns a row needs, in the graph's order."""
        return [entry["name"] for entry in self.description["inputs"]]

    @property
    def output_names(self) -> list[str]:
        return [entry["name"] for entry in self.description["outputs"]]

    @property
    def free_length_inputs(self) -> list[str]:
        """The inputs the graph takes at any length up to the fitted one (text and number
        sequences, except through a plain rnn encoder): bundle.json gives their shape as
        ["batch", "length <= N", ...]."""
        return [
            entry["name"]
            for entry in self.description["inputs"]
            if len(entry.get("shape", ())) > 1 and str(entry["shape"][1]).startswith("length")
        ]

    def predict(
        self,
        data: pd.DataFrame | str | Path,
        *,
        base_dir: str | Path | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> pd.DataFrame:
        """Predictions (and class probabilities) for every row, indexed like the input rows:
        the same columns and values as `Run.predict` on the run the bundle came from.

        Args:
            data: a DataFrame, or the path of a table (CSV, Parquet, JSONL) or image folder.
            base_dir: the folder relative image paths in a DataFrame resolve against
                (default: the current directory).
            batch_size: rows per call of the ONNX session.

        Raises:
            DataError: a column is missing or a value cannot be encoded (naming row and column).
            RunError: the bundle is a language model's, which generates text instead.
        """
        if self.description.get("task") == "language_model":
            raise RunError(f"{self.path} holds a language model: use generate, not predict")
        frame, folder, origin = _frame(data, base_dir)
        arrays = self.preprocessor.encode_inputs(frame, base_dir=folder, origin=origin)
        outputs = self.run_graph([arrays[name] for name in self.input_names], batch_size)
        predictions = self.preprocessor.decode(outputs)
        predictions.index = frame.index[: len(predictions)]
        return predictions

    def generate(
        self,
        prompt: str = "",
        *,
        max_new_tokens: int = 200,
        temperature: float = 0.8,
        top_k: int | None = None,
        seed: int = 0,
    ) -> str:
        """Text continuing `prompt` from a language model's bundle, one graph call per token
        (no KV cache), the window handled as `Run.generate` handles it: temperature 0 gives
        the same text as the run's greedy decoding.

        Raises:
            RunError: the bundle is not a language model's.
        """
        from megalith.data.features.text import TextOutputEncoder
        from megalith.runtime.sampling import next_token

        encoder = self.preprocessor.outputs[0]
        if self.description.get("task") != "language_model" or not isinstance(
            encoder, TextOutputEncoder
        ):
            raise RunError(f"{self.path} does not hold a language model; use predict")
        context, end = int(self.description["inputs"][0]["length"]), int(encoder.end_id)
        ids = list(encoder.encode([prompt])[0]) or [end]  # training documents follow an end id
        start = max(0, len(ids) - context + 1)
        rng, written = np.random.default_rng(seed), []
        for _ in range(max_new_tokens):
            window = np.asarray([ids[start:]], dtype=np.int64)
            (logits,) = self.session.run(self._outputs, {self._inputs[0]: window})
            token = next_token(logits[0, -1], temperature, top_k, rng)
            if token == end:
                break
            ids.append(token)
            written.append(token)
            if len(ids) - start >= context:  # window full: keep its second half
                start = len(ids) - context // 2
        return encoder.decode_ids(written)

    def run_graph(self, arrays: Sequence[np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
        """The graph's raw outputs (logits, standardised values) for encoded inputs, by output
        name, run `batch_size` rows at a time."""
        rows = len(arrays[0]) if arrays else 0
        pieces: dict[str, list[np.ndarray]] = {name: [] for name in self.output_names}
        for start in range(0, rows, max(1, batch_size)):
            feed = {
                name: np.ascontiguousarray(array[start : start + batch_size])
                for name, array in zip(self._inputs, arrays, strict=True)
            }
            results = self.session.run(self._outputs, feed)
            for name, value in zip(self.output_names, results, strict=True):
                pieces[name].append(np.asarray(value))
        return {
            name: np.concatenate(values) if values else np.zeros((0,), np.float32)
            for name, values in pieces.items()
        }

    def _check_matches(self) -> None:
        """bundle.json, preprocessor.json and the graph must name the same inputs and outputs."""
        fitted = [spec.name for spec in self.preprocessor.input_specs]
        if self.description.get("task") == "language_model":  # its input: windows of its output
            fitted = [spec.name for spec in self.preprocessor.output_specs]
        if fitted != self.input_names:
            raise RunError(
                f"{self.path}: bundle.json names the inputs {self.input_names}, but "
                f"preprocessor.json was fitted for {fitted}; export the run again"
            )
        graph = [node.name for node in self.session.get_inputs()]
        if graph != self._inputs:
            raise RunError(
                f"{self.path}: model.onnx takes {graph}, bundle.json names {self._inputs}; "
                "export the run again"
            )


def load_bundle(
    path: str | Path, *, providers: Sequence[str] | None = None, threads: int | None = None
) -> Bundle:
    """Load a bundle folder (see `Bundle`)."""
    return Bundle(path, providers=providers, threads=threads)


def is_bundle(path: str | Path) -> bool:
    """Whether `path` is a folder holding a bundle description (bundle.json)."""
    return (Path(path) / DESCRIPTION_FILE).is_file()


def _frame(data: Any, base_dir: str | Path | None) -> tuple[pd.DataFrame, Path | None, str]:
    from megalith.data.sources import ORIGIN_ATTR, load_table

    if isinstance(data, pd.DataFrame):
        origin = str(data.attrs.get(ORIGIN_ATTR, "data frame"))
        return data, Path(base_dir) if base_dir is not None else Path.cwd(), origin
    table = load_table(str(data))
    return table.frame, table.base_dir, table.origin
