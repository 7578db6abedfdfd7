"""`Run`: a finished run directory loaded back — the artifact every later stage takes.

Predict, evaluate, generate and merge read only the run directory (config.yaml, preprocessor.json,
model.safetensors, and for pretrained runs RUN/pretrained and RUN/adapter); nothing here imports
the training orchestration (`megalith.pipeline`), so the report, the comparison and the later
stages (export, serve, compress, explain, tune) build on this module alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from rich.console import Console
from torch import nn

from megalith.config import Config, is_language_model, load_config
from megalith.data.preprocess import Preprocessor
from megalith.data.sources import Table, load_data
from megalith.data.tensors import TensorTable
from megalith.device import resolve_device, resolve_precision
from megalith.errors import ConfigError, DataError, RunError
from megalith.evaluate.evaluation import evaluate_table
from megalith.evaluate.metrics import generation_metrics
from megalith.evaluate.speech import speech_evaluation, transcribe_ids
from megalith.generation import Sampling
from megalith.models import PretrainedConfig, build_model
from megalith.models.asr import ASR
from megalith.models.private_layers import make_private_safe
from megalith.models.seq2seq import Seq2Seq, decode_in_batches
from megalith.models.widths import apply_widths
from megalith.run_data import read_run_table, split_data, transform_split
from megalith.run_weights import build_pretrained_run, load_weights
from megalith.runs import RunDir
from megalith.structured import parse_json

if TYPE_CHECKING:
    from megalith.explain import Explanations
    from megalith.runtime.transcription import Recording, StopEvent


class Run:
    """A trained run loaded from its directory: predict on new rows, evaluate on labelled ones."""

    def __init__(self, path: Path, config: Config, preprocessor: Preprocessor, model: nn.Module):
        self.path = path
        self.config = config
        self.preprocessor = preprocessor
        self.model = model.cpu().eval()
        self._language_model_runs: dict[str, Run] = {}  # GPT runs a recognizer fuses, by path

    @classmethod
    def load(cls, path: str | Path) -> Run:
        """Load config, preprocessing and weights from a run directory (safetensors only)."""
        run_dir = RunDir(Path(path))
        run_dir.check_complete()
        config, _ = load_config(run_dir.config)
        if config.recommend is not None:  # ids and interactions instead of encoded columns
            raise RunError(
                f"{run_dir.path} is a recommender run: `megalith recommend`, evaluate, report, "
                "export and serve take it (in Python, megalith.load); this command takes runs "
                "that predict columns"
            )
        preprocessor = Preprocessor.load(run_dir.preprocessor)
        preprocessor.check_features(config.inputs, config.outputs, where=run_dir.preprocessor)
        preprocessor.trained_model = f"the run {run_dir.path}"
        if isinstance(config.model, PretrainedConfig):
            model: nn.Module = build_pretrained_run(config.model, preprocessor, run_dir.path)
        else:
            model = build_model(config.model, preprocessor.input_specs, preprocessor.output_specs)
        if run_dir.architecture.is_file():  # a pruned run: some layers are narrower
            apply_widths(model, run_dir.architecture)
        if config.train.privacy is not None:  # trained with BatchNorm -> GroupNorm, ...
            model = make_private_safe(model)
        model.load_state_dict(load_weights(run_dir.weights, model))
        return cls(run_dir.path, config, preprocessor, model)

    @property
    def metrics(self) -> dict[str, Any]:
        """The contents of eval.json."""
        path = RunDir(self.path).eval
        if not path.is_file():
            return {}
        try:
            scores = parse_json(path.read_text(encoding="utf-8"), str(path), RunError)
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RunError(f"{path}: cannot read the run's metrics ({error})") from None
        if not isinstance(scores, dict):
            raise RunError(f"{path}: not a JSON object of metrics; evaluate the run again")
        return scores

    def predict(
        self, data: pd.DataFrame | str | Path, *, base_dir: str | Path | None = None
    ) -> pd.DataFrame:
        """Predictions (and class probabilities) for every row, indexed like the input rows.

        Args:
            data: a DataFrame, or the path of a table or image folder.
            base_dir: the folder relative image paths in a DataFrame resolve against
                (default: the current directory).
        """
        self.check_predicts()
        frame, base_dir, origin = self._frame(data, base_dir)
        tensors = self.preprocessor.transform(
            frame, base_dir=base_dir, origin=origin, with_targets=False
        )
        outputs = self.forward_table(tensors)
        predictions = self.preprocessor.decode(outputs)
        predictions.index = frame.index[: len(predictions)]
        return predictions

    def check_predicts(self) -> None:
        """Raise RunError for a language model, which generates text instead of predicting rows."""
        if is_language_model(self.config):
            raise RunError(
                f"{self.path} is a language model: it writes text rather than predicting "
                "columns; use `megalith generate` (Run.generate)"
            )

    def evaluate(self, data: pd.DataFrame | str | Path | None = None) -> dict[str, float]:
        """Loss and metrics on labelled rows; by default the run's own test split."""
        if data is None:
            table, splits = self.data_splits()
            frame, split = splits["test"], "test"
        else:
            frame, base_dir, origin = self._frame(data, None)
            table, split = Table(frame, base_dir, origin), ""
        tensors = transform_split(self.config, self.preprocessor, frame, table, split)
        if len(tensors) == 0:
            raise DataError(f"{table.origin}: no rows with a target to evaluate on")
        return self.evaluate_tensors(tensors)

    def recommend(
        self, users: Sequence[str | int], k: int = 10, *, exclude_seen: bool = True
    ) -> pd.DataFrame:
        """The top `k` items per user; only recommender runs (model.arch mf, ncf, two_tower)."""
        raise RunError(f"{self.path} is not a recommender (model.arch {self.config.model.arch})")

    def generate(
        self,
        prompt: str = "",
        *,
        max_new_tokens: int = 200,
        sampling: Sampling | None = None,
        seed: int = 0,
        use_cache: bool = True,
    ) -> Iterator[str]:
        """Text continuing `prompt`, piece by piece as tokens are sampled (language models).

        Raises:
            RunError: the run is not a language model (raised here, before any text).
        """
        from megalith.run_generate import generate_text

        device, _ = self._device()
        return generate_text(
            self.path,
            self.config,
            self.preprocessor,
            self.model,
            device,
            prompt,
            max_new_tokens=max_new_tokens,
            sampling=sampling,
            seed=seed,
            use_cache=use_cache,
        )

    def transcribe(
        self,
        recordings: Sequence[Recording],
        *,
        names: Sequence[str] | None = None,
        beam_size: int | None = None,
        lm: str | Path | None = None,
        lm_weight: float | None = None,
        token_bonus: float | None = None,
        overlap: float | None = None,
        ctc_weight: float | None = None,
        stop: StopEvent | None = None,
    ) -> list[str]:
        """One transcript per recording of any length, from a speech recognizer (model.arch
        asr): sound file paths or bytes (WAV, FLAC, OGG), or float32 samples at the model's rate,
        cut into windows `overlap` seconds apart and stitched; decoding keys default to the run's
        (megalith.transcribe; ctc_weight: decode_ctc_weight); `stop`, set by another thread, ends
        it before its next window.

        Raises:
            RunError: the run is not a speech recognizer.
            DataError: a recording is missing, unreadable or empty (naming it).
            ConfigError: a decoding setting is out of range, `lm` does not fit, or
                `lm_weight` is given without a language model.
        """
        from megalith.transcribe.transcriber import Transcriber

        if lm_weight is not None and lm is None and getattr(self.config.model, "lm", None) is None:
            raise ConfigError(
                f"lm_weight {lm_weight:g}: it weighs a language model, and none is given (the "
                "run has no model.lm); pass lm=GPT_RUN or leave lm_weight out"
            )
        return Transcriber(
            self,
            overlap=overlap,
            load=self._language_model_run,
            beam_size=beam_size,
            lm=str(lm) if lm is not None else None,
            lm_weight=lm_weight,
            token_bonus=token_bonus,
            decode_ctc_weight=ctc_weight,
        ).transcribe(recordings, names=names, stop=stop)

    def merge(
        self, output: str | Path, *, overwrite: bool = False, console: Console | None = None
    ) -> Path:
        """Save the fine-tuned pretrained model as a Hugging Face model directory (safetensors
        weights, config, tokenizer) that transformers loads without Megalith; a LoRA adapter
        is merged into the base weights. A classifier's labels go in config.json. References
        to custom code (`auto_map`) are left out, with a notice on `console` (stderr).

        Raises:
            RunError: the run is not a pretrained model, `output` is the run directory or one
                of its folders, or a non-empty folder (without `overwrite`).
        """
        from megalith.merge import merge_pretrained_run

        labels = getattr(self.preprocessor.outputs[0], "classes", None)
        return merge_pretrained_run(
            self.model, self.path, labels, Path(output), overwrite=overwrite, console=console
        )

    def export(
        self,
        output: str | Path | None = None,
        *,
        format: str = "onnx",
        overwrite: bool = False,
        exporter: str = "dynamo",
    ) -> Path:
        """Write a verified ONNX inference bundle (default RUN/bundle); see megalith.export.
        `exporter="torchscript"` is the fallback for a model the default cannot translate.

        Raises:
            RunError: the family cannot be exported yet, or ONNX Runtime disagrees with PyTorch.
        """
        from megalith.export import export_run

        return export_run(self, output, format=format, overwrite=overwrite, exporter=exporter)

    def explain(
        self,
        data: pd.DataFrame | str | Path | None = None,
        *,
        rows: int | None = None,
        row_ids: list[int] | None = None,
        method: str = "ig",
        target: str | None = None,
        output_name: str | None = None,
        steps: int = 50,
        internal_batch_size: int | None = None,
        attention: bool = True,
        base_dir: str | Path | None = None,
    ) -> Explanations:
        """Attributions of the predictions for some rows to their input columns (words, pixels,
        steps), with trust figures, and attention maps of Transformer inputs (a GPT run: its
        attention maps alone); see megalith.explain.explain_run. `.summary`, `.rows`, and
        megalith.explain.write_explanations(explanations, folder) writes them.

        Raises:
            RunError: unknown method, output or class, or a family explain does not take yet.
        """
        from megalith.explain import explain_run

        return explain_run(
            self,
            data,
            rows=rows,
            row_ids=row_ids,
            method=method,
            target=target,
            output_name=output_name,
            steps=steps,
            internal_batch_size=internal_batch_size,
            attention=attention,
            base_dir=base_dir,
        )

    def data_splits(self) -> tuple[Table, dict[str, pd.DataFrame]]:
        """The run's data source read again and split exactly as training split it."""
        table = load_data(self.config.data)
        return table, split_data(self.config, table)

    def read_table(self, path: str | Path, *, keep_text: bool = False) -> Table:
        """A table of new rows read the way this run read its data: a CSV file with the
        separator and decimal mark in config.yaml (detected when training recorded none; a .tsv
        file is tab-separated).

        Raises:
            DataError: the file cannot be read.
        """
        return read_run_table(self.config, self.path, path, keep_text=keep_text)

    def evaluate_tensors(self, tensors: TensorTable) -> dict[str, float]:
        device, dtype = self._device()
        self.model.to(device)
        # a speech recognizer: CTC loss, and WER / CER of its transcripts
        evaluate = (
            speech_evaluation(self.preprocessor, self._ctc_decode())
            if isinstance(self.model, ASR)
            else None
        )
        try:
            scores = (evaluate or evaluate_table)(
                self.model,
                tensors,
                self.config.outputs,
                self.preprocessor.output_specs,
                self.config.train.eval_batch_size,
                device,
                dtype,
            )
        finally:
            self.model.cpu()
        if isinstance(self.model, Seq2Seq):  # what decoding writes, against the references
            name = self.model.name
            written = self.preprocessor.decode(self.forward_table(tensors))[name].tolist()
            references = self.preprocessor.decode({name: tensors.targets[name]})[name].tolist()
            scores.update(generation_metrics(written, references))
        return scores

    def forward_table(self, tensors: TensorTable) -> dict[str, torch.Tensor]:
        """The model's raw outputs (logits, standardised values; a seq2seq model's written
        ids) for encoded rows, by output name, in fp32 on the CPU: `predict` between
        `Preprocessor.transform` and `Preprocessor.decode`."""
        from megalith.batching import forward_in_batches

        device, dtype = self._device()
        # the model rests on the CPU; moving it walks every module (0.4 ms of a 2 ms one-row
        # call to a small Transformer, paid by every served batch), so stay when already there
        first = next(self.model.parameters(), None)
        moves = device.type != "cpu" or (first is not None and first.device.type != "cpu")
        if moves:
            self.model.to(device)
        batch_size = self.config.train.eval_batch_size
        try:
            if isinstance(self.model, ASR):  # transcripts: greedy or beam CTC decoding
                decode = self._ctc_decode()
                ids = transcribe_ids(self.model, tensors, batch_size, device, dtype, decode)
                return {self.model.name: ids}
            if isinstance(self.model, Seq2Seq):  # outputs are written token by token
                beams = getattr(self.config.model, "beam_size", 1)
                ids = decode_in_batches(self.model, tensors, batch_size, device, beams)
                return {self.model.name: ids}
            return forward_in_batches(self.model, tensors, batch_size, device, dtype)
        finally:
            if moves:
                self.model.cpu()

    def _ctc_decode(self) -> Any:
        """A speech recognizer's decoding of CTC logits by its model.beam_size / lm keys."""
        from megalith.transcribe.transcriber import logits_decoder

        return logits_decoder(self, self._language_model_run)

    def _language_model_run(self, path: str) -> Run:
        """The GPT run a speech recognizer fuses (model.lm / lm=), loaded once per path: a
        server transcribing many requests reads its weights once."""
        if path not in self._language_model_runs:
            self._language_model_runs[path] = load(path)
        return self._language_model_runs[path]

    def _device(self) -> tuple[torch.device, torch.dtype | None]:
        device = resolve_device(self.config.train.device)
        return device, resolve_precision(self.config.train.precision, device)

    def _frame(
        self, data: pd.DataFrame | str | Path, base_dir: str | Path | None
    ) -> tuple[pd.DataFrame, Path | None, str]:
        from megalith.data.sources import ORIGIN_ATTR

        if isinstance(data, pd.DataFrame):
            origin = str(data.attrs.get(ORIGIN_ATTR, "data frame"))  # a frame from load_table
            return data, Path(base_dir) if base_dir is not None else Path.cwd(), origin
        table = self.read_table(data)
        return table.frame, table.base_dir, table.origin


def load(path: str | Path) -> Run:
    """Load a run directory: `megalith.load("runs/digits-cnn").predict(frame)`."""
    return Run.load(path)
