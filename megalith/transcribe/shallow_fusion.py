"""A Megalith GPT run as the language model of CTC prefix beam search (shallow fusion).

Shallow fusion (Ç. Gülçehre et al. 2015, "On using monolingual corpora in neural machine
translation"; for CTC, Hannun et al. 2014) adds lm_weight * log P_lm(prefix) to each beam's
score. The recognizer and the language model must spell text the same way: both character
tokenizers (labels are matched by their character), or one and the same fitted tokenizer.

`GPTLanguageModel(prefix)` gives log P(next label | prefix) over the recognizer's labels. Each
prefix is run once: its keys and values (the KV cache) are kept, so a prefix one label longer
costs one token of GPT. Text starts after the GPT's end-of-text id, as its documents did.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch

from megalith.data.tokenizers import EOS, SPECIAL_TOKENS, UNKNOWN, Tokenizer
from megalith.errors import ConfigError, RunError


def _tokenizer_of(run: Any) -> Tokenizer:
    tokenizer = getattr(run.preprocessor.outputs[0], "tokenizer", None)
    if tokenizer is None:
        raise ConfigError(f"{run.path}: the run has no fitted text tokenizer")
    return tokenizer


def label_map(recognizer: Tokenizer, language_model: Tokenizer, where: str) -> np.ndarray:
    """int64 (V_asr,): the language model's id for each of the recognizer's ids, -1 for the
    special ids (padding = CTC blank, begin / end), which transcripts never contain.

    Raises:
        ConfigError: the two tokenizers spell text differently (naming `where`).
    """
    if recognizer.state() == language_model.state():
        ids = np.arange(recognizer.vocab_size, dtype=np.int64)
    elif recognizer.kind == "char" and language_model.kind == "char":
        labels = [recognizer.decode([i]) for i in range(recognizer.vocab_size)]
        encoded = language_model.encode(labels)
        ids = np.array([row[0] if len(row) == 1 else -1 for row in encoded], dtype=np.int64)
    else:
        if recognizer.kind == "char":
            fix = "train the GPT run with `outputs: [{name: text, type: text, tokenizer: char}]`"
        else:  # a char GPT cannot score a word / bpe recognizer's tokens either
            fix = (
                f"a {recognizer.kind} recognizer fuses only a GPT with its very tokenizer: "
                "train both with `tokenizer: char`"
            )
        raise ConfigError(
            f"{where}: the language model's tokenizer is {language_model.kind} and the "
            f"recognizer's is {recognizer.kind} with another vocabulary; shallow fusion needs "
            f"both char-level or the same tokenizer: {fix}"
        )
    ids[: len(SPECIAL_TOKENS)] = -1
    ids[1] = UNKNOWN  # an unknown character is the language model's unknown too
    return ids


class GPTLanguageModel:
    """log P(next label | prefix) (V_asr,) from a GPT run, with a KV cache per prefix."""

    def __init__(self, language_model: Any, recognizer: Tokenizer, where: str = "model.lm"):
        """
        Args:
            language_model: a loaded GPT run (megalith.load), e.g. trained on transcripts.
            recognizer: the speech recognizer's fitted text tokenizer (its CTC labels).
            where: the config key or option named in errors.
        Raises:
            ConfigError: the run is not a GPT language model, or its tokenizer does not match.
        """
        from megalith.models.gpt import GPT

        model = language_model.model
        if not isinstance(model, GPT):
            raise ConfigError(
                f"{where}: {language_model.path} is a model.arch "
                f"{language_model.config.model.arch} run; shallow fusion needs a GPT language "
                "model (model.arch gpt) trained on text"
            )
        self.model = model.eval()
        self.context = model.context
        tokenizer = _tokenizer_of(language_model)
        self.to_lm = label_map(recognizer, tokenizer, where)
        self.start_id = int(getattr(language_model.preprocessor.outputs[0], "end_id", EOS))
        # prefix -> (scores over the recognizer's labels, the KV cache after it or None)
        self._states: dict[tuple[int, ...], tuple[np.ndarray, Any]] = {}

    @contextmanager
    def searching(self) -> Iterator[None]:
        """Run inside one beam search: torch on one thread, as each step is a single token
        through a small model and a second thread only adds synchronisation (on 2 busy cores a
        34-frame search took 0.27 s on one thread, 3.1 s on two)."""
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            yield
        finally:
            torch.set_num_threads(threads)
            self.clear()  # cached prefixes belong to one utterance

    def clear(self) -> None:
        """Forget cached prefixes (call between utterances to bound memory)."""
        self._states.clear()

    def __call__(self, prefix: tuple[int, ...]) -> np.ndarray:
        return self._state(prefix)[0]

    @torch.inference_mode()
    def prefetch(self, prefixes: Sequence[tuple[int, ...]]) -> None:
        """Score the prefixes not seen yet whose one-shorter heads are cached, one batched GPT
        step per prefix length (the beam search asks for all of a frame's beams at once)."""
        groups: dict[int, list[tuple[int, ...]]] = {}
        for prefix in prefixes:
            head = self._states.get(prefix[:-1]) if prefix else None
            fits = len(prefix) < self.context  # the new token's position is in the window
            if fits and prefix not in self._states and head is not None and head[1] is not None:
                groups.setdefault(len(prefix), []).append(prefix)
        for length, group in groups.items():
            heads = [self._states[prefix[:-1]][1] for prefix in group]
            caches = [
                (torch.cat([h[i][0] for h in heads]), torch.cat([h[i][1] for h in heads]))
                for i in range(len(heads[0]))
            ]  # each (G, heads, length, head_dim)
            ids = [int(self.to_lm[prefix[-1]]) for prefix in group]
            newest = torch.tensor([[i if i >= 0 else UNKNOWN] for i in ids])  # (G, 1)
            logits, grown = self.model.decode(newest, caches, start=length)
            for row, prefix in enumerate(group):
                own = [(k[row : row + 1], v[row : row + 1]) for k, v in grown]
                self._states[prefix] = (self._scores(logits[row, -1]), own)

    def _scores(self, logits: torch.Tensor) -> np.ndarray:
        """The LM's next-token logits (V_lm,) as log-probabilities over the recognizer's labels."""
        lm_log_probs = logits.float().log_softmax(-1).numpy()
        return np.where(self.to_lm >= 0, lm_log_probs[np.maximum(self.to_lm, 0)], -np.inf)

    @torch.inference_mode()
    def _state(self, prefix: tuple[int, ...]) -> tuple[np.ndarray, Any]:
        if prefix in self._states:
            return self._states[prefix]
        tokens = [self.start_id] + [int(self.to_lm[label]) for label in prefix]
        tokens = [token if token >= 0 else UNKNOWN for token in tokens]
        if len(tokens) > self.context:  # past the window: rerun its last `context` tokens
            window = torch.tensor([tokens[-self.context :]])
            logits, _ = self.model.decode(window)
            caches = None  # the window moved: nothing longer can reuse these positions
        elif prefix:  # one token on top of the cached head
            _, head_caches = self._state(prefix[:-1])
            newest = torch.tensor([tokens[-1:]])
            logits, caches = self.model.decode(newest, head_caches, start=len(tokens) - 1)
        else:
            logits, caches = self.model.decode(torch.tensor([tokens]))
        self._states[prefix] = (self._scores(logits[0, -1]), caches)
        return self._states[prefix]


def load_language_model(
    path: str, recognizer: Tokenizer, load: Callable[[str], Any], where: str = "model.lm"
) -> GPTLanguageModel:
    """The GPT run at `path`, loaded by `load` (megalith.load), as a language model over the
    recognizer's labels.

    Raises:
        ConfigError: the run cannot be loaded, is no GPT, or spells text differently.
    """
    try:
        run = load(path)
    except RunError as error:
        raise ConfigError(f"{where}: {error}") from None
    return GPTLanguageModel(run, recognizer, where)
