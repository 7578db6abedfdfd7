"""The training loop: forward -> loss -> backward -> step, then evaluate, checkpoint, adjust.

Everything the loop needs is prepared by `megalith.pipeline`; the loop only trains.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch
from pydantic import Field, field_validator, model_validator
from safetensors.torch import load_file
from torch import nn

from megalith.batching import count_batches, shuffled_batches
from megalith.bucketing import Bucketing, batch_order
from megalith.configbase import ConfigModel
from megalith.data.features import OutputFeature
from megalith.data.specs import OutputSpec
from megalith.data.tensors import TensorTable
from megalith.device import autocast, resolve_compile, resolve_device, resolve_precision, threads
from megalith.errors import ConfigError
from megalith.evaluate.evaluation import evaluate_table
from megalith.models.blocks import enable_activation_checkpointing
from megalith.models.cnn import use_channels_last
from megalith.training import checkpoint as ckpt
from megalith.training.augment import BatchAugmenter, augment_batch, mixed_loss
from megalith.training.callbacks import Callback
from megalith.training.distributed import Distributed, whole
from megalith.training.early_stop import EarlyStopConfig, EarlyStopping
from megalith.training.loop_state import Position, loop_state, restore_loop
from megalith.training.losses import class_weight_tensors, step_token_shares, total_loss
from megalith.training.optim import (
    OptimizerConfig,
    ScheduleConfig,
    build_optimizer,
    build_scheduler,
)
from megalith.training.privacy import PrivacyConfig, PrivateTraining
from megalith.training.safety import (
    CheckpointTimer,
    NanGuard,
    StopSignals,
    parse_checkpoint_every,
)
from megalith.training.sharded_checkpoint import save_sharded_checkpoint


class TrainConfig(ConfigModel):
    """How the model is trained."""

    epochs: int = Field(10, gt=0)
    """Passes over the train split."""
    max_steps: int | None = Field(None, gt=0)
    """Stop after this many optimizer steps, even inside an epoch (language models)."""
    batch_size: int | Literal["auto"] = 64
    """Rows per optimizer step (before gradient accumulation); auto: the largest power of two
    whose training step fits in the GPU's memory (64 on CPU), written into the run's config."""
    eval_batch_size: int = Field(1024, gt=0)
    """Rows per forward pass when evaluating and predicting."""
    optimizer: OptimizerConfig = OptimizerConfig()
    """The optimizer and its hyper-parameters."""
    schedule: ScheduleConfig = ScheduleConfig()
    """The learning-rate schedule."""
    clip_grad_norm: float | None = Field(None, gt=0)
    """Clip the gradients' global norm to this value."""
    grad_accumulation: int = Field(1, gt=0)
    """Batches whose gradients are summed before each optimizer step."""
    early_stop: EarlyStopConfig | None = None
    """Stop when a validation metric stops improving (needs a val split)."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Mixed precision: auto is bf16 on a GPU that supports it, fp32 on CPU."""
    compile: bool | Literal["auto"] = "auto"
    """torch.compile the model: auto compiles on GPU only."""
    device: str = "auto"
    """auto, cpu, cuda, cuda:N or mps."""
    threads: int | None = Field(None, gt=0)
    """CPU threads of PyTorch's operators while training, capped at the cores; null: PyTorch's
    default, one per core (a small model trains faster on 1, its operators too small to share)."""
    collective_timeout: float = Field(1800.0, gt=0)
    """Seconds a process waits in a collective (gradient all-reduce, FSDP gather) for the others
    before the run ends with an error naming the stalled process (several processes only)."""
    log_every: int = Field(50, gt=0)
    """Steps between two train-loss records in metrics.jsonl."""
    strategy: Literal["ddp", "fsdp"] = "ddp"
    """With several processes (--devices N, torchrun): ddp keeps the whole model on each one;
    fsdp shards weights, gradients and optimizer state across them (for models too big for one
    device)."""
    activation_checkpointing: bool = False
    """Recompute block activations in the backward pass to save memory (ResNet and Transformer
    blocks)."""
    checkpoint_async: bool | Literal["auto"] = "auto"
    """Write checkpoints on a background thread from a copy, while training goes on (auto: on
    a GPU)."""
    checkpoint_every: int | str | None = None
    """Also checkpoint inside epochs: every N steps (500) or every N minutes ('10m')."""
    on_nan: Literal["stop", "skip"] = "stop"
    """A NaN / Inf loss or gradient: stop the run (keeping the last checkpoint) or skip the step."""
    max_skipped_steps: int = Field(10, ge=0)
    """With on_nan: skip, stop anyway after this many skipped steps."""
    log: list[Literal["tensorboard"]] = []
    """Extra loggers: tensorboard writes scalars to RUN/tensorboard/ (needs that package)."""
    privacy: PrivacyConfig | None = None
    """Differentially private training (DP-SGD through Opacus): docs/privacy.md."""
    baselines: bool = True
    """After training, fit a majority and a linear model on the same split and inputs and report
    their test metrics beside the network's (eval.json `baselines`, the summary, report.html)."""

    @field_validator("batch_size")
    @classmethod
    def _positive(cls, value: int | str) -> int | str:
        if isinstance(value, int) and value <= 0:
            raise ValueError("batch_size must be greater than 0 (or auto)")
        return value

    @property
    def rows_per_batch(self) -> int:
        """batch_size, once `auto` has been resolved (megalith.training.batch_size)."""
        if not isinstance(self.batch_size, int):
            raise ConfigError("train.batch_size: auto must be resolved before training")
        return self.batch_size

    @field_validator("checkpoint_every")
    @classmethod
    def _steps_or_minutes(cls, value: int | str | None) -> int | str | None:
        parse_checkpoint_every(value)
        return value

    @model_validator(mode="after")
    def _sharded_checkpoints_by_steps(self) -> TrainConfig:
        # every process gathers the shards at the same step: a clock may tick apart on each
        if self.strategy == "fsdp" and isinstance(self.checkpoint_every, str):
            raise ValueError(
                "checkpoint_every: with strategy fsdp, give a number of steps (e.g. 500)"
            )
        return self


