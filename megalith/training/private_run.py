"""A private run's preparation and record: the checks before step 0, the private-safe model,
and what eval.json says about the guarantee and what it does not cover."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from torch import nn

from megalith.data.sources import Table, load_table
from megalith.errors import ConfigError
from megalith.models.private_init import shrink_text_embeddings
from megalith.models.private_layers import make_private_safe
from megalith.training.opacus_notes import OpacusNotes
from megalith.training.privacy import PrivacyConfig, PrivateTraining, default_delta
from megalith.training.private_checks import check_private_training

if TYPE_CHECKING:
    from megalith.config import Config
    from megalith.data.preprocess import Preprocessor
    from megalith.training.distributed import Distributed

NOT_COVERED = (
    "the guarantee covers the model's weights, not the preprocessing fitted on the same train rows"
)


def prepare_privacy(
    cfg: Config,
    train_rows: int,
    ddp: Distributed,
    distilled: bool,
    console: Console | None = None,
) -> PrivateTraining | None:
    """The run's PrivateTraining when train.privacy is set (None otherwise); under DDP
    (`ddp` of several processes) each process draws its own share of every Poisson batch.
    A batch as large as the train rows, and a delta of at least 1 / the train rows, are
    noted on `console` (batch_size_note, delta_note).

    Raises:
        ConfigError: a setting DP-SGD here does not cover (see check_private_training), or
            an epsilon no noise reaches in the planned steps.
    """
    privacy = cfg.train.privacy
    if privacy is not None:
        _refuse_mixup(cfg)
    check_private_training(
        privacy,
        cfg.train.clip_grad_norm,
        cfg.train.precision,
        cfg.train.compile,
        [feature.type for feature in cfg.outputs],
        distilled,
        sharded=ddp.enabled and cfg.train.strategy == "fsdp",
    )
    if privacy is None:
        return None
    notes = [
        batch_size_note(cfg.train.rows_per_batch, cfg.train.grad_accumulation, train_rows),
        delta_note(privacy.delta, train_rows),
    ]
    for note in notes:
        if note and console is not None:
            console.print(f"[yellow]note[/]: {note}")
    private = PrivateTraining(
        config=privacy,
        rows=train_rows,
        batch_size=cfg.train.rows_per_batch,
        accumulation=cfg.train.grad_accumulation,
        seed=cfg.seed,
        rank=ddp.rank,
        world_size=ddp.world_size,
    )
    # the noise for the planned steps, before the run directory is written: an epsilon that
    # no noise reaches is refused with nothing left behind
    private.choose_noise(private.planned(cfg.train.epochs, cfg.train.max_steps))
    return private


def batch_size_note(batch_size: int, accumulation: int, train_rows: int) -> str | None:
    """A note when one DP-SGD step would draw every train row (sample rate q = 1), else None.

    Poisson sampling at a rate q < 1 is what amplifies privacy (each row is in only some of the
    steps); at q = 1 every step sees every row, and the same epsilon needs far more noise.
    """
    if batch_size * accumulation < train_rows:
        return None
    suggested = max(1, train_rows // (10 * accumulation))
    accumulated = f" x train.grad_accumulation {accumulation}" if accumulation > 1 else ""
    return (
        f"train.batch_size {batch_size}{accumulated} is at least the {train_rows} train rows: "
        "every DP-SGD step takes every row (sample rate 1), so Poisson sampling's privacy "
        f"amplification is lost and epsilon needs far more noise; set train.batch_size to "
        f"{suggested} or less (about a tenth of the train rows)"
    )


def delta_note(delta: float | None, train_rows: int) -> str | None:
    """A note when train.privacy.delta is at least 1 / the train rows, else None.

    (epsilon, delta)-DP allows a failure of probability delta; at delta >= 1/N a mechanism that
    publishes one of the N rows outright meets it, so the guarantee says little.
    """
    if delta is None or delta < 1.0 / max(train_rows, 1):
        return None
    return (
        f"train.privacy.delta {delta:g} is at least 1 / the {train_rows} train rows: a model "
        "that gave away one row outright would meet such a guarantee; set delta to "
        f"{default_delta(train_rows):.3g} (1 / (10 x train rows)) or less, or leave it out "
        "for that default"
    )


def _refuse_mixup(cfg: Config) -> None:
    """Mixup blends each row with another, so one row's gradient carries two rows: the
    per-row clipping DP-SGD's guarantee rests on would bound pairs, not rows.

    Raises:
        ConfigError: an image input's augmentation mixes rows.
    """
    from megalith.data.features.image_augment import resolve_augment

    for feature in cfg.inputs:
        augment = getattr(feature, "augment", None)
        if feature.type == "image" and augment is not None and resolve_augment(augment).mixup:
            raise ConfigError(
                f"inputs.{feature.name}.augment: mixup blends rows, which DP-SGD's per-row "
                "clipping does not cover; set mixup: 0 (or a preset without it) or turn "
                "train.privacy off"
            )


def private_model(
    cfg: Config, model: nn.Module, console: Console | None = None, fresh: bool = False
) -> nn.Module:
    """`model` made private-safe when train.privacy is set (BatchNorm -> GroupNorm, ...), with
    a printed notice per replaced layer; `model` unchanged otherwise. A `fresh` model (newly
    initialised, not loaded) also gets its text embeddings scaled by
    train.privacy.text_embedding_scale (megalith.models.private_init).

    Raises:
        ConfigError: a layer that no private-safe equivalent replaces, by name.
    """
    if cfg.train.privacy is None:
        return model
    notice = (lambda line: console.print(f"[yellow]note[/]: {line}")) if console else None
    opacus = OpacusNotes()
    with opacus.catching(sample_rate=0.0):  # Opacus's DP layers warn about their settings
        model = make_private_safe(model, notice)
    if notice is not None:
        for line in opacus.notes:
            notice(line)
    if fresh:
        columns = [feature.name for feature in cfg.inputs]
        shrink_text_embeddings(model, cfg.train.privacy.text_embedding_scale, notice, columns)
    return model


def public_table(privacy: PrivacyConfig | None, base_dir: Path) -> Table | None:
    """train.privacy.public_data read as a table (relative to the config's folder), or None.

    Raises:
        DataError: the file cannot be read, naming it.
    """
    if privacy is None or privacy.public_data is None:
        return None
    return load_table(privacy.public_data, relative_to=base_dir)


def fitted_from_private_rows(preprocessor: Preprocessor) -> list[str]:
    """One line per feature whose fitted preprocessing (statistics, vocabulary, categories)
    was computed on the private train rows: the DP guarantee does not cover these."""
    lines = []
    encoders: list[Any] = [*preprocessor.inputs, *preprocessor.outputs]
    for encoder in encoders:
        state = encoder.state()
        tokenizer = state.get("tokenizer")
        if isinstance(tokenizer, dict) and tokenizer.get("kind") == "hash":
            del state["tokenizer"]  # hashing fits nothing: no vocabulary
        fitted = sorted(key for key, value in state.items() if value not in (None, {}))
        if fitted:
            name = getattr(encoder.config, "name", "?")
            lines.append(f"{name}: {', '.join(fitted)}")
    return lines


def private_summary(
    private: PrivateTraining, preprocessor: Preprocessor, console: Console
) -> dict[str, Any]:
    """eval.json's `privacy`: the epsilon spent and what the guarantee leaves out (printed)."""
    public = private.config.public_data
    if public is None and private.config.preprocessing == "fixed":
        public = "given in the config (train.privacy.fixed)"
    fitted = [] if public else fitted_from_private_rows(preprocessor)
    summary = private.summary()
    summary["preprocessing_fitted_on"] = public or "the private train rows"
    summary["not_covered"] = None if public else NOT_COVERED
    summary["fitted_from_private_rows"] = fitted
    summary["notes"] = list(private.notes)
    console.print(
        f"privacy: epsilon {summary['epsilon']:.3g} spent (target {summary['target_epsilon']}) "
        f"at delta {summary['delta']:.3g}, {summary['accountant']} accountant, "
        f"noise multiplier {summary['noise_multiplier']:.3g}, "
        f"{summary['clipping'].replace('_', '-')} clipping"
    )
    for note in private.notes:
        console.print(f"[yellow]note[/]: {note}")
    if fitted:
        names = [line.split(":")[0] for line in fitted]
        shown = ", ".join(names[:4]) + (f" and {len(names) - 4} more" if len(names) > 4 else "")
        console.print(
            f"[yellow]warning[/]: {NOT_COVERED}: {shown} (eval.json privacy."
            "fitted_from_private_rows lists what)"
        )
    return summary
