"""The path from a config to a finished run directory, and back from a run directory to predictions.

`train` prepares the data, the preprocessing and the model, hands them to the training loop,
then evaluates and writes the run directory. `Run` loads a run directory to predict and evaluate.
"""

from __future__ import annotations

import dataclasses
import json
import random
import shutil
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from rich.console import Console
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from megalith.config import Config, config_to_yaml, is_language_model, load_config
from megalith.data.preprocess import Preprocessor
from megalith.data.sources import Table, load_table
from megalith.data.split import split_table
from megalith.data.tensors import TensorTable
from megalith.device import resolve_device, resolve_precision
from megalith.errors import ConfigError, DataError, RunError, cannot_write, did_you_mean
from megalith.evaluate.environment import describe_environment
from megalith.evaluate.evaluation import evaluate_table
from megalith.evaluate.metrics import available_metrics, generation_metrics
from megalith.generation import Sampling
from megalith.models import GPTConfig, PretrainedConfig, Seq2SeqConfig, build_model
from megalith.models.pretrained import (
    ARCHITECTURE_DIR,
    PretrainedModel,
    build_pretrained,
    check_model_dir,
    language_model_context,
    quiet_transformers,
    save_adapter,
    save_architecture,
)
from megalith.models.seq2seq import Seq2Seq, decode_in_batches, teacher_forcing
from megalith.runs import RunDir, save_weights_atomically
from megalith.training import checkpoint as ckpt
from megalith.training.callbacks import Callback, MetricsLog, ProgressBar, Throughput
from megalith.training.distributed import Distributed
from megalith.training.loop import TrainJob, train_loop
from megalith.training.tensorboard import build_loggers

ConfigSource = str | Path | Mapping[str, Any] | Config


def train(
    config: ConfigSource | None = None,
    *,
    output_dir: str | Path | None = None,
    overrides: Sequence[str] = (),
    resume: str | Path | None = None,
    overwrite: bool = False,
    console: Console | None = None,
    callbacks: Sequence[Callback] = (),
) -> Run:
    """Train a model from a config and return the finished run.

    Args:
        config: a YAML path, a dict, or a Config. Ignored when `resume` is given (the run's own
            config is used, with `overrides` applied, e.g. more epochs).
        output_dir: the run directory; by default runs/<name>-<timestamp>.
        overrides: 'key=value' strings, as `--set` on the CLI.
        resume: a run directory whose last complete checkpoint training continues from.
        overwrite: allow writing into a non-empty output_dir.
        console: where progress goes (stderr by default).
        callbacks: extra training callbacks (see megalith.training.callbacks).
    Raises:
        ConfigError, DataError, RunError: with a message naming the key, column or file.
    """
    if resume is not None:
        run_dir = RunDir(Path(resume))
        if not run_dir.config.is_file():
            raise RunError(f"cannot resume {run_dir.path}: no config.yaml there")
        cfg, base_dir = load_config(run_dir.config, overrides)
    elif config is None:
        raise ConfigError("give a config to train, or resume= a run directory to continue")
    else:
        cfg, base_dir = load_config(config, overrides)
        run_dir = RunDir(Path(output_dir)) if output_dir else RunDir.default_for(cfg.name)
    ddp = Distributed.from_env()
    ddp.start(resolve_device(cfg.train.device))
    try:
        run_dir = RunDir(Path(ddp.broadcast(str(run_dir.path))))  # one name for every rank
        console = console or Console(stderr=True, quiet=not ddp.is_main)
        return _train(
            cfg, base_dir, run_dir, resume is not None, overwrite, console, callbacks, ddp
        )
    finally:
        ddp.stop()


