"""Training orchestration: the path from a config to a finished run directory.

`train` prepares the data, the preprocessing and the model, hands them to the training loop,
then evaluates and writes the run directory. Loading a run back is `megalith.run.Run`'s job;
nothing outside the CLI and `megalith.train` imports this module.
"""

from __future__ import annotations

import dataclasses
import random
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.console import Console
from torch import nn

from megalith.config import Config, config_to_yaml, load_config
from megalith.data.preprocess import Preprocessor
from megalith.data.sources import load_data
from megalith.data.split import split_notes
from megalith.data.tensors import TensorTable
from megalith.device import resolve_device, resolve_precision, threads_notice
from megalith.errors import ConfigError, RunError
from megalith.evaluate.environment import describe_environment
from megalith.finish import publish_results, save_and_evaluate
from megalith.models import ASRConfig, PretrainedConfig
from megalith.models.pretrained import (
    check_model_dir,
)
from megalith.paths import check_confined, resolved
from megalith.run import Run, load
from megalith.run_data import split_data, transform_split
from megalith.runs import RunDir, check_weights_fit
from megalith.teacher import attach_teacher, teacher_override
from megalith.training import checkpoint as ckpt
from megalith.training.augment import build_augmenter
from megalith.training.callbacks import Callback, MetricsLog, ProgressBar, Throughput
from megalith.training.distributed import Distributed
from megalith.training.elastic import (
    Attempt,
    describe_world_change,
    restart_note,
    run_dir_on_this_try,
)
from megalith.training.fixed_preprocessing import new_run_preprocessor
from megalith.training.heartbeat import Heartbeat, collective_failure
from megalith.training.loop import TrainJob, train_loop
from megalith.training.losses import total_loss
from megalith.training.private_run import prepare_privacy, private_model, private_summary
from megalith.training.resume import check_resume_changes, check_resume_fits
from megalith.training.speech import check_speech_splits, speech_job, speech_loss
from megalith.training.start_from import (
    save_architecture_record,
    starting_model,
    starting_preprocessor,
)
from megalith.training.tensorboard import build_loggers
from megalith.training.watched_metric import check_watched_metric, watched_metric

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
    start_from: Run | None = None,
    teacher: str | Path | Run | None = None,
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
        start_from: a run whose model (architecture and weights, e.g. a pruned one) and
            preprocessing (not refitted) training continues from; `config` must keep its
            inputs, outputs and model (see megalith.training.start_from).
        teacher: a trained run (or its directory) to distil from, as `teacher:` in the config.
    Raises:
        ConfigError, DataError, RunError: with a message naming the key, column or file.
    """
    overrides = [*overrides, *teacher_override(teacher)]
    if resume is not None:
        run_dir = RunDir(Path(resume))
        if not run_dir.config.is_file():
            raise RunError(f"cannot resume {run_dir.path}: no config.yaml there")
        check_confined(run_dir.path)  # before anything is read from or written into it
        cfg, base_dir = load_config(run_dir.config, overrides)
        if overrides:
            stored, _ = load_config(run_dir.config)
            check_resume_changes(
                stored.model_dump(mode="json"), cfg.model_dump(mode="json"), run_dir.path
            )
    elif config is None:
        raise ConfigError("give a config to train, or resume= a run directory to continue")
    else:
        cfg, base_dir = load_config(config, overrides)
        run_dir, again, overwrite_own = run_dir_on_this_try(cfg.name, output_dir)
        if again:  # torchrun restarted a group that died: continue its own run
            return train(
                resume=run_dir.path,
                overrides=overrides,
                console=console,
                callbacks=callbacks,
                start_from=start_from,
            )
        overwrite = overwrite or overwrite_own
    ddp = Distributed.from_env()
    store = ddp.start(resolve_device(cfg.train.device), cfg.train.collective_timeout)
    heartbeat = Heartbeat(store, ddp.rank, ddp.world_size) if store is not None else None
    try:
        run_dir = RunDir(Path(ddp.broadcast(str(run_dir.path))))  # one name for every rank
        console = console or Console(stderr=True, quiet=not ddp.is_main)
        if Attempt.from_env().restarted:
            console.print(restart_note(resume is not None))
        return _train(
            cfg,
            base_dir,
            run_dir,
            resume is not None,
            overwrite,
            console,
            [*callbacks, *([heartbeat] if heartbeat else [])],
            ddp,
            start_from,
        )
    except RuntimeError as error:  # a process stopped answering: name it, no traceback
        failure = collective_failure(error, heartbeat, cfg.train.collective_timeout)
        if failure is None:
            raise
        raise failure from error
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
    start_from: Run | None = None,
) -> Run:
    """Data -> preprocessing -> model -> loop -> evaluation -> run directory (rank 0 writes)."""
    cfg = _with_absolute_paths(cfg, base_dir)
    if cfg.recommend is not None:  # interactions, negatives and ranking: their own loop
        from megalith.recommend.run import train_recommender_run

        return train_recommender_run(cfg, run_dir, resuming, overwrite, console)
    if isinstance(cfg.model, PretrainedConfig):
        check_model_dir(cfg.model.path)  # before its tokenizer is read
    table = load_data(cfg.data, relative_to=base_dir)
    # config.yaml records how a CSV was read, so that predict reads new files the same way
    cfg = cfg.model_copy(update={"data": cfg.data.read_as(table.dialect)})
    splits = split_data(cfg, table)
    for note in [*split_notes(table.frame, cfg.data.split), threads_notice(cfg.train.threads)]:
        if note:
            console.print(f"[yellow]note[/]: {note}")
    ddp = dataclasses.replace(ddp, sharded=ddp.enabled and cfg.train.strategy == "fsdp")
    checkpoint = ckpt.load_latest_checkpoint(run_dir.checkpoints, ddp.sharded) if resuming else None
    if checkpoint is not None:
        check_resume_fits(checkpoint.state["loop"], cfg.model_dump(mode="json"), run_dir.path)
    if start_from is not None:
        preprocessor = starting_preprocessor(cfg, start_from)
    elif checkpoint is not None and run_dir.preprocessor.is_file():
        preprocessor = Preprocessor.load(run_dir.preprocessor)
    else:
        # on the train rows, privacy.public_data, or given (privacy.preprocessing: fixed)
        preprocessor = new_run_preprocessor(cfg, splits["train"], table, base_dir)
    tensors = {
        name: transform_split(cfg, preprocessor, frame, table, name, console)
        for name, frame in splits.items()
    }
    if isinstance(cfg.model, ASRConfig):  # CTC must be able to align every transcript
        check_speech_splits(tensors, preprocessor, table.origin)
        from megalith.transcribe.transcriber import check_language_model

        check_language_model(cfg.model, preprocessor, load)  # the GPT model.lm fuses
    check_watched_metric(cfg, preprocessor)
    teacher = attach_teacher(cfg, preprocessor, splits, table, tensors["train"], resuming)
    loggers = build_loggers(cfg.train.log, run_dir.path) if ddp.is_main else []
    throughput = Throughput()
    seed_everything(cfg.seed)
    model = starting_model(cfg, preprocessor, run_dir, start_from)
    trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if cfg.train.batch_size == "auto":
        cfg = _with_batch_size(cfg, model, tensors["train"], ddp, console)
    private = prepare_privacy(cfg, len(tensors["train"]), ddp, teacher is not None, console)
    model = private_model(cfg, model, console, fresh=start_from is None)
    if checkpoint is not None:  # refused here, before the run directory is touched
        check_weights_fit(checkpoint.model, model, checkpoint.path)
        if private is not None and "privacy" in checkpoint.state["loop"]:
            private.check_resume(
                checkpoint.state["loop"]["privacy"], cfg.train.epochs, cfg.train.max_steps
            )
    augment = build_augmenter(cfg.inputs, cfg.outputs, preprocessor.input_specs, cfg.seed, ddp.rank)
    if ddp.is_main:
        _start_run_dir(run_dir, cfg, preprocessor, resuming, overwrite, refit=checkpoint is None)
        if start_from is not None:
            save_architecture_record(cfg, preprocessor, model, run_dir)
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
        where = "the start: no checkpoint"
        if checkpoint is not None:
            at = checkpoint.state["loop"]["position"]
            where = f"{checkpoint.path.name} (step {at['step']}, epoch {at['epoch'] + 1})"
        console.print(f"resuming from {where}")
        written_by = checkpoint.state["loop"].get("processes") if checkpoint is not None else None
        change = describe_world_change(
            written_by, ddp.world_size, cfg.train.rows_per_batch, private is not None
        )
        if change:
            console.print(change)
    watch = watched_metric(cfg, preprocessor)
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
        else [cb for cb in callbacks if isinstance(cb, Heartbeat)],  # every rank beats
        distributed=ddp,
        record=cfg.model_dump(mode="json"),
        augment=augment,
        privacy=private,
    )
    job = speech_job(job, preprocessor, cfg.model) if isinstance(cfg.model, ASRConfig) else job
    job = teacher.distill(job) if teacher is not None else job
    result = train_loop(job, resume=checkpoint)
    if ddp.sharded:  # the whole weights, gathered by every rank, in an ordinary model
        weights = ddp.full_weights(model)
        model = starting_model(cfg, preprocessor, run_dir, None)
        model.load_state_dict(weights)
    preprocessor.trained_model = f"the run {run_dir.path}"  # what a missing column's error names
    run = Run(run_dir.path, cfg, preprocessor, model)
    if not ddp.is_main:
        return run
    training = {
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
    extra = {"privacy": private_summary(private, preprocessor, console)} if private else {}
    scores = save_and_evaluate(run, run_dir, tensors, training, extra, console)
    if teacher is not None:
        teacher.record(run_dir, model)
    publish_results(run, run_dir, scores, console)
    return run


def _start_run_dir(
    run_dir: RunDir,
    cfg: Config,
    preprocessor: Preprocessor,
    resuming: bool,
    overwrite: bool,
    refit: bool,
) -> None:
    """Create (or reuse, when resuming) the directory; write the config and the preprocessing.

    A resume from a checkpoint rewrites config.yaml only when a resumable key changed, and
    keeps its preprocessor.json (`refit` False): the run's files stay as they were until
    training itself moves on.
    """
    if not resuming:
        run_dir.create(overwrite=overwrite)
        shutil.rmtree(run_dir.checkpoints, ignore_errors=True)  # stale state of an overwritten run
        run_dir.architecture.unlink(missing_ok=True)  # and a pruned model's widths
        Attempt.from_env().claim(run_dir)  # a torchrun restart resumes only its own run
    text = config_to_yaml(cfg)
    if not run_dir.config.is_file() or run_dir.config.read_text(encoding="utf-8") != text:
        run_dir.write_text(run_dir.config, text)
    if refit or not run_dir.preprocessor.is_file():
        preprocessor.save(run_dir.preprocessor)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _with_batch_size(
    cfg: Config, model: nn.Module, train: TensorTable, ddp: Distributed, console: Console
) -> Config:
    """`batch_size: auto` resolved (the same on every rank), so config.yaml records the number
    and a resumed run keeps it."""
    from megalith.training.batch_size import MIN_STEPS_PER_EPOCH, auto_limit, find_batch_size

    device = ddp.device(resolve_device(cfg.train.device))
    dtype = resolve_precision(cfg.train.precision, device)
    loss = speech_loss(cfg.model) if isinstance(cfg.model, ASRConfig) else total_loss
    found = find_batch_size(model, train, cfg.outputs, device, dtype, ddp.world_size, loss)
    model.cpu()
    size = int(ddp.smallest(torch.tensor(found, device=device)))
    where = "is the CPU default"
    if device.type == "cuda":
        where = "fits in the GPU's memory"
        if size >= auto_limit(len(train), ddp.world_size) * ddp.world_size:
            where += f"; auto stops there so an epoch has >= {MIN_STEPS_PER_EPOCH} steps"
    console.print(f"train.batch_size auto: {size} rows per step ({where})")
    return cfg.model_copy(update={"train": cfg.train.model_copy(update={"batch_size": size})})


def _with_absolute_paths(cfg: Config, base_dir: Path) -> Config:
    """The data source, a pretrained model's directory, a recognizer's language model run
    (model.lm) and tokenizer paths made absolute, so config.yaml in the run directory works
    from anywhere."""
    data = cfg.model_dump(mode="json")

    def absolute(path: str) -> str:
        return str(resolved(base_dir / path))

    if not cfg.data.source.startswith("builtin:"):
        data["data"]["source"] = absolute(cfg.data.source)
    for side in ("items", "users"):  # a recommender's side tables
        if data["data"].get(side):
            data["data"][side] = absolute(data["data"][side])
    if data["model"].get("path"):
        data["model"]["path"] = absolute(data["model"]["path"])
    if data["model"].get("lm"):  # a speech recognizer's GPT run (shallow fusion)
        data["model"]["lm"] = absolute(data["model"]["lm"])
    if data.get("teacher"):  # and distillation's defaults written out
        data["teacher"] = absolute(data["teacher"])
        data["distill"] = data.get("distill") or {}
    for feature in [*data["inputs"], *data["outputs"]]:
        if feature.get("tokenizer_path"):
            feature["tokenizer_path"] = absolute(feature["tokenizer_path"])
    return Config.model_validate(data)
