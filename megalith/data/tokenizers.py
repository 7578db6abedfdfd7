"""Tokenizers fitted on the train split: words, characters, BPE or WordPiece (or hashed words,
which are not fitted: data/hashing_tokenizer.py).

Every kind reserves the same four ids, so models and decoding never ask which kind made them:

    0 = padding   1 = unknown   2 = begin of text   3 = end of text   4.. = the vocabulary

BPE and WordPiece come from Hugging Face `tokenizers` (fast, in Rust); their fitted state is the
library's own JSON, kept inside preprocessor.json. BPE works on bytes, so it never needs the
unknown id and decodes back to the exact text; it is the choice for language models.

A pretrained tokenizer (read from a Hugging Face model directory) keeps its own vocabulary; its
ids are moved up by one so that 0 still means padding, and a pretrained model moves them back.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal, Protocol

from megalith.data.hashing_tokenizer import HashingTokenizer
from megalith.data.token_ids import BOS as BOS  # re-exported: the ids' home is token_ids
from megalith.data.token_ids import EOS as EOS
from megalith.data.token_ids import PAD as PAD
from megalith.data.token_ids import SPECIAL_TOKENS as SPECIAL_TOKENS
from megalith.data.token_ids import UNKNOWN as UNKNOWN
from megalith.data.token_ids import TokenizerKind as TokenizerKind
from megalith.data.token_ids import word_tokens

BYTE_LEVEL_MINIMUM = 256 + len(SPECIAL_TOKENS)
"""Byte-level BPE starts from all 256 bytes, so its vocabulary is never smaller."""


class Tokenizer(Protocol):
    """What every fitted tokenizer offers."""

    kind: TokenizerKind

    @property
    def vocab_size(self) -> int:
        """Number of ids, special ones included."""
        ...

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text, without padding or begin / end ids."""
        ...

    def decode(self, ids: Iterable[int]) -> str:
        """Text back from ids; special ids are left out."""
        ...

    def state(self) -> dict[str, Any]:
        """The fitted state as plain JSON values."""
        ...

    @property
    def end_id(self) -> int:
        """The id that ends a document (EOS, or a pretrained tokenizer's own end token)."""
        ...


class _VocabularyTokenizer:
    """Word or character tokens looked up in a fitted vocabulary."""

    def __init__(
        self,
        kind: Literal["word", "char"],
        lowercase: bool,
        vocabulary: list[str],
        ngrams: int = 1,
    ) -> None:
        self.kind: TokenizerKind = kind
        self.lowercase = lowercase
        self.vocabulary = vocabulary
        self.ngrams = ngrams
        self._ids = {token: i + len(SPECIAL_TOKENS) for i, token in enumerate(vocabulary)}

    @property
    def vocab_size(self) -> int:
        return len(self.vocabulary) + len(SPECIAL_TOKENS)

    end_id = EOS

    def split(self, text: str) -> list[str]:
        if self.kind == "char":
            return list(text.lower() if self.lowercase else text)
        return word_tokens(text, self.lowercase, self.ngrams)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        ids = self._ids
        return [[ids.get(token, UNKNOWN) for token in self.split(text)] for text in texts]

    def decode(self, ids: Iterable[int]) -> str:
        first = len(SPECIAL_TOKENS)
        tokens = [self.vocabulary[i - first] for i in ids if first <= i < self.vocab_size]
        return (" " if self.kind == "word" else "").join(tokens)

    def state(self) -> dict[str, Any]:
        ngrams = {"ngrams": self.ngrams} if self.ngrams > 1 else {}
        return {
            "kind": self.kind,
            "lowercase": self.lowercase,
            "vocabulary": self.vocabulary,
            **ngrams,
        }

    @classmethod
    def fit(
        cls,
        kind: Literal["word", "char"],
        texts: Sequence[str],
        vocab_size: int,
        lowercase: bool,
        ngrams: int = 1,
    ) -> _VocabularyTokenizer:
        """Keep the most frequent tokens (ties by token, so the result is deterministic)."""
        counter = cls(kind, lowercase, [], ngrams)
        counts = Counter(token for text in texts for token in counter.split(text))
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        keep = max(vocab_size - len(SPECIAL_TOKENS), 1)
        return cls(kind, lowercase, [token for token, _ in ranked[:keep]], ngrams)


