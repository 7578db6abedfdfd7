"""Text generation from a trained language model: sampling, the KV cache, and streaming.

`generate_ids` yields one token id at a time. With the cache, each step feeds only the newest
token and reuses every block's keys and values; without it, each step runs the whole window
again. Both see the same window of at most `context` tokens: when it is full it restarts from
its second half, so long generations keep going.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from megalith.data.tokenizers import EOS


class LanguageModel(Protocol):
    """What generation needs: the window length and a forward pass that keeps a KV cache
    (megalith.models.gpt.GPT, megalith.models.pretrained.PretrainedModel)."""

    context: int

    def decode(
        self, tokens: torch.Tensor, caches: Any = None, start: int = 0
    ) -> tuple[torch.Tensor, Any]: ...

    def eval(self) -> Any: ...

    def parameters(self) -> Iterator[torch.nn.Parameter]: ...


@dataclass(frozen=True)
class Sampling:
    """How the next token is picked from the model's logits."""

    temperature: float = 0.8
    """Divides the logits; 0 picks the most likely token (greedy decoding)."""
    top_k: int | None = None
    """Sample among the k most likely tokens only."""
    top_p: float | None = None
    """Sample among the most likely tokens whose probabilities add up to p (nucleus)."""

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.top_k is not None and self.top_k < 1:
            raise ValueError(f"top-k must be >= 1, got {self.top_k}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top-p must be in (0, 1], got {self.top_p}")

    def pick(self, logits: torch.Tensor, generator: torch.Generator) -> int:
        """One token id from logits (V,)."""
        if self.temperature == 0:
            return int(logits.argmax())
        logits = logits.float() / self.temperature
        if self.top_k is not None and self.top_k < logits.numel():
            threshold = torch.topk(logits, self.top_k).values[-1]
            logits = logits.masked_fill(logits < threshold, float("-inf"))
        if self.top_p is not None and self.top_p < 1:
            ordered, order = logits.sort(descending=True)
            cumulative = ordered.softmax(-1).cumsum(-1)
            drop = cumulative - ordered.softmax(-1) >= self.top_p  # keeps the token crossing p
            logits = logits.scatter(0, order[drop], float("-inf"))
        probabilities = logits.softmax(-1)
        return int(torch.multinomial(probabilities, 1, generator=generator))


@torch.inference_mode()
def generate_ids(
    model: LanguageModel,
    prompt: Sequence[int],
    max_new_tokens: int,
    sampling: Sampling,
    seed: int = 0,
    use_cache: bool = True,
    stop_at_end: bool = True,
    end_id: int = EOS,
) -> Iterator[int]:
    """Yield up to `max_new_tokens` ids continuing `prompt` (an empty prompt starts a document).

    Stops early at the end-of-text id `end_id` when `stop_at_end`.
    """
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device="cpu").manual_seed(seed)
    ids = list(prompt) or [end_id]  # training documents follow an end id
    start = max(0, len(ids) - model.context + 1)  # first position of the window
    caches = None
    for _ in range(max_new_tokens):
        if caches is None or not use_cache:
            window = torch.tensor([ids[start:]], device=device)
            logits, caches = model.decode(window)
        else:
            newest = torch.tensor([ids[-1:]], device=device)
            logits, caches = model.decode(newest, caches, start=len(ids) - 1 - start)
        token = sampling.pick(logits[0, -1].cpu(), generator)
        if token == end_id and stop_at_end:
            return
        ids.append(token)
        yield token
        if len(ids) - start >= model.context:  # window full: keep its second half
            start = len(ids) - model.context // 2
            caches = None


def stream_text(decode: Callable[[list[int]], str], ids: Iterator[int]) -> Iterator[str]:
    """Text pieces as ids arrive; a piece is held back while it ends inside a UTF-8 character."""
    seen: list[int] = []
    shown = ""
    for token in ids:
        seen.append(token)
        text = decode(seen)
        if text.endswith("\ufffd"):  # byte-level BPE: the rest of the character comes next
            continue
        yield text[len(shown) :]
        shown = text
