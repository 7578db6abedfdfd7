"""`megalith init DATA --private`: the config `infer_config` writes, turned into a
differentially private one (DP-SGD through Opacus, `train.privacy`; docs/privacy.md).

What changes, and why (each change is repeated as a note in the written config):
- `train.privacy` with the target epsilon (delta left to its default, 1 / (10 N));
- batches of about a fifth of the train rows (a power of two, at most 4,096): DP-SGD adds the same
  noise to every step whatever the batch, so a larger batch drowns it better (De et al. 2022,
  Li et al. 2022), and the epochs raised so that the run takes about PRIVATE_STEPS noisy steps
  (on the benchmark's 9,000 train rows: 2,048 rows for 60 epochs, the best it found);
- a text bag (`init`'s text model) becomes the private-friendly one of the benchmark: words
  hashed into buckets (`tokenizer: hash`, no vocabulary fitted on private rows, none to leak),
  single words, weighted by idf (an L2-normalised TF-IDF bag), at a learning rate that suits
  the few large steps;
- no early stopping: the noise multiplier is chosen for the planned steps, and a noisy
  validation loss stops a private run long before it has learnt what it can.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from megalith.data.infer import Inference
from megalith.data.split import split_name
from megalith.errors import DataError

PRIVATE_STEPS = 300
"""Noisy optimizer steps a private run aims at: the benchmark's text bag did best at epsilon 8
with 300 steps of 2,048 rows (60 epochs), against 270 of 1,024 or 360 of 4,096; the noise
multiplier grows slowly with the steps (benchmarks/privacy.py, docs/privacy.md)."""
_MIN_EPOCHS, _MAX_EPOCHS = 10, 100
_PRIVATE_TEXT: dict[str, Any] = {
    "tokenizer": "hash",
    "ngrams": 1,
    "vocab_size": 20_000,
    "embedding_dim": 64,
    "idf": True,
    "encoder": "bag",
}
"""A private text input: the recommended text bag of docs/privacy.md (Text models)."""
_NOT_PRIVATE = {"gpt": "a language model", "seq2seq": "a sequence-to-sequence model"}
_RECOMMENDERS = {"mf", "ncf", "two_tower"}


def with_privacy(inference: Inference, epsilon: float, train_rows: int) -> Inference:
    """`inference`'s config trained with DP-SGD at `epsilon` over `train_rows` private rows.

    Args:
        inference: what `infer_config` decided for a table (not a corpus, not a recommender).
        epsilon: the privacy budget for the whole run (> 0).
        train_rows: the rows the train split will hold (N): the batch, the epochs and delta's
            default (1 / (10 N)) follow from it.

    Raises:
        DataError: a model DP-SGD does not train here (language models, seq2seq,
            recommenders), or epsilon not > 0.
    """
    config, notices = inference.config, list(inference.notices)
    arch = config["model"].get("arch", "mlp")
    if arch in _NOT_PRIVATE or arch in _RECOMMENDERS:
        what = _NOT_PRIVATE.get(arch, "a recommender")
        raise DataError(
            f"--private: {inference.summary or 'this data'} gives {what} (model.arch {arch}), "
            "which private training does not cover yet (docs/privacy.md, Models); leave out "
            "--private"
        )
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise DataError(f"--epsilon {epsilon}: the privacy budget must be a number above 0")
    train = config["train"]
    batch = private_batch_size(train_rows)
    steps_per_epoch = max(1, math.ceil(train_rows / batch))
    epochs = min(_MAX_EPOCHS, max(_MIN_EPOCHS, math.ceil(PRIVATE_STEPS / steps_per_epoch)))
    old_steps = int(train.get("epochs", epochs)) * max(
        1, math.ceil(train_rows / int(train.get("batch_size", batch)))
    )
    if train.pop("early_stop", None) is not None:  # a note on it (images') no longer holds
        notices = [n for n in notices if "early stopping after" not in n]
    train.update(batch_size=batch, epochs=epochs)
    schedule = train.get("schedule")
    if isinstance(schedule, dict) and schedule.get("warmup_steps"):  # the same share of the run
        share = int(schedule["warmup_steps"]) / old_steps
        schedule["warmup_steps"] = max(1, round(share * steps_per_epoch * epochs))
    texts = [
        f for f in config["inputs"] if f["type"] == "text" and f.get("encoder") in (None, "bag")
    ]
    bag_only = arch == "mlp" and len(texts) == len(config["inputs"]) and texts
    for feature in texts if bag_only else []:
        feature.update(_PRIVATE_TEXT)
    # the benchmark's table MLP kept 0.59 at a clip of 1 and 0.73 at 5 (docs/privacy.md)
    privacy = {"epsilon": float(epsilon), "max_grad_norm": 1.0 if bag_only else 5.0}
    if bag_only:
        train["optimizer"] = {"name": "adamw", "lr": 0.01, "weight_decay": 0.0}
    train["privacy"] = privacy
    notices.append(
        f"train.privacy: DP-SGD at epsilon {epsilon:g} (delta 1 / (10 x {train_rows:,} train "
        "rows)); the guarantee covers the weights, not the preprocessing fitted on the train "
        "rows (docs/privacy.md)"
    )
    notices.append(
        "train.privacy.max_grad_norm 1: each row's gradient is clipped to 1, the private text "
        "bag's best (docs/privacy.md, Text models)"
        if bag_only
        else "train.privacy.max_grad_norm 5: each row's gradient is clipped to 5; the benchmark "
        "table's MLP kept 0.59 accuracy at a clip of 1, 0.73 at 5 (docs/privacy.md)"
    )
    notices.append(
        f"train.batch_size {batch} and {epochs} epochs (about {steps_per_epoch * epochs} noisy "
        f"steps{_warmup_text(schedule)}): DP-SGD adds the same noise to every step, so large "
        "batches and more epochs keep more accuracy; no early stopping, as epsilon is spent for "
        "the planned steps"
    )
    if bag_only:
        names = ", ".join(f["name"] for f in texts)
        notices.append(
            f"{names}: words hashed into 20,000 buckets (no vocabulary from private rows), "
            "single words weighted by idf, AdamW at lr 0.01 without weight decay: the private "
            "text bag that keeps the most accuracy (docs/privacy.md, Text models)"
        )
    summary = inference.summary
    return Inference(config, notices, summary)


def _warmup_text(schedule: Any) -> str:
    """', the learning rate warmed up over the first N' when the config warms it up."""
    if isinstance(schedule, dict) and schedule.get("warmup_steps"):
        return f", the learning rate warmed up over the first {schedule['warmup_steps']}"
    return ""


def expected_train_rows(frame: pd.DataFrame, split: dict[str, Any]) -> int:
    """The rows the train split of `frame` will hold under `split` (fractions or a column)."""
    if "column" in split:
        return int(sum(split_name(value) == "train" for value in frame[split["column"]]))
    held_out = float(split.get("val", 0.1)) + float(split.get("test", 0.1))
    return max(1, round(len(frame) * (1 - held_out)))


def private_batch_size(train_rows: int) -> int:
    """About a fifth of the train rows, a power of two, at most 4,096: from 256 up on tables of
    1,280 train rows or more, smaller below. A floor of 256 would reach or pass the train rows
    of a small table, and then every step takes every row (q = 1): no amplification by
    sampling, and far more noise for the same epsilon (train says so before step 0)."""
    target = max(1.0, min(4096.0, train_rows / 5))
    return int(2 ** round(math.log2(target)))