class _HuggingFaceTokenizer:
    """BPE (byte level) or WordPiece, trained and run by Hugging Face `tokenizers`."""

    def __init__(self, kind: Literal["bpe", "wordpiece"], tokenizer: Any) -> None:
        self.kind: TokenizerKind = kind
        self.tokenizer = tokenizer

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())

    end_id = EOS

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "tokenizer": json.loads(self.tokenizer.to_str())}

    @classmethod
    def fit(
        cls,
        kind: Literal["bpe", "wordpiece"],
        texts: Sequence[str],
        vocab_size: int,
        lowercase: bool,
    ) -> _HuggingFaceTokenizer:
        from tokenizers import Tokenizer as HFTokenizer  # imported only by those who use it
        from tokenizers import decoders, models, normalizers, pre_tokenizers, trainers

        trainer: Any
        if kind == "bpe":
            tokenizer = HFTokenizer(models.BPE())
            if lowercase:
                tokenizer.normalizer = normalizers.Lowercase()
            tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tokenizer.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(
                vocab_size=vocab_size,
                special_tokens=SPECIAL_TOKENS,
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                show_progress=False,
            )
        else:
            # WordPiece's trainer is BPE with a '##' prefix for pieces inside a word; it numbers
            # those '##x' pieces in hash order and breaks ties between merges by number, so two
            # fits differ (huggingface/tokenizers#1794). Listing them up front, sorted, fixes
            # their numbers; the WordPiece model below is then built from the learned pieces.
            tokenizer = HFTokenizer(models.BPE(continuing_subword_prefix="##"))
            tokenizer.normalizer = normalizers.BertNormalizer(lowercase=lowercase)
            tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
            trainer = trainers.BpeTrainer(
                vocab_size=vocab_size,
                special_tokens=SPECIAL_TOKENS + _continuing_alphabet(tokenizer, texts),
                continuing_subword_prefix="##",
                show_progress=False,
            )
        tokenizer.train_from_iterator(texts, trainer, length=len(texts))
        if kind == "wordpiece":
            pieces = sorted(set(tokenizer.get_vocab()) - set(SPECIAL_TOKENS))
            vocabulary = {token: i for i, token in enumerate([*SPECIAL_TOKENS, *pieces])}
            wordpiece = HFTokenizer(models.WordPiece(vocabulary, unk_token=SPECIAL_TOKENS[UNKNOWN]))
            wordpiece.normalizer = tokenizer.normalizer
            wordpiece.pre_tokenizer = tokenizer.pre_tokenizer
            wordpiece.decoder = decoders.WordPiece()
            tokenizer = wordpiece
        return cls(kind, tokenizer)

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> _HuggingFaceTokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        return cls(state["kind"], HFTokenizer.from_str(json.dumps(state["tokenizer"])))


def _continuing_alphabet(tokenizer: Any, texts: Sequence[str]) -> list[str]:
    """'##c' for every character c of the normalised texts, sorted."""
    normalize = tokenizer.normalizer.normalize_str
    characters = set().union(*(normalize(text) for text in texts))
    return sorted(f"##{c}" for c in characters if not c.isspace())