def _train(
    cfg: Config,
    base_dir: Path,
    run_dir: RunDir,
    resuming: bool,
    overwrite: bool,
    console: Console,
    callbacks: Sequence[Callback],
    ddp: Distributed,
) -> Run:
    """Data -> preprocessing -> model -> loop -> evaluation -> run directory (rank 0 writes)."""
    cfg = _with_absolute_paths(cfg, base_dir)
    if isinstance(cfg.model, PretrainedConfig):
        check_model_dir(cfg.model.path)  # before its tokenizer is read
    table = load_table(cfg.data.source, format=cfg.data.format, relative_to=base_dir)
    splits = _split(cfg, table)
    checkpoint = ckpt.load_latest_checkpoint(run_dir.checkpoints) if resuming else None
    if checkpoint is not None and run_dir.preprocessor.is_file():
        preprocessor = Preprocessor.load(run_dir.preprocessor)
    else:
        preprocessor = Preprocessor.fit(
            cfg.inputs, cfg.outputs, splits["train"], base_dir=table.base_dir, origin=table.origin
        )
    tensors = {
        name: _transform(cfg, preprocessor, frame, table, name, console)
        for name, frame in splits.items()
    }
    _check_watched_metric(cfg, preprocessor)
    loggers = build_loggers(cfg.train.log, run_dir.path) if ddp.is_main else []
    throughput = Throughput()
    seed_everything(cfg.seed)
    model = build_model(cfg.model, preprocessor.input_specs, preprocessor.output_specs)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if cfg.train.batch_size == "auto":
        cfg = _with_batch_size(cfg, model, tensors["train"], ddp, console)
    if ddp.is_main:
        _start_run_dir(run_dir, cfg, preprocessor, resuming, overwrite)
    ddp.barrier()
    console.print(
        f"[bold]{cfg.name}[/]: {len(tensors['train'])} train / {len(tensors['val'])} val / "
        f"{len(tensors['test'])} test rows, model {cfg.model.arch} with "
        f"{count_parameters(model):,} parameters"
        + (f" ({trained:,} trained)" if trained < count_parameters(model) else "")
        + (f" on {ddp.world_size} processes" if ddp.enabled else "")
        + f" -> {run_dir.path}"
    )
    if resuming:
        where = checkpoint.path.name if checkpoint is not None else "the start: no checkpoint"
        console.print(f"resuming from {where}")
    ddp = dataclasses.replace(ddp, sharded=ddp.enabled and cfg.train.strategy == "fsdp")
    watch = cfg.train.early_stop.metric if cfg.train.early_stop else _default_watch(preprocessor)
    job = TrainJob(
        model=model,
        outputs=cfg.outputs,
        specs=preprocessor.output_specs,
        train=tensors["train"],
        val=tensors["val"] if len(tensors["val"]) else None,
        config=cfg.train,
        seed=cfg.seed,
        checkpoints=run_dir.checkpoints,
        input_names=[feature.name for feature in cfg.inputs],
        callbacks=[
            MetricsLog(run_dir.metrics),
            ProgressBar(console, watch),
            throughput,
            *loggers,
            *callbacks,
        ]
        if ddp.is_main
        else [],
        distributed=ddp,
    )
    result = train_loop(job, resume=checkpoint)
    if ddp.sharded:  # the whole weights, gathered by every rank, in an ordinary model
        weights = ddp.full_weights(model)
        model = build_model(cfg.model, preprocessor.input_specs, preprocessor.output_specs)
        model.load_state_dict(weights)
    run = Run(run_dir.path, cfg, preprocessor, model)
    if not ddp.is_main:
        return run
    save_weights_atomically(model, run_dir.weights)
    if isinstance(model, PretrainedModel) and isinstance(cfg.model, PretrainedConfig):
        _save_pretrained_files(model, preprocessor, run_dir.path, cfg.model.path)

    scores: dict[str, Any] = {
        name: run.evaluate_tensors(tensors[name]) for name in ("val", "test") if len(tensors[name])
    }
    scores["training"] = {
        "epochs": result.epochs_run,
        "steps": result.steps,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "seconds": round(result.train_seconds, 3),
        "processes": ddp.world_size,
        "parameters": count_parameters(model),
        "trained_parameters": trained,
        "samples_per_second": (
            round(throughput.per_second * ddp.world_size, 1) if throughput.per_second else None
        ),
        **describe_environment(ddp.device(resolve_device(cfg.train.device))),
    }
    run_dir.write_json(run_dir.eval, scores)
    _print_summary(console, scores, run_dir)
    from megalith.evaluate.report import write_report_safely  # matplotlib loads only here

    write_report_safely(run, console)
    return run


def _start_run_dir(
    run_dir: RunDir, cfg: Config, preprocessor: Preprocessor, resuming: bool, overwrite: bool
) -> None:
    """Create (or reuse, when resuming) the directory; write the config and the preprocessing."""
    if not resuming:
        run_dir.create(overwrite=overwrite)
        shutil.rmtree(run_dir.checkpoints, ignore_errors=True)  # stale state of an overwritten run
    run_dir.write_text(run_dir.config, config_to_yaml(cfg))
    preprocessor.save(run_dir.preprocessor)


