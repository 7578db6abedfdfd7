"""Text inputs and outputs: a tokenizer fitted on train, token ids padded to a fixed length."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from pydantic import Field, model_validator

from megalith.configbase import ConfigModel
from megalith.data.arrays import to_tensor
from megalith.data.features.encoding import SequenceEncoderConfig
from megalith.data.specs import InputSpec, OutputSpec
from megalith.data.tokenizers import (
    BOS,
    BYTE_LEVEL_MINIMUM,
    EOS,
    PAD,
    PretrainedTokenizer,
    Tokenizer,
    TokenizerKind,
    fit_tokenizer,
    tokenizer_from_state,
)
from megalith.errors import ConfigError, DataError
from megalith.paths import check_folder_for_reading

if TYPE_CHECKING:
    import torch


def check_tokenizer(tokenizer: TokenizerKind, vocab_size: int, path: str | None) -> None:
    """Byte-level BPE needs room for every byte, and only a pretrained tokenizer has a path:
    a ValueError (for pydantic) otherwise."""
    if tokenizer == "bpe" and vocab_size < BYTE_LEVEL_MINIMUM:
        raise ValueError(
            f"vocab_size must be at least {BYTE_LEVEL_MINIMUM} with the bpe tokenizer "
            "(256 bytes + 4 reserved ids)"
        )
    if path is not None and tokenizer != "pretrained":
        raise ValueError("tokenizer_path is read only with `tokenizer: pretrained`")


def load_pretrained_tokenizer(
    config: TextInput | TextOutput, *, special_tokens: bool
) -> PretrainedTokenizer:
    """The tokenizer in the feature's tokenizer_path, or a ConfigError naming the feature."""
    if config.tokenizer_path is None:
        raise ConfigError(
            f"{config.name}: tokenizer pretrained needs tokenizer_path, the Hugging Face model "
            "directory whose tokenizer to use"
        )
    if Path(config.tokenizer_path).is_dir():  # (a missing folder is named by the load below)
        check_folder_for_reading(
            config.tokenizer_path, f"{config.name}: tokenizer_path", error=ConfigError
        )
    try:
        return PretrainedTokenizer.load(config.tokenizer_path, special_tokens=special_tokens)
    except ValueError as error:
        raise ConfigError(f"{config.name}: {error}") from None


class TextInput(ConfigModel):
    """A free-text input column, tokenized and encoded into one vector."""

    name: str
    """Column name in the table."""
    type: Literal["text"] = "text"
    tokenizer: TokenizerKind = "word"
    """word (words and punctuation), char, bpe (byte-level BPE), wordpiece, pretrained (the
    tokenizer of a Hugging Face model directory; the default with model.arch pretrained), or
    hash (words hashed into vocab_size buckets: no vocabulary fitted; for private training)."""
    tokenizer_path: str | None = None
    """tokenizer pretrained: the model directory holding it (model.path by default)."""
    vocab_size: int = Field(20_000, ge=8)
    """Most token ids to keep, the 4 reserved ones included; rarer tokens map to 'unknown'."""
    max_length: int | None = Field(None, gt=0)
    """Tokens kept per row; by default the 95th percentile of train lengths, at most 256."""
    lowercase: bool = True
    """Lower-case text before tokenizing."""
    embedding_dim: int = Field(64, gt=0)
    """Size of the token embeddings."""
    encoder: SequenceEncoderConfig = SequenceEncoderConfig()
    """How the token embeddings become one vector: bag, cnn, rnn, lstm, gru or transformer."""
    ngrams: int = Field(1, ge=1, le=3)
    """word / hash tokenizer: also count runs of 2 (or 3) neighbouring words as tokens (bag)."""
    idf: bool = False
    """bag encoder: weight tokens by inverse document frequency on train, as TF-IDF does."""

    @model_validator(mode="after")
    def _tokenizer_settings_fit(self) -> TextInput:
        check_tokenizer(self.tokenizer, self.vocab_size, self.tokenizer_path)
        if self.ngrams > 1 and self.tokenizer not in ("word", "hash"):
            raise ValueError("ngrams needs the word (or hash) tokenizer")
        return self


_LONGEST_DEFAULT = 256


def text_cells(values: pd.Series | Sequence[Any]) -> list[str]:
    """Cells as strings; a missing cell is an empty text."""
    items = values.tolist() if isinstance(values, pd.Series) else list(values)
    return [
        "" if item is None or (not isinstance(item, str) and pd.isna(item)) else str(item)
        for item in items
    ]