class PretrainedTokenizer:
    """The tokenizer of a Hugging Face model directory, its ids moved up by one (0 = padding).

    Inputs get the model's own special tokens (BERT's [CLS] ... [SEP]); a language model's corpus
    does not, its documents are separated by the model's end token instead. `truncate_to` cuts
    long texts inside the tokenizer, so the closing special token is kept.
    """

    kind: TokenizerKind = "pretrained"

    def __init__(
        self,
        tokenizer: Any,
        *,
        special_tokens: bool,
        end: int | None,
        positions: int | None,
        source: str = "",
    ) -> None:
        self.tokenizer = tokenizer
        self.special_tokens = special_tokens
        self.end = end
        self.positions = positions
        """The model's number of positions (the longest input it takes), when it says."""
        self.source = source

    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size(with_added_tokens=True)) + 1

    @property
    def end_id(self) -> int:
        if self.end is None:
            raise ValueError(
                f"the tokenizer in {self.source or 'the model directory'} has no end-of-text "
                "token (eos_token); a language model's corpus needs one to separate documents"
            )
        return self.end + 1

    def truncate_to(self, length: int) -> None:
        self.tokenizer.enable_truncation(length)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=self.special_tokens)
        return [[i + 1 for i in e.ids] for e in encodings]

    def decode(self, ids: Iterable[int]) -> str:
        return str(self.tokenizer.decode([i - 1 for i in ids if i > 0], skip_special_tokens=True))

    def state(self) -> dict[str, Any]:
        saved = json.loads(self.tokenizer.to_str())
        saved["truncation"] = None  # the length lives with the encoder, not in this state
        return {
            "kind": self.kind,
            "tokenizer": saved,
            "special_tokens": self.special_tokens,
            "end": self.end,
            "positions": self.positions,
            "source": self.source,
        }

    @classmethod
    def load(cls, path: str, *, special_tokens: bool) -> PretrainedTokenizer:
        """The tokenizer of the model directory `path` (its tokenizer.json or what transformers
        converts into one); nothing is downloaded and no code from the directory is run.

        Raises:
            ValueError: the directory has no usable fast tokenizer (the message says why).
        """
        from megalith.models.pretrained import quiet_transformers

        if not Path(path).is_dir():
            raise ValueError(f"tokenizer_path: {path} is not a directory")
        transformers = quiet_transformers()
        try:
            loaded = transformers.AutoTokenizer.from_pretrained(path, trust_remote_code=False)
            config = transformers.AutoConfig.from_pretrained(path, trust_remote_code=False)
        except (OSError, ValueError, KeyError) as error:
            raise ValueError(f"cannot read a tokenizer from {path}: {error}") from None
        backend = getattr(loaded, "backend_tokenizer", None)
        if backend is None:
            raise ValueError(
                f"{path} has no fast tokenizer (tokenizer.json); save the tokenizer with "
                "transformers' fast tokenizer class, or convert it"
            )
        positions = getattr(config, "max_position_embeddings", None) or getattr(
            config, "n_positions", None
        )
        tokenizer = cls(
            backend,
            special_tokens=special_tokens,
            end=loaded.eos_token_id,
            positions=int(positions) if positions else None,
            source=path,
        )
        tokenizer.tokenizer.no_truncation()
        tokenizer.tokenizer.no_padding()
        return tokenizer

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PretrainedTokenizer:
        from tokenizers import Tokenizer as HFTokenizer

        return cls(
            HFTokenizer.from_str(json.dumps(state["tokenizer"])),
            special_tokens=bool(state["special_tokens"]),
            end=state.get("end"),
            positions=state.get("positions"),
            source=str(state.get("source", "")),
        )


def fit_tokenizer(
    kind: TokenizerKind,
    texts: Sequence[str],
    vocab_size: int,
    lowercase: bool = True,
    ngrams: int = 1,
) -> Tokenizer:
    """Fit a tokenizer of `kind` with at most `vocab_size` ids (specials included); the word
    tokenizer also counts runs of up to `ngrams` words as tokens."""
    if kind == "word" or kind == "char":
        return _VocabularyTokenizer.fit(kind, texts, vocab_size, lowercase, ngrams)
    if kind == "hash":  # nothing to fit: no vocabulary
        return HashingTokenizer(vocab_size, lowercase, ngrams)
    if kind == "pretrained":
        raise ValueError("a pretrained tokenizer is loaded (PretrainedTokenizer.load), not fitted")
    return _HuggingFaceTokenizer.fit(kind, texts, vocab_size, lowercase)


def tokenizer_from_state(state: dict[str, Any]) -> Tokenizer:
    """Rebuild a tokenizer from its `state()`.

    Raises:
        ValueError: the state is not one a tokenizer wrote.
    """
    kind = state.get("kind")
    if kind in ("word", "char"):
        return _VocabularyTokenizer(
            kind, bool(state["lowercase"]), list(state["vocabulary"]), int(state.get("ngrams", 1))
        )
    if kind == "hash":
        return HashingTokenizer.from_state(state)
    if kind in ("bpe", "wordpiece", "pretrained"):
        try:
            if kind == "pretrained":
                return PretrainedTokenizer.from_state(state)
            return _HuggingFaceTokenizer.from_state(state)
        except Exception as error:  # the Rust side raises a bare Exception on bad JSON
            raise ValueError(f"invalid {kind} tokenizer state: {error}") from None
    raise ValueError(f"unknown tokenizer kind {kind!r}")