@dataclass
class TrainJob:
    """A prepared training job: the model, its data and where to write."""

    model: nn.Module
    outputs: Sequence[OutputFeature]
    specs: Sequence[OutputSpec]
    train: TensorTable
    val: TensorTable | None
    config: TrainConfig
    seed: int
    checkpoints: Path
    input_names: Sequence[str] = ()
    callbacks: list[Callback] = field(default_factory=list)
    distributed: Distributed = field(default_factory=Distributed)
    record: dict[str, Any] = field(default_factory=dict)
    """The run's whole config as JSON, kept in every checkpoint: a resume compares its own
    config with it (megalith.training.resume), whether --set or a hand edit changed it."""
    loss: Callable[..., torch.Tensor] = total_loss
    """The batch loss, called like `total_loss`; a distilled run's also runs its teacher
    (megalith.training.distill.DistillationLoss)."""
    evaluate: Callable[..., dict[str, float]] = evaluate_table
    """The validation scores, called like `evaluate_table`; a speech recognizer's adds its
    error rates (megalith.evaluate.speech.evaluate_speech)."""
    augment: BatchAugmenter | None = None
    """Train-time image augmentation of each batch (megalith.training.augment)."""
    privacy: PrivateTraining | None = None
    """Set when train.privacy is: Poisson batches, clipped noisy steps and the accountant."""
    bucketing: Bucketing | None = None
    """Batches of similar length, each cut to its longest row (megalith.bucketing)."""


@dataclass
class LoopResult:
    """What happened, for the summary and the report."""

    epochs_run: int
    steps: int
    best_epoch: int | None
    stopped_early: bool
    last_metrics: dict[str, float]
    train_seconds: float