class Run:
    """A trained run loaded from its directory: predict on new rows, evaluate on labelled ones."""

    def __init__(self, path: Path, config: Config, preprocessor: Preprocessor, model: nn.Module):
        self.path = path
        self.config = config
        self.preprocessor = preprocessor
        self.model = model.cpu().eval()

    @classmethod
    def load(cls, path: str | Path) -> Run:
        """Load config, preprocessing and weights from a run directory (safetensors only)."""
        run_dir = RunDir(Path(path))
        run_dir.check_complete()
        config, _ = load_config(run_dir.config)
        preprocessor = Preprocessor.load(run_dir.preprocessor)
        preprocessor.check_features(config.inputs, config.outputs, where=run_dir.preprocessor)
        if isinstance(config.model, PretrainedConfig):
            model: nn.Module = _build_pretrained_run(config.model, preprocessor, run_dir.path)
        else:
            model = build_model(config.model, preprocessor.input_specs, preprocessor.output_specs)
        model.load_state_dict(load_weights(run_dir.weights, model))
        return cls(run_dir.path, config, preprocessor, model)

    @property
    def metrics(self) -> dict[str, Any]:
        """The contents of eval.json."""
        path = RunDir(self.path).eval
        return json.loads(path.read_text()) if path.is_file() else {}

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
        outputs = self._forward(tensors)
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
        tensors = _transform(self.config, self.preprocessor, frame, table, split)
        if len(tensors) == 0:
            raise DataError(f"{table.origin}: no rows with a target to evaluate on")
        return self.evaluate_tensors(tensors)

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

    def merge(self, output: str | Path, *, overwrite: bool = False) -> Path:
        """Save the fine-tuned pretrained model as a Hugging Face model directory (safetensors
        weights, config, tokenizer) that transformers loads without Megalith; a LoRA adapter
        is merged into the base weights. A classifier's labels go in config.json.

        Raises:
            RunError: the run is not a pretrained model, or `output` is a non-empty folder.
        """
        model = self.model
        if not isinstance(model, PretrainedModel):
            raise RunError(
                f"{self.path} was trained with model.arch {self.config.model.arch}; merge writes "
                "the model of a model.arch pretrained run"
            )
        folder = Path(output)
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
        except OSError as error:
            raise cannot_write(folder, error) from error
        return folder

    def data_splits(self) -> tuple[Table, dict[str, pd.DataFrame]]:
        """The run's data source read again and split exactly as training split it."""
        table = load_table(self.config.data.source, format=self.config.data.format)
        return table, _split(self.config, table)

    def evaluate_tensors(self, tensors: TensorTable) -> dict[str, float]:
        device, dtype = self._device()
        self.model.to(device)
        try:
            scores = evaluate_table(
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
            written = self.preprocessor.decode(self._forward(tensors))[name].tolist()
            references = self.preprocessor.decode({name: tensors.targets[name]})[name].tolist()
            scores.update(generation_metrics(written, references))
        return scores

    def _forward(self, tensors: TensorTable) -> dict[str, torch.Tensor]:
        from megalith.batching import forward_in_batches

        device, dtype = self._device()
        self.model.to(device)
        batch_size = self.config.train.eval_batch_size
        try:
            if isinstance(self.model, Seq2Seq):  # outputs are written token by token
                beams = getattr(self.config.model, "beam_size", 1)
                ids = decode_in_batches(self.model, tensors, batch_size, device, beams)
                return {self.model.name: ids}
            return forward_in_batches(self.model, tensors, batch_size, device, dtype)
        finally:
            self.model.cpu()

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
        corpus = is_language_model(self.config)
        table = load_table(str(data), format="text" if corpus else "auto")
        return table.frame, table.base_dir, table.origin


def load(path: str | Path) -> Run:
    """Load a run directory: `megalith.load("runs/digits-cnn").predict(frame)`."""
    return Run.load(path)


def load_weights(path: Path, model: nn.Module) -> dict[str, torch.Tensor]:
    """Weights from a safetensors file, refusing anything else and any non-finite value."""
    try:
        weights = load_file(path)
    except (SafetensorError, OSError) as error:
        raise RunError(
            f"{path} is not a readable safetensors file ({error}); "
            "Megalith only loads safetensors and never unpickles"
        ) from None
    expected = model.state_dict()
    if set(weights) != set(expected):
        missing = sorted(set(expected) - set(weights))
        unexpected = sorted(set(weights) - set(expected))
        raise RunError(
            f"{path} does not match the model in config.yaml "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    reshaped = [name for name, t in weights.items() if t.shape != expected[name].shape]
    if reshaped:
        name = reshaped[0]
        raise RunError(
            f"{path} does not match the model in config.yaml: '{name}' has shape "
            f"{tuple(weights[name].shape)}, the model needs {tuple(expected[name].shape)}"
        )
    bad = [
        name for name, t in weights.items() if t.is_floating_point() and not torch.isfinite(t).all()
    ]
    if bad:
        raise RunError(f"{path} holds NaN or Inf values in {', '.join(bad[:3])}; retrain or resume")
    return weights


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _split(cfg: Config, table: Table) -> dict[str, pd.DataFrame]:
    first = cfg.outputs[0]
    stratify = first.name if first.type in ("category", "binary") else None
    if stratify is not None and stratify not in table.frame.columns:
        stratify = None  # the preprocessor reports the missing column with a better message
    return split_table(
        table.frame, cfg.data.split, seed=cfg.seed, stratify_by=stratify, origin=table.origin
    )


def _transform(
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


def _check_watched_metric(cfg: Config, preprocessor: Preprocessor) -> None:
    if cfg.train.early_stop is None:
        return
    known = [f"val/{name}" for name in available_metrics(preprocessor.output_specs)]
    metric = cfg.train.early_stop.metric
    if metric not in known:
        raise ConfigError(
            f"train.early_stop.metric: unknown metric '{metric}'{did_you_mean(metric, known)}; "
            f"choose from {', '.join(known)}"
        )


def _default_watch(preprocessor: Preprocessor) -> str:
    return "val/" + available_metrics(preprocessor.output_specs)[1]


def _with_batch_size(
    cfg: Config, model: nn.Module, train: TensorTable, ddp: Distributed, console: Console
) -> Config:
    """`batch_size: auto` resolved (the same on every rank), so config.yaml records the number
    and a resumed run keeps it."""
    from megalith.training.batch_size import find_batch_size

    device = ddp.device(resolve_device(cfg.train.device))
    dtype = resolve_precision(cfg.train.precision, device)
    found = find_batch_size(model, train, cfg.outputs, device, dtype, ddp.world_size)
    model.cpu()
    size = int(ddp.smallest(torch.tensor(found, device=device)))
    where = "fits in the GPU's memory" if device.type == "cuda" else "is the CPU default"
    console.print(f"train.batch_size auto: {size} rows per step ({where})")
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"batch_size": size})})


