"""A causal language model as explain sees it: a function of its token embeddings (1, T, D) to
the logits of the token after the last position, for either family explain takes.

    GPT (megalith/models/gpt.py)     embedding ─► from_embeddings ─► logits (B, T, V)
    pretrained (Hugging Face)        get_input_embeddings ─► net(inputs_embeds=...) ─► (B, T, V)

language.py attributes to those embeddings and reads the attention maps through this one
interface, so both families get the same explanation and the same trust figures. Ids are the
run's own throughout (a pretrained model's ids moved up by one, 0 = padding): the pretrained
model's logits get a padding column in front, as PretrainedModel.decode gives them.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from megalith.explain.attention import attention_modules, recorded_attention, token_label
from megalith.explain.pretrained import eager_attention
from megalith.explain.sanity import randomised_copy
from megalith.models.gpt import GPT
from megalith.models.pretrained import PretrainedModel


class NextToken(nn.Module):
    """forward(embeddings (B, T, D)) -> logits (B, V) of the token after the last position."""

    def embed(self, ids: list[int]) -> torch.Tensor:
        """The token embeddings (1, T, D) of one document's run ids, without gradients."""
        raise NotImplementedError

    def read(self, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """One pass over one document: the logits (T, V) after each token and the model's own
        attention weights (layers, heads, T, T), each query's summing to 1 over the keys."""
        raise NotImplementedError

    def randomised(self) -> NextToken:
        """The same architecture with every layer re-initialised (sanity.randomised_copy)."""
        raise NotImplementedError


class GPTNextToken(NextToken):
    """A Megalith GPT; its attention weights are recomputed beside its fused attention
    (attention.py), its outputs unchanged."""

    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        logits, _ = self.model.from_embeddings(x)
        return logits[:, -1, :]

    def embed(self, ids: list[int]) -> torch.Tensor:
        with torch.no_grad():
            return self.model.embedding(torch.tensor([ids]))  # (1, T, D)

    def read(self, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        modules = attention_modules(self.model.blocks)
        with recorded_attention(modules) as found, torch.no_grad():
            logits, _ = self.model.decode(torch.tensor([ids]))  # (1, T, V)
        weights = torch.stack([calls[0][0] for calls in found])  # (layers, heads, T, T)
        return logits[0], weights

    def randomised(self) -> NextToken:
        fresh = randomised_copy(self.model)
        assert isinstance(fresh, GPT)
        return GPTNextToken(fresh).eval()


class PretrainedNextToken(NextToken):
    """A Hugging Face causal LM (optionally with LoRA adapters): its word embeddings
    (`get_input_embeddings`) are attributed, the model adding its own position embeddings;
    its attention weights are its own (`output_attentions`, on the eager attention for that
    one pass: pretrained.eager_attention)."""

    def __init__(self, model: PretrainedModel) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, extra: torch.Tensor | None = None) -> torch.Tensor:
        net: Any = self.model.net
        logits = net(inputs_embeds=x, use_cache=False).logits[:, -1, :]  # (B, V) model ids
        return _with_padding(logits)

    def embed(self, ids: list[int]) -> torch.Tensor:
        model_ids, _ = self.model.model_ids(torch.tensor([ids]))
        net: Any = self.model.net
        with torch.no_grad():
            return net.get_input_embeddings()(model_ids)  # (1, T, D)

    def read(self, ids: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        model_ids, _ = self.model.model_ids(torch.tensor([ids]))
        net: Any = self.model.net
        with eager_attention(net), torch.no_grad():
            found = net(input_ids=model_ids, output_attentions=True, use_cache=False)
        weights = torch.stack([layer[0] for layer in found.attentions])  # (layers, heads, T, T)
        return _with_padding(found.logits[0]), weights.float()

    def randomised(self) -> NextToken:
        fresh = randomised_copy(self.model)
        assert isinstance(fresh, PretrainedModel)
        return PretrainedNextToken(fresh).eval()


def _with_padding(logits: torch.Tensor) -> torch.Tensor:
    """Model-id logits (..., V) -> run-id logits (..., V + 1): padding (id 0) never predicted."""
    return F.pad(logits, (1, 0), value=torch.finfo(logits.dtype).min)


def next_token_model(model: nn.Module) -> NextToken:
    """The explained view of a GPT or a pretrained language model run's model."""
    if isinstance(model, GPT):
        return GPTNextToken(model).eval()
    assert isinstance(model, PretrainedModel) and model.task == "language_model"
    return PretrainedNextToken(model).eval()


def token_text(tokenizer: Any, token: int) -> str:
    """A run token id as text: the model's own piece for a pretrained tokenizer when it
    decodes to nothing (its end token), else attention.token_label."""
    if getattr(tokenizer, "kind", None) != "pretrained":
        return token_label(tokenizer, token)
    decoded = tokenizer.decode([token])
    if decoded:
        return str(decoded)
    piece = tokenizer.tokenizer.id_to_token(token - 1) if token > 0 else "[PAD]"
    return str(piece) if piece is not None else f"#{token}"
