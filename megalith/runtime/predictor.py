"""`Bundle`: an exported model loaded into ONNX Runtime, predicting on raw rows."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from megalith.data.preprocess import Preprocessor
from megalith.errors import RunError
from megalith.runtime.bundle import DESCRIPTION_FILE, BundleFiles, graph_files, read_description
from megalith.runtime.decoding import DECODER_INPUTS

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
        self.files = BundleFiles(Path(path))
        self.path = self.files.path
        self.description = read_description(self.files)
        self.preprocessor = Preprocessor.load(self.files.preprocessor)
        self.preprocessor.trained_model = f"the bundle {self.path}"
        self.sessions = {
            role: _session(self.files.graph(file), providers, threads)
            for role, file in graph_files(self.description).items()
        }
        self.session: Any = self.sessions.get("model")
        """The ONNX Runtime session of model.onnx (None in a seq2seq bundle: see `sessions`)."""
        self._inputs = [entry["graph_name"] for entry in self.description["inputs"]]
        self._outputs = [entry["graph_name"] for entry in self.description["outputs"]]
        self.seq2seq: Any = None
        if self.description.get("task") == "seq2seq":
            self.seq2seq = _seq2seq_graphs(self)
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
        sequences, except through a plain rnn encoder; variable-length audio, except through a
        crnn): bundle.json gives their shape as ["batch", "length <= N", ...]."""
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
        frame, folder, origin = _frame(data, base_dir, self.description.get("table", {}))
        arrays = self.preprocessor.encode_inputs(frame, base_dir=folder, origin=origin)
        if self.seq2seq is not None:  # text written token by token, as the run writes it
            (source,) = [arrays[name] for name in self.input_names]
            outputs = {self.output_names[0]: self.seq2seq.write(source, batch_size)}
        else:
            outputs = self.run_graph([arrays[name] for name in self.input_names], batch_size)
        if self.description.get("task") == "asr":  # CTC logits -> transcript ids
            from megalith.runtime.speech import BundleRecognizer

            name = self.output_names[0]
            outputs = {name: BundleRecognizer(self).ids(outputs[name])}
        predictions = self.preprocessor.decode(outputs)
        predictions.index = frame.index[: len(predictions)]
        return predictions

    def transcribe(
        self,
        recordings: Sequence[Any],
        *,
        names: Sequence[str] | None = None,
        beam_size: int | None = None,
        overlap: float | None = None,
        stop: threading.Event | None = None,
    ) -> list[str]:
        """One transcript per sound file (path or bytes) or float32 waveform, of any length,
        from a speech recognizer's bundle (megalith.runtime.speech): greedy CTC, or prefix beam
        search with `beam_size`; `overlap` seconds between the windows of long recordings;
        setting `stop` (another thread) ends it before its next window.

        Raises:
            RunError: the bundle is not a speech recognizer's.
            DataError: a recording is missing, unreadable or empty (naming it).
        """
        from megalith.runtime.speech import BundleRecognizer

        recognizer = BundleRecognizer(self)
        return recognizer.transcribe(
            recordings, names=names, beam_size=beam_size, overlap=overlap, stop=stop
        )

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
        the same text as the run's greedy decoding (a byte-level tokenizer's trailing
        incomplete UTF-8 character left out, as the run's stream leaves it out).

        Raises:
            RunError: the bundle is not a language model's.
        """
        from megalith.data.features.text import TextOutputEncoder
        from megalith.runtime.sampling import complete_text, next_token

        encoder = self.preprocessor.outputs[0]
        if self.description.get("task") != "language_model" or not isinstance(
            encoder, TextOutputEncoder
        ):
            raise RunError(f"{self.path} does not hold a language model; use predict")
        assert encoder.tokenizer is not None
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
        return complete_text(encoder.tokenizer.decode, written)

    def run_graph(self, arrays: Sequence[np.ndarray], batch_size: int) -> dict[str, np.ndarray]:
        """The graph's raw outputs (logits, standardised values) for encoded inputs, by output
        name, run `batch_size` rows at a time.

        Raises:
            RunError: the bundle is a seq2seq model's, whose two graphs `predict` runs.
        """
        if self.session is None:
            raise RunError(f"{self.path} holds a seq2seq model's two graphs; use predict")
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
        expected = {"model": self._inputs, "encoder": self._inputs, "decoder": DECODER_INPUTS}
        for role, session in self.sessions.items():
            graph = [node.name for node in session.get_inputs()]
            if graph != list(expected.get(role, graph)):
                file = self.files.graph(graph_files(self.description)[role]).name
                raise RunError(
                    f"{self.path}: {file} takes {graph}, bundle.json names "
                    f"{list(expected[role])}; export the run again"
                )


def load_bundle(
    path: str | Path, *, providers: Sequence[str] | None = None, threads: int | None = None
) -> Bundle:
    """Load a bundle folder (see `Bundle`)."""
    return Bundle(path, providers=providers, threads=threads)


def is_bundle(path: str | Path) -> bool:
    """Whether `path` is a folder holding a bundle description (bundle.json)."""
    return (Path(path) / DESCRIPTION_FILE).is_file()


def _session(path: Path, providers: Sequence[str] | None, threads: int | None) -> Any:
    """An ONNX Runtime session of one graph file.

    Raises:
        RunError: ONNX Runtime cannot load the file (a damaged or foreign graph).
    """
    import onnxruntime
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
    try:
        return onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=list(providers or ["CPUExecutionProvider"])
        )
    except (ort_errors.InvalidProtobuf, ort_errors.InvalidGraph, ort_errors.Fail) as error:
        reason = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise RunError(
            f"{path}: ONNX Runtime cannot load this graph ({reason or type(error).__name__}); "
            "export the run again"
        ) from None


def _seq2seq_graphs(bundle: Bundle) -> Any:
    """The encoder and decoder of a seq2seq bundle, with its decoding settings."""
    from megalith.runtime.decoding import Decoding, Seq2SeqGraphs

    decoding = bundle.description.get("decoding")
    if not {"encoder", "decoder"} <= set(bundle.sessions) or not isinstance(decoding, dict):
        raise RunError(
            f"{bundle.files.description}: a seq2seq bundle names an encoder and a decoder graph "
            "and its decoding; export the run again"
        )
    encoder, decoder = bundle.sessions["encoder"], bundle.sessions["decoder"]
    (source,) = bundle._inputs
    return Seq2SeqGraphs(encoder, decoder, source, Decoding.from_description(decoding))


def _frame(
    data: Any, base_dir: str | Path | None, dialect: dict[str, str]
) -> tuple[pd.DataFrame, Path | None, str]:
    """The rows to predict; a CSV file is read with the run's separator and decimal mark
    (`dialect`, from bundle.json; detected for bundles that predate it, and for .tsv files)."""
    from megalith.data.sources import ORIGIN_ATTR, load_table

    if isinstance(data, pd.DataFrame):
        origin = str(data.attrs.get(ORIGIN_ATTR, "data frame"))
        return data, Path(base_dir) if base_dir is not None else Path.cwd(), origin
    tsv = Path(str(data)).suffix.lower() == ".tsv"
    table = load_table(
        str(data),
        delimiter="\t" if tsv else str(dialect.get("delimiter", "auto")),
        decimal=str(dialect.get("decimal", "auto")),
    )
    return table.frame, table.base_dir, table.origin