def _with_absolute_paths(cfg: Config, base_dir: Path) -> Config:
    """The data source, a pretrained model's directory and tokenizer paths made absolute, so
    config.yaml in the run directory works from anywhere."""
    data = cfg.model_dump(mode="json")

    def absolute(path: str) -> str:
        return str((base_dir / path).resolve())

    if not cfg.data.source.startswith("builtin:"):
        data["data"]["source"] = absolute(cfg.data.source)
    if data["model"].get("path"):
        data["model"]["path"] = absolute(data["model"]["path"])
    for feature in [*data["inputs"], *data["outputs"]]:
        if feature.get("tokenizer_path"):
            feature["tokenizer_path"] = absolute(feature["tokenizer_path"])
    return Config.model_validate(data)


def _tokenizer_source(preprocessor: Preprocessor, default: str) -> str:
    """Where the run's pretrained tokenizer was read from."""
    from megalith.data.tokenizers import PretrainedTokenizer

    encoders: list[Any] = [*preprocessor.inputs, *preprocessor.outputs]
    for encoder in encoders:
        tokenizer = getattr(encoder, "tokenizer", None)
        if isinstance(tokenizer, PretrainedTokenizer) and tokenizer.source:
            return tokenizer.source
    return default


def _save_pretrained_files(
    model: PretrainedModel, preprocessor: Preprocessor, run: Path, model_path: str
) -> None:
    """RUN/pretrained (config and tokenizer, so a full fine-tune needs nothing else) and, for
    LoRA, RUN/adapter in peft's format."""
    folder = run / ARCHITECTURE_DIR
    try:
        save_architecture(model, _tokenizer_source(preprocessor, model_path), folder)
        if model.lora:
            save_adapter(model, run / "adapter")
    except OSError as error:
        raise cannot_write(folder, error) from error


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


def _print_summary(console: Console, scores: dict[str, Any], run_dir: RunDir) -> None:
    from rich.table import Table as RichTable

    splits = [s for s in ("val", "test") if s in scores]
    table = RichTable(title="results")
    table.add_column("metric")
    for split in splits:
        table.add_column(split, justify="right")
    for metric in scores[splits[-1]] if splits else []:
        table.add_row(metric, *(f"{scores[s].get(metric, float('nan')):.4f}" for s in splits))
    console.print(table)
    console.print(f"run written to [bold]{run_dir.path}[/]")
