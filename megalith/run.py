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
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd
import torch
from rich.console import Console
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from megalith.config import Config, is_language_model, load_config
from megalith.data.csvfile import SEPARATORS, seeming_separator
from megalith.data.preprocess import Preprocessor
from megalith.data.sources import Table, load_data, load_table
from megalith.data.split import split_table
from megalith.data.tensors import TensorTable
from megalith.device import resolve_device, resolve_precision
from megalith.errors import ConfigError, DataError, RunError, cannot_write
from megalith.evaluate.evaluation import evaluate_table
from megalith.evaluate.metrics import generation_metrics
from megalith.evaluate.speech import speech_evaluation, transcribe_ids
from megalith.generation import Sampling
from megalith.models import GPTConfig, PretrainedConfig, Seq2SeqConfig, build_model
from megalith.models.asr import ASR
from megalith.models.pretrained import (
    ARCHITECTURE_DIR,
    PretrainedModel,
    build_pretrained,
    language_model_context,
    quiet_transformers,
)
from megalith.models.private_layers import make_private_safe
from megalith.models.remote_code import strip_custom_code
from megalith.models.seq2seq import Seq2Seq, decode_in_batches, teacher_forcing
from megalith.models.widths import apply_widths
from megalith.paths import resolved
from megalith.runs import RunDir, StoredTensor, check_weights_fit, read_safetensors_header
from megalith.structured import parse_json

if TYPE_CHECKING:
    from megalith.explain import Explanations
    from megalith.runtime.transcription import Recording


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
            model: nn.Module = _build_pretrained_run(config.model, preprocessor, run_dir.path)
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
        from megalith.data.features.text import TextOutputEncoder
        from megalith.generation import generate_ids, stream_text

        model, encoder = self.model, self.preprocessor.outputs[0]
        if not is_language_model(self.config) or not isinstance(encoder, TextOutputEncoder):
            raise RunError(
                f"{self.path} is not a language model (model.arch {self.config.model.arch}); "
                "generate needs a run trained with model.arch gpt, or pretrained with a text "
                "output"
            )
        tokenizer = encoder.tokenizer
        assert tokenizer is not None
        prompt_ids = encoder.encode([prompt])[0]
        device, _ = self._device()

        def pieces() -> Iterator[str]:
            model.to(device)
            try:
                ids = generate_ids(
                    model,  # type: ignore[arg-type]  # a GPT or a pretrained language model
                    prompt_ids,
                    max_new_tokens,
                    sampling or Sampling(),
                    seed=seed,
                    use_cache=use_cache,
                    end_id=encoder.end_id,
                )
                yield from stream_text(tokenizer.decode, ids)
            finally:
                model.cpu()

        return pieces()

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
    ) -> list[str]:
        """One transcript per recording of any length, from a speech recognizer (model.arch
        asr): sound file paths or bytes (WAV, FLAC, OGG), or float32 samples at the model's
        rate. Long recordings are cut into windows `overlap` seconds apart and stitched; the
        decoding keys default to the run's (megalith.transcribe).

        Raises:
            RunError: the run is not a speech recognizer.
            DataError: a recording is missing, unreadable or empty (naming it).
            ConfigError: a decoding setting is out of range or `lm` does not fit.
        """
        from megalith.transcribe.transcriber import Transcriber

        transcriber = Transcriber(
            self,
            overlap=overlap,
            load=self._language_model_run,
            beam_size=beam_size,
            lm=str(lm) if lm is not None else None,
            lm_weight=lm_weight,
            token_bonus=token_bonus,
        )
        return transcriber.transcribe(recordings, names=names)

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
        model = self.model
        if not isinstance(model, PretrainedModel):
            raise RunError(
                f"{self.path} was trained with model.arch {self.config.model.arch}; merge writes "
                "the model of a model.arch pretrained run"
            )
        folder = Path(output)
        if resolved(folder) == resolved(self.path) or RunDir(self.path).owns(folder):
            raise RunError(
                f"{folder} is the run directory {self.path} or one of its own folders; "
                "merge into a new folder"
            )
        if folder.exists() and any(folder.iterdir()) and not overwrite:
            raise RunError(f"{folder} is not empty; choose a new folder, or pass --overwrite")
        net = model.merged()
        labels = getattr(self.preprocessor.outputs[0], "classes", None)
        if model.task == "classify" and labels:
            net.config.id2label = {i: str(label) for i, label in enumerate(labels)}
            net.config.label2id = {str(label): i for i, label in enumerate(labels)}
        try:
            folder.mkdir(parents=True, exist_ok=True)
            net.save_pretrained(str(folder))
            saved = quiet_transformers().AutoTokenizer.from_pretrained(self.path / ARCHITECTURE_DIR)
            saved.save_pretrained(str(folder))
            notices = strip_custom_code(folder)
        except OSError as error:
            raise cannot_write(folder, error) from error
        for notice in notices:
            (console or Console(stderr=True)).print(f"[yellow]note[/]: {notice}")
        return folder

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
        corpus = is_language_model(self.config)
        data = self.config.data
        tsv = Path(path).suffix.lower() == ".tsv"  # the name itself says how it is separated
        table = load_table(
            str(path),
            format="text" if corpus else "auto",
            delimiter="\t" if tsv else data.delimiter,
            decimal=data.decimal,
            keep_text=keep_text,
        )
        columns = [str(column) for column in table.frame.columns]
        seeming = seeming_separator(columns)
        recorded = data.delimiter != "auto" and not tsv
        if recorded and table.dialect is not None and seeming not in (None, data.delimiter):
            used = table.dialect.describe().split()[0]
            raise DataError(
                f"{table.origin}: read {used} like this run's data (data.delimiter in "
                f"{self.path / 'config.yaml'}), the header is one column ({columns[0][:60]!r}), "
                f"but the file seems {SEPARATORS[str(seeming)]}-separated: save it with "
                f"{table.dialect.delimiter!r} between columns, or change data.delimiter there"
            )
        return table

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


