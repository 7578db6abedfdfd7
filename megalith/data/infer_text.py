"""`megalith init` for text models: a language model of a corpus, or a fine-tune of a
pretrained Hugging Face model (the table configs come from `megalith.data.infer`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from megalith.data.infer import Inference, default_name
from megalith.data.sources import Table
from megalith.errors import DataError

_SMALL_CORPUS = 2_000_000
"""Characters up to which init writes the small language model (python_gpt.yaml's size)."""


def infer_language_model(
    table: Table, *, source: str, folder: bool, name: str | None = None
) -> Inference:
    """A GPT config for the corpus in `table` (one document per row, column `text`), sized to
    train in minutes on a CPU: byte-level BPE, a 4-layer model for up to 2M characters, a 6-layer
    one above, 1,000 optimizer steps at most.

    Raises:
        DataError: fewer than 3 documents, which cannot be split into train, val and test.
    """
    texts = table.frame["text"]
    documents, characters = len(texts), int(texts.str.len().sum())
    if documents < 3:
        raise DataError(
            f"{table.origin}: {documents} document(s) ({characters:,} characters); a language "
            "model needs at least 3 to split into train, val and test: add text or files"
        )
    held_out = round(min(0.25, max(0.05, 1 / documents)), 3)  # at least one document each
    small = characters <= _SMALL_CORPUS
    vocab = 2048 if small else 8192
    model = (
        {"arch": "gpt", "context": 128, "layers": 4, "heads": 4, "dim": 128, "dropout": 0.0}
        if small
        else {"arch": "gpt", "context": 256, "layers": 6, "heads": 8, "dim": 256, "dropout": 0.0}
    )
    data: dict[str, Any] = {"source": source, "split": {"val": held_out, "test": held_out}}
    if folder:
        data = {"source": source, "format": "text", "split": data["split"]}
    config = {
        "name": name or default_name(source),
        "seed": 0,
        "data": data,
        "outputs": [{"name": "text", "type": "text", "tokenizer": "bpe", "vocab_size": vocab}],
        "model": model,
        "train": {
            "epochs": 10,
            "max_steps": 1000,
            "batch_size": 32,
            "optimizer": {"name": "adamw", "lr": 3.0e-3 if small else 1.0e-3, "weight_decay": 0.1},
            "schedule": {"name": "cosine", "warmup_steps": 100, "min_lr_ratio": 0.1},
            "clip_grad_norm": 1.0,
            "early_stop": {"metric": "val/loss", "patience": 2},
        },
    }
    notices = [
        "a language model (model.arch gpt) of the corpus: whole documents go to val and test",
        "sized for a few minutes on a CPU (max_steps: 1000); with a GPU, raise max_steps, dim, "
        "layers and context",
        "after training: megalith generate RUN --prompt '...'",
    ]
    summary = f"{table.origin}: {documents} documents, {characters:,} characters"
    return Inference(config, notices, summary)


def with_pretrained(inference: Inference, path: str, folder: Path | None = None) -> Inference:
    """The config turned into a fine-tune of the Hugging Face model in `path`: one text input
    (the others dropped with a notice) or the corpus, the model's own tokenizer, and the usual
    fine-tuning settings (a few epochs at a small learning rate, every weight trained). A
    language model's window is 256 tokens, or fewer when the model in `folder` (the directory
    as found from here; `path` is as the config names it) has fewer positions.

    Raises:
        DataError: a table without a text column.
    """
    config = inference.config
    notices = list(inference.notices)
    language_model = config["model"]["arch"] == "gpt"
    if language_model:
        config["outputs"] = [{"name": "text", "type": "text"}]
        positions = model_positions(folder) if folder is not None else None
        context = min(256, positions) if positions else 256
        model = {"arch": "pretrained", "path": path, "lora": None, "context": context}
        notices = [
            n.replace("(model.arch gpt)", "(model.arch pretrained)").replace(
                "raise max_steps, dim, layers and context", "raise max_steps and context"
            )
            for n in notices
        ]
        train: dict[str, Any] = {"epochs": 3, "max_steps": 1000, "batch_size": 8}
        optimizer = {"name": "adamw", "lr": 5.0e-5, "weight_decay": 0.01}
    else:
        texts = [f for f in config["inputs"] if f["type"] == "text"]
        if not texts:
            raise DataError(
                f"{inference.summary or 'the table'}: no text column for the pretrained model to "
                "read; --pretrained fine-tunes a text model"
            )
        dropped = [f["name"] for f in config["inputs"] if f is not texts[0]]
        if dropped:
            notices.append(
                f"model.arch pretrained reads one text column ({texts[0]['name']}); left out: "
                + ", ".join(dropped)
            )
        config["inputs"] = [{"name": texts[0]["name"], "type": "text"}]
        model = {"arch": "pretrained", "path": path, "lora": None}
        train = {"epochs": 3, "batch_size": 16}
        optimizer = {"name": "adamw", "lr": 2.0e-5, "weight_decay": 0.01}
    config["model"] = model
    config["train"] = {
        **train,
        "optimizer": optimizer,
        "schedule": {"name": "cosine", "warmup_steps": 50},
        "early_stop": {"metric": "val/loss", "patience": 2},
    }
    notices.append("every pretrained weight trains; set model.lora: {} to train adapters only")
    return Inference(config, notices, inference.summary)


def model_positions(folder: Path) -> int | None:
    """The positions of the Hugging Face model in `folder` (its config.json's
    max_position_embeddings, n_positions or n_ctx), or None when they cannot be read: training
    then says what is wrong with the folder."""
    try:
        settings = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(settings, dict):
        return None
    for key in ("max_position_embeddings", "n_positions", "n_ctx"):
        value = settings.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None