def train_loop(job: TrainJob, resume: ckpt.Checkpoint | None = None) -> LoopResult:
    """Train `job.model` in place with checkpoints; restore the best weights at the end."""
    cfg, ddp = job.config, job.distributed
    device = ddp.device(resolve_device(cfg.device))
    dtype = resolve_precision(cfg.precision, device)
    model = job.model.to(device)
    if cfg.activation_checkpointing and enable_activation_checkpointing(model) == 0:
        raise ConfigError(
            "train.activation_checkpointing: this model has no blocks to recompute "
            "(resnet, gpt, seq2seq and Transformer text encoders have); set it to false"
        )
    use_channels_last(model, device)  # CNNs: NHWC kernels of oneDNN (CPU) and cuDNN (CUDA)
    wrapped = ddp.wrap(model, device, dtype, private=job.privacy is not None)
    forward: Callable[..., Any] = (
        torch.compile(wrapped) if resolve_compile(cfg.compile, device) else wrapped
    )
    private, loss_fn = job.privacy, job.loss
    batches_per_epoch = (
        private.batches_per_epoch
        if private is not None
        else count_batches(len(job.train), cfg.rows_per_batch)
    )
    steps_per_epoch = math.ceil(batches_per_epoch / cfg.grad_accumulation)
    total_steps = min(steps_per_epoch * cfg.epochs, cfg.max_steps or math.inf)
    optimizer = build_optimizer(model, cfg.optimizer, fused=device.type in ("cuda", "cpu"))
    if private is not None:  # per-sample gradients, clipping, noise and accounting (Opacus)
        forward, optimizer = private.attach(wrapped, optimizer, int(total_steps))
        loss_fn = private.loss(job.loss)
    scheduler = build_scheduler(optimizer, cfg.schedule, steps_per_epoch, int(total_steps))
    scaler = torch.amp.GradScaler(device.type, enabled=dtype == torch.float16)
    stopper = EarlyStopping(cfg.early_stop) if cfg.early_stop and job.val is not None else None
    at = Position()
    if resume is not None:
        at = restore_loop(resume, model, optimizer, scheduler, scaler, stopper, job.callbacks, ddp)
        if private is not None:
            private.load_state_dict(resume.state["loop"]["privacy"])
    train_data = (job.train.to(device) if device.type != "cpu" else job.train).pack()
    nan_guard = NanGuard(cfg.on_nan, cfg.max_skipped_steps, cfg.log_every, device, job.input_names)
    texts = [feature.name for feature in job.outputs if feature.type == "text"]
    class_weights = class_weight_tensors(job.specs, device)
    timer = CheckpointTimer(cfg.checkpoint_every)

    def checkpoint(position: Position) -> None:
        if not ddp.is_main and not ddp.sharded:  # one writer; every rank holds the same weights
            return
        # the epoch's running loss, as rank 0 saw it, stands for every process's share
        whole_epoch = dataclasses.replace(
            position,
            loss_sum=position.loss_sum * ddp.world_size,
            rows=position.rows * ddp.world_size,
        )
        state = loop_state(whole_epoch, scheduler, scaler, stopper, job.callbacks)
        state.update(config=job.record, seconds=earlier + time.perf_counter() - started)
        if private is not None:
            state["privacy"] = private.state_dict()
        state.update(processes=ddp.world_size)
        background = ckpt.resolve_checkpoint_async(cfg.checkpoint_async, device)
        if ddp.sharded:  # every process writes its own shards (rank 0's state is kept)
            save_sharded_checkpoint(
                job.checkpoints, position.step, model, optimizer, state, background
            )
            return
        weights, optimizer_state = ddp.full_weights(model), ddp.full_optimizer_state(optimizer)
        ckpt.save_checkpoint(
            job.checkpoints, position.step, weights, optimizer_state, state, background
        )

    for cb in job.callbacks:
        cb.on_train_start(int(total_steps), cfg.epochs, at.epoch)
    started, stopped, metrics = time.perf_counter(), False, {}
    # seconds trained before this process resumed the run: eval.json reports the whole run's
    earlier = float(resume.state["loop"].get("seconds", 0.0)) if resume is not None else 0.0
    with StopSignals() as signals, threads(cfg.threads):
        while at.epoch < cfg.epochs and not stopped and at.step < total_steps:
            epoch_start = time.perf_counter()
            model.train()
            loss_sum = torch.tensor(at.loss_sum, device=device)  # stays on the device: no sync
            order = batch_order(job.bucketing, len(job.train), job.seed, at.epoch, cfg)
            batches = (
                private.batches(train_data, at.epoch, at.batch, device)
                if private is not None
                else shuffled_batches(
                    train_data,
                    cfg.rows_per_batch,
                    order,
                    device,
                    at.batch,
                    ddp.local_part,
                    job.bucketing,
                )
            )
            shares: dict[str, torch.Tensor] = {}
            for i, batch in enumerate(batches, start=at.batch):
                if texts and (i % cfg.grad_accumulation == 0 or not shares):  # a step starts
                    shares = _token_shares(train_data, texts, order, i, cfg, batches_per_epoch, ddp)
                inputs, mix = augment_batch(job.augment, batch.inputs, at.epoch, i)
                with autocast(device, dtype):
                    outputs = forward(inputs)
                    loss = mixed_loss(
                        mix, loss_fn, job.outputs, outputs, batch.targets, shares, class_weights
                    )
                if not nan_guard.loss_ok(loss, at.step + 1, at.epoch, job.checkpoints):
                    optimizer.zero_grad(set_to_none=True)  # skip this batch (on_nan: skip)
                    continue
                # DP-SGD sums clipped per-row gradients over the virtual steps itself
                accumulate = cfg.grad_accumulation > 1 and private is None
                scaled = loss / cfg.grad_accumulation if accumulate else loss
                scaler.scale(scaled).backward()  # scale() is a no-op unless fp16
                loss_sum += loss.detach() * len(batch)
                at.rows += len(batch)
                if (i + 1) % cfg.grad_accumulation and i + 1 != batches_per_epoch:
                    continue
                grad_norm = _unscale_and_clip(model, optimizer, scaler, cfg.clip_grad_norm)
                if nan_guard.grads_ok(grad_norm, at.step + 1, at.epoch, job.checkpoints):
                    if scaler.is_enabled():
                        scaler.step(optimizer)
                        scaler.update()
                    else:
                        optimizer.step()
                    scheduler.step()
                    if private is not None:
                        private.account_step()
                optimizer.zero_grad(set_to_none=True)
                at.step, at.batch = at.step + 1, i + 1
                logged = float(loss.detach()) if at.step % cfg.log_every == 0 else None  # sync
                for cb in job.callbacks:
                    cb.on_step_end(at.step, at.epoch, len(batch) * cfg.grad_accumulation, logged)
                if signals.agree(ddp.largest) or timer.due(at.step):  # all stop together
                    at.loss_sum = float(loss_sum)
                    checkpoint(at)
                    signals.raise_if_received(at.step, job.checkpoints.parent)
                if at.step >= total_steps:  # train.max_steps reached inside the epoch
                    break

            loss_sum, rows = ddp.sum(loss_sum, at.rows)
            metrics = {
                "epoch": at.epoch + 1,
                "step": at.step,
                "train/loss": float(loss_sum) / max(rows, 1),
                "lr": float(scheduler.get_last_lr()[0]),
            }
            if private is not None:  # the budget spent so far, at the run's delta
                metrics["privacy/epsilon"] = private.epsilon()
            if job.val is not None:
                scores = job.evaluate(
                    model, job.val, job.outputs, job.specs, cfg.eval_batch_size, device, dtype
                )
                metrics.update({f"val/{name}": value for name, value in scores.items()})
            improved = stopper is not None and stopper.update(metrics, at.epoch)  # every rank
            if improved and (ddp.is_main or ddp.sharded):
                best = ddp.full_weights(model)  # sharded: a collective
                if ddp.is_main:
                    ckpt.save_best(job.checkpoints, best)
            stopped = stopper is not None and stopper.should_stop
            metrics["time"] = time.perf_counter() - epoch_start
            for cb in job.callbacks:
                cb.on_epoch_end(at.epoch, metrics)
            at = Position(epoch=at.epoch + 1, step=at.step)
            checkpoint(at)
            signals.raise_if_received(at.step, job.checkpoints.parent, ddp.largest)

    for cb in job.callbacks:
        cb.on_train_end(stopped)
    if private is not None:
        private.detach()
    best_epoch = None
    ddp.barrier()  # rank 0 has written the best weights
    if stopper is not None and stopper.best_epoch >= 0 and stopper.config.restore_best:
        ddp.load_full_weights(model, load_file(job.checkpoints / "best.safetensors"))
        best_epoch = stopper.best_epoch + 1
    result = LoopResult(
        epochs_run=at.epoch,
        steps=at.step,
        best_epoch=best_epoch,
        stopped_early=stopped,
        last_metrics=metrics,
        train_seconds=earlier + time.perf_counter() - started,
    )
    ckpt.wait_until_durable()  # the last checkpoint's fsync ran while the loop went on
    return result


def _unscale_and_clip(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler,
    clip_grad_norm: float | None,
) -> torch.Tensor | None:
    """Clip the gradients' global norm when asked; returns that norm (None without clipping)."""
    if clip_grad_norm is None:
        return None
    scaler.unscale_(optimizer)
    return whole(nn.utils.clip_grad_norm_(model.parameters(), clip_grad_norm))


def _token_shares(
    table: TensorTable,
    names: list[str],
    order: torch.Tensor,
    batch: int,
    cfg: TrainConfig,
    batches_per_epoch: int,
    ddp: Distributed,
) -> dict[str, torch.Tensor]:
    """The divisors of text losses for the optimizer step that batch `batch` belongs to."""
    first = batch - batch % cfg.grad_accumulation
    last = min(first + cfg.grad_accumulation, batches_per_epoch)
    size = cfg.rows_per_batch
    rows = order[first * size : min(last * size, len(order))]
    device = next(iter(table.targets.values())).device
    parts = cfg.grad_accumulation * ddp.world_size
    return step_token_shares(table.targets, names, rows.to(device, non_blocking=True), parts)