def pad_ids(token_lists: Sequence[Sequence[int]], length: int) -> np.ndarray:
    """int64 (B, length): each list cut to `length`, right-padded with PAD."""
    ids = np.full((len(token_lists), length), PAD, dtype=np.int64)
    for row, tokens in enumerate(token_lists):
        kept = tokens[:length]
        ids[row, : len(kept)] = kept
    return ids


def inverse_document_frequency(
    token_lists: Sequence[Sequence[int]], vocab_size: int
) -> list[float]:
    """Smoothed idf per token id, as scikit-learn's TF-IDF: ln((1 + N) / (1 + df)) + 1."""
    counts = np.zeros(vocab_size, dtype=np.int64)
    for tokens in token_lists:
        counts[np.unique(np.asarray(tokens, dtype=np.int64))] += 1
    idf = np.log((1 + len(token_lists)) / (1 + counts)) + 1
    return [round(float(w), 5) for w in idf]


class TextInputEncoder:
    """Fits a tokenizer on train; int64 (B, L) ids right-padded with 0 (see data/tokenizers.py)."""

    def __init__(self, config: TextInput, state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.tokenizer: Tokenizer | None = None
        self.max_length = 0
        self.idf: list[float] = []
        if state is not None:
            self.tokenizer = tokenizer_from_state(state["tokenizer"])
            self.max_length = int(state["max_length"])
            self.idf = [float(w) for w in state.get("idf", [])]
            if isinstance(self.tokenizer, PretrainedTokenizer):
                self.tokenizer.truncate_to(self.max_length)

    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None:
        """Fit the tokenizer on the train texts, choose max_length, count document frequencies."""
        texts = text_cells(values)
        if not any(text.strip() for text in texts):
            raise DataError(
                f"{where}: text column '{self.config.name}' has no words in the train split; "
                "check the column, or remove it from the inputs."
            )
        cfg = self.config
        if cfg.tokenizer == "pretrained":
            self.tokenizer = load_pretrained_tokenizer(cfg, special_tokens=True)
        else:
            self.tokenizer = fit_tokenizer(
                cfg.tokenizer, texts, cfg.vocab_size, cfg.lowercase, cfg.ngrams
            )
        encoded = self.tokenizer.encode(texts)
        lengths = np.array([len(tokens) for tokens in encoded])
        percentile = int(np.ceil(np.percentile(lengths, 95)))
        self.max_length = cfg.max_length or min(max(percentile, 1), _LONGEST_DEFAULT)
        if isinstance(self.tokenizer, PretrainedTokenizer):
            self._fit_model_positions(self.tokenizer)
        if cfg.idf:
            self.idf = inverse_document_frequency(encoded, self.tokenizer.vocab_size)

    def _fit_model_positions(self, tokenizer: PretrainedTokenizer) -> None:
        """A pretrained model reads at most its number of positions: cut to that by default."""
        positions = tokenizer.positions
        if positions is None:
            return
        if self.config.max_length is not None and self.config.max_length > positions:
            raise ConfigError(
                f"inputs.{self.config.name}.max_length: {self.config.max_length} tokens, but the "
                f"model in {tokenizer.source} reads at most {positions}"
            )
        self.max_length = min(self.max_length, positions)
        tokenizer.truncate_to(self.max_length)

    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor:
        """`encode` as a tensor."""
        return to_tensor(self.encode(values, where=where, base_dir=base_dir))

    def encode(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> np.ndarray:
        """Return int64 (B, max_length): token ids, 1 for unknown tokens, 0 after the text ends."""
        if self.tokenizer is None:
            raise RuntimeError(f"text input '{self.config.name}' used before fit")
        return pad_ids(self.tokenizer.encode(text_cells(values)), self.max_length)

    def state(self) -> dict[str, Any]:
        assert self.tokenizer is not None, "state() before fit()"
        idf = {"idf": self.idf} if self.idf else {}
        return {"tokenizer": self.tokenizer.state(), "max_length": self.max_length, **idf}

    def spec(self) -> InputSpec:
        assert self.tokenizer is not None, "spec() before fit()"
        return InputSpec(
            name=self.config.name,
            type="text",
            vocab_size=self.tokenizer.vocab_size,
            shape=(self.max_length,),
            embedding_dim=self.config.embedding_dim,
            token_weights=tuple(self.idf),
            encoder=self.config.encoder,
        )


class TextOutput(ConfigModel):
    """A text target: the tokens a language model (gpt) or a seq2seq model learns to write."""

    name: str
    """Column name in the table (for a plain-text corpus: 'text')."""
    type: Literal["text"] = "text"
    tokenizer: TokenizerKind = "bpe"
    """bpe (byte level: any text round-trips), char, word, wordpiece, or pretrained (model.arch
    pretrained: the model's own tokenizer)."""
    tokenizer_path: str | None = None
    """tokenizer pretrained: the model directory holding it (model.path by default)."""
    vocab_size: int = Field(4096, ge=8)
    """Most token ids to keep, the 4 reserved ones included."""
    lowercase: bool = False
    """Lower-case text before tokenizing."""
    max_length: int | None = Field(None, gt=0)
    """seq2seq: target tokens kept per row; by default the longest train row, at most 256."""
    weight: float = Field(1.0, gt=0)
    """Weight of this output's loss in the total loss."""
    missing: Literal["drop", "error"] = "drop"
    """Rows whose target is missing: drop them (with a notice) or stop with an error."""

    @model_validator(mode="after")
    def _tokenizer_settings_fit(self) -> TextOutput:
        check_tokenizer(self.tokenizer, self.vocab_size, self.tokenizer_path)
        return self


class TextOutputEncoder:
    """Fits a tokenizer on the train texts. Per row: int64 (B, L+2) ids framed by begin / end
    and right-padded (seq2seq targets); a language model's corpus is cut into windows instead
    (see megalith.data.corpus). `decode` turns ids back into text."""

    def __init__(self, config: TextOutput, state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.tokenizer: Tokenizer | None = None
        self.max_length = 0
        if state is not None:
            self.tokenizer = tokenizer_from_state(state["tokenizer"])
            self.max_length = int(state["max_length"])

    def fit(self, values: pd.Series, *, where: str, base_dir: Path | None = None) -> None:
        texts = text_cells(values)
        if not any(text.strip() for text in texts):
            raise DataError(
                f"{where}: text column '{self.config.name}' is empty in the train split; "
                "check the column or the corpus files."
            )
        cfg = self.config
        if cfg.tokenizer == "pretrained":
            tokenizer = load_pretrained_tokenizer(cfg, special_tokens=False)
            if tokenizer.end is None:
                raise ConfigError(
                    f"outputs.{cfg.name}: the tokenizer in {tokenizer.source} has no end-of-text "
                    "token (eos_token), which separates the documents of a corpus; add one to "
                    "its tokenizer_config.json"
                )
            self.tokenizer = tokenizer
        else:
            self.tokenizer = fit_tokenizer(cfg.tokenizer, texts, cfg.vocab_size, cfg.lowercase)
        if cfg.max_length:
            self.max_length = cfg.max_length
        else:  # every row: a longer row outside a sample would be cut silently
            longest = max(len(ids) for ids in self.tokenizer.encode(texts))
            self.max_length = min(max(longest, 1), _LONGEST_DEFAULT)

    @property
    def end_id(self) -> int:
        """The id that ends a document (EOS; a pretrained tokenizer's own end token)."""
        assert self.tokenizer is not None, "end_id before fit()"
        return self.tokenizer.end_id

    def encode(self, values: pd.Series | Sequence[Any]) -> list[list[int]]:
        """Token ids of every cell, unframed and uncut."""
        if self.tokenizer is None:
            raise RuntimeError(f"text output '{self.config.name}' used before fit")
        return self.tokenizer.encode(text_cells(values))

    def transform(
        self, values: pd.Series, *, where: str, base_dir: Path | None = None
    ) -> torch.Tensor:
        """int64 (B, max_length + 2): BOS, the tokens (cut to max_length), EOS, then PAD."""
        framed = [[BOS, *ids[: self.max_length], EOS] for ids in self.encode(values)]
        return to_tensor(pad_ids(framed, self.max_length + 2))

    def decode_ids(self, ids: Sequence[int]) -> str:
        """One row of ids back to text; stops at the first EOS."""
        assert self.tokenizer is not None, "decode before fit"
        kept = list(ids)
        if EOS in kept:
            kept = kept[: kept.index(EOS)]
        return self.tokenizer.decode(kept)

    def decode(self, outputs: torch.Tensor | np.ndarray) -> dict[str, Any]:
        """Generated ids (B, L) -> {name: texts}."""
        return {self.config.name: [self.decode_ids(row) for row in outputs.tolist()]}

    def state(self) -> dict[str, Any]:
        assert self.tokenizer is not None, "state() before fit()"
        return {"tokenizer": self.tokenizer.state(), "max_length": self.max_length}

    def spec(self) -> OutputSpec:
        assert self.tokenizer is not None, "spec() before fit()"
        return OutputSpec(
            name=self.config.name,
            type="text",
            num_classes=self.tokenizer.vocab_size,
            shape=(self.max_length + 2,),
        )
