"""GPT: a decoder-only Transformer language model over one text output.

    tokens (B, T) ─► token + position embeddings ─► N causal pre-norm blocks ─► LayerNorm
                 ─► logits (B, T, V) for the token after each position

The output embedding shares its weights with the input one (weight tying). Attention is
`scaled_dot_product_attention` with `is_causal`, so on GPU it runs as flash attention.
Generation feeds one token at a time and keeps every block's keys and values (the KV cache).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from megalith.configbase import ConfigModel
from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models.attention import KVCache, Positions, TransformerBlock, check_heads
from megalith.models.registry import register_model


class GPTConfig(ConfigModel):
    """A GPT-style language model: `outputs` is one text column, `inputs` is empty."""

    arch: Literal["gpt"] = "gpt"
    context: int = Field(256, gt=1)
    """Tokens the model sees at once; the corpus is cut into windows of this length."""
    layers: int = Field(4, gt=0)
    """Transformer blocks."""
    heads: int = Field(4, gt=0)
    """Attention heads per block; dim must be a multiple."""
    dim: int = Field(256, gt=0)
    """Width of the token vectors (the MLP inside each block is 4x wider)."""
    dropout: float = Field(0.1, ge=0, lt=1)
    """Dropout on embeddings, attention and block outputs."""
    tie_weights: bool = True
    """Share the output projection with the token embedding (fewer parameters, better fit)."""


class GPT(nn.Module):
    """forward({name: tokens (B, T)}) -> {name: logits (B, T, V)}; `decode` adds a KV cache."""

    def __init__(self, config: GPTConfig, output: OutputSpec) -> None:
        super().__init__()
        check_heads(config.dim, config.heads, "model.dim")
        self.name, self.context = output.name, config.context
        vocab = output.num_classes
        self.embedding = nn.Embedding(vocab, config.dim)
        self.positions = Positions("learned", config.context, config.dim)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            TransformerBlock(config.dim, config.heads, config.dropout) for _ in range(config.layers)
        )
        self.norm = nn.LayerNorm(config.dim)
        # tied: the logits reuse the embedding matrix; safetensors refuses two names for one tensor
        self.head = None if config.tie_weights else nn.Linear(config.dim, vocab, bias=False)
        self.apply(_init_weights)
        for name, parameter in self.named_parameters():
            # GPT-2: residual projections scaled down by depth, so the sum over blocks stays O(1)
            if name.endswith(("attention.out.weight", "mlp.2.weight")):
                nn.init.normal_(parameter, std=0.02 / (2 * config.layers) ** 0.5)

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        logits, _ = self.decode(inputs[self.name])
        return {self.name: logits}

    def decode(
        self, tokens: torch.Tensor, caches: Sequence[KVCache] | None = None, start: int = 0
    ) -> tuple[torch.Tensor, list[KVCache]]:
        """tokens (B, T) at positions start.. -> logits (B, T, V) and every block's keys / values.

        With `caches` (from the previous call), the tokens continue that sequence.
        """
        if start + tokens.shape[1] > self.context:
            raise ValueError(f"positions up to {start + tokens.shape[1]} exceed {self.context}")
        return self.from_embeddings(self.embedding(tokens), caches, start)

    def from_embeddings(
        self, x: torch.Tensor, caches: Sequence[KVCache] | None = None, start: int = 0
    ) -> tuple[torch.Tensor, list[KVCache]]:
        """The rest of `decode`, given the token embeddings x (B, T, D); the explain stage
        attributes to x."""
        x = self.drop(self.positions(x, start))  # (B, T, D)
        new_caches = []
        for i, block in enumerate(self.blocks):
            x, kv = block(x, causal=True, cache=caches[i] if caches else None)
            new_caches.append(kv)
        x = self.norm(x)
        logits = self.head(x) if self.head is not None else F.linear(x, self.embedding.weight)
        return logits, new_caches  # (B, T, V)


def _init_weights(module: nn.Module) -> None:
    if isinstance(module, nn.Linear):
        nn.init.normal_(module.weight, std=0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        nn.init.normal_(module.weight, std=0.02)


@register_model("gpt")
def build_gpt(config: GPTConfig, inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec]) -> GPT:
    """A language model of the single text output."""
    if inputs or len(outputs) != 1 or outputs[0].type != "text":
        raise ConfigError(
            "model.arch gpt models one text column: give `inputs: []` and one output of type text"
        )
    return GPT(config, outputs[0])