_T = TypeVar("_T")

# weights saved under an older name -> the name the model has now
_OLD_NAMES = {"fusion.cls": "fusion.cls.token"}  # the transformer combiner's [CLS] token


def _renamed(weights: dict[str, _T]) -> dict[str, _T]:
    return {_OLD_NAMES.get(name, name): value for name, value in weights.items()}


def load_weights(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights from a safetensors file, refusing anything else and any non-finite value.

    The header's names, dtypes and shapes are compared with the model before any tensor is
    read, so a file declaring tensors larger than the model's costs no memory.

    Raises:
        RunError: not a safetensors file, weights that do not fit the model, NaN or Inf.
    """
    header: dict[str, torch.Tensor | StoredTensor] = dict(read_safetensors_header(path))
    check_weights_fit(_renamed(header), model, path)
    try:
        weights = _renamed(load_file(path))
    except (SafetensorError, OSError) as error:
        raise RunError(
            f"{path} is not a readable safetensors file ({error}); "
            "Megalith only loads safetensors and never unpickles"
        ) from None
    check_weights_fit(weights, model, path)
    bad = [
        name for name, t in weights.items() if t.is_floating_point() and not torch.isfinite(t).all()
    ]
    if bad:
        raise RunError(f"{path} holds NaN or Inf values in {', '.join(bad[:3])}; retrain or resume")
    return weights


def split_data(cfg: Config, table: Table) -> dict[str, pd.DataFrame]:
    first = cfg.outputs[0]
    stratify = first.name if first.type in ("category", "binary") else None
    if stratify is not None and stratify not in table.frame.columns:
        stratify = None  # the preprocessor reports the missing column with a better message
    return split_table(
        table.frame, cfg.data.split, seed=cfg.seed, stratify_by=stratify, origin=table.origin
    )


def transform_split(
    cfg: Config,
    preprocessor: Preprocessor,
    frame: pd.DataFrame,
    table: Table,
    split: str,
    console: Console | None = None,
) -> TensorTable:
    """Rows -> tensors: encoded rows, or for a language model, windows of its corpus."""
    where = f"{table.origin} ({split} split)" if split else table.origin
    if is_language_model(cfg):
        context = _context(cfg, preprocessor)
        return preprocessor.transform_corpus(frame, context=context, origin=where)
    tensors = preprocessor.transform(frame, base_dir=table.base_dir, origin=where)
    if isinstance(cfg.model, Seq2SeqConfig):
        tensors = teacher_forcing(tensors, cfg.outputs[0].name)
    if console is not None:
        for notice in preprocessor.dropped_notices():
            console.print(f"[yellow]note[/]: {split} split: {notice}")
    return tensors


def _context(cfg: Config, preprocessor: Preprocessor) -> int:
    """A language model's window length."""
    if isinstance(cfg.model, GPTConfig):
        return cfg.model.context
    assert isinstance(cfg.model, PretrainedConfig)
    tokenizer = getattr(preprocessor.outputs[0], "tokenizer", None)
    return language_model_context(cfg.model, getattr(tokenizer, "positions", None))


def _build_pretrained_run(
    config: PretrainedConfig, preprocessor: Preprocessor, run: Path
) -> PretrainedModel:
    """A full fine-tune from its own RUN/pretrained; a LoRA run on its base model (model.path)."""
    inputs, outputs = preprocessor.input_specs, preprocessor.output_specs
    if config.lora is None:
        saved = run / ARCHITECTURE_DIR
        if not (saved / "config.json").is_file():
            raise RunError(f"{saved}/config.json is missing: the run directory is damaged")
        return build_pretrained(config, inputs, outputs, architecture=saved)
    try:
        return build_pretrained(config, inputs, outputs)
    except ConfigError as error:
        raise RunError(
            f"{run} holds a LoRA adapter for the base model in {config.path}, which cannot be "
            f"loaded ({error}); put the base model back there, or load a merged copy "
            "(megalith merge) with transformers"
        ) from None
