"""How the inputs of a mixed table meet: numeric embeddings, modality dropout and the combiner.

    inputs ─► [modality dropout] ─► encoder per input ─► concat ──────────────► (B, sum F_i)
                                     (B, F_i)          └► transformer combiner ► (B, D)

- Periodic numeric embeddings ("PLR": Gorishniy, Rubachev & Babenko, "On Embeddings for
  Numerical Features in Tabular Deep Learning", NeurIPS 2022): a number x becomes
  ReLU(Linear([sin 2πcx, cos 2πcx])) with k learned frequencies c, so the layers after it can
  read thresholds and bumps of x instead of only a slope.
- The transformer combiner is the FT-Transformer's (Gorishniy et al., "Revisiting Deep Learning
  Models for Tabular Data", NeurIPS 2021): each input's encoding is projected to one token, a
  learned [CLS] token is prepended, pre-norm self-attention blocks mix them, and the [CLS]
  output goes to the heads. Inputs interact through attention rather than one wide layer.
- Modality dropout blanks whole inputs of random rows while training: the input's tensor
  becomes what the preprocessing gives a missing cell (0 = the train mean of a standardised
  number, the 'unknown' category, empty text), so a column missing at prediction time is a
  situation the model has seen. It is off in eval mode.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
from torch import nn

from megalith.data.specs import InputSpec
from megalith.errors import ConfigError
from megalith.models.attention import TransformerBlock, check_heads

_BLANKABLE = ("number", "binary", "category", "text", "sequence", "image")


@dataclass(frozen=True)
class FusionSettings:
    """The fusion choices of a FeatureModel (see the module docstring)."""

    combiner: str = "concat"
    """concat or transformer."""
    modality_dropout: float = 0.0
    """Training only: probability that an input is blanked in a row."""
    modality_dropout_by_input: Mapping[str, float] = field(default_factory=dict)
    """Training only: per-input probabilities replacing `modality_dropout` for the named inputs."""
    number_embedding: str = "none"
    """none (the standardised value itself) or periodic."""
    token_dim: int = 64
    """transformer: width of each token; periodic: width of a number's embedding."""
    layers: int = 2
    """transformer: attention blocks."""
    heads: int = 4
    """transformer: attention heads (token_dim must be a multiple)."""
    dropout: float = 0.1
    """transformer: dropout inside the blocks."""
    embedding_dropout: float = 0.0
    """Dropout on the fused encodings (the inputs' embeddings side by side, or the [CLS] token)
    before the hidden layers: against memorising wide sparse inputs."""
    frequencies: int = 16
    """periodic: learned frequencies per number."""
    sigma: float = 1.0
    """periodic: standard deviation of the initial frequencies."""


class PeriodicEncoder(nn.Module):
    """number: float (B,) -> ReLU(Linear([sin 2πcx, cos 2πcx])) (B, D); c (k,) learned (PLR)."""

    out_features: int

    def __init__(self, frequencies: int, sigma: float, dim: int) -> None:
        super().__init__()
        self.frequencies = nn.Parameter(torch.randn(frequencies) * sigma)  # (k,)
        self.linear = nn.Linear(2 * frequencies, dim)
        self.out_features = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        angle = 2 * math.pi * x.float().unsqueeze(-1) * self.frequencies  # (B, k)
        return torch.relu(self.linear(torch.cat([angle.sin(), angle.cos()], dim=-1)))  # (B, D)


class ModalityDropout(nn.Module):
    """Training only: each input of each row is blanked with its probability (to zeros, which is
    how the preprocessing encodes a missing number, binary, category, text, set or sequence; a
    set is a text tensor read as a bag), so the blank seen in training is exactly the tensor a
    missing cell gives at prediction (tests/unit/models/test_fusion_blanking.py checks it).

    Args:
        specs: the model's inputs.
        p: the probability for every input, in [0, 1).
        by_input: per-input probabilities that replace `p` for the inputs they name (for instance
            a higher one for a column the model would otherwise lean on alone).

    Raises:
        ConfigError: a probability outside [0, 1), fewer than two inputs, or an unknown name.
    """

    def __init__(
        self, specs: Sequence[InputSpec], p: float, by_input: Mapping[str, float] | None = None
    ) -> None:
        super().__init__()
        by_input = dict(by_input or {})
        names = [spec.name for spec in specs]
        unknown = sorted(set(by_input) - set(names))
        if unknown:
            raise ConfigError(
                f"model.modality_dropout_by_input: no input named {', '.join(unknown)}; "
                f"the inputs are {', '.join(names)}"
            )
        for where, rate in [("modality_dropout", p)] + [
            (f"modality_dropout_by_input.{k}", v) for k, v in by_input.items()
        ]:
            if not 0.0 <= rate < 1.0:
                raise ConfigError(f"model.{where}: must be in [0, 1), got {rate}")
        for spec in specs:
            if by_input.get(spec.name) and spec.type not in _BLANKABLE:
                raise ConfigError(
                    f"model.modality_dropout_by_input.{spec.name}: an input of type "
                    f"{spec.type} cannot be blanked (a missing cell of it does not predict); "
                    "leave it out or set it to 0"
                )
        rates = {spec.name: by_input.get(spec.name, p) for spec in specs}
        if len(specs) < 2 and any(rates.values()):
            name = specs[0].name  # the one input, at a rate above 0
            key = f"modality_dropout_by_input.{name}" if name in by_input else "modality_dropout"
            raise ConfigError(
                f"model.{key}: blanks an input, which needs at least two "
                "inputs (one is left to predict from); leave it out or set it to 0"
            )
        self.rates = {
            spec.name: rates[spec.name]
            for spec in specs
            if spec.type in _BLANKABLE and rates[spec.name] > 0
        }
        self.p = p

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not self.training or not self.rates:
            return inputs
        out = dict(inputs)
        for name, p in self.rates.items():
            x = inputs[name]
            keep = torch.rand(x.shape[0], device=x.device) >= p  # (B,)
            out[name] = x * keep.view(-1, *([1] * (x.dim() - 1))).to(x.dtype)
        return out


class Fusion(nn.Module):
    """Base of the combiners: forward(encodings, each (B, F_i)) -> (B, out_features)."""

    out_features: int


class TransformerCombiner(Fusion):
    """FT-Transformer fusion: N encodings (B, F_i) -> tokens (B, 1 + N, D) -> [CLS] (B, D)."""

    def __init__(self, widths: Sequence[int], settings: FusionSettings) -> None:
        super().__init__()
        dim = settings.token_dim
        check_heads(dim, settings.heads, "model.token_dim")
        # one projection per input: its bias doubles as the input's learned "which column" code
        self.tokenizers = nn.ModuleList(nn.Linear(width, dim) for width in widths)
        # a module of its own taking a tensor: Opacus computes per-row gradients only for modules
        # whose inputs are tensors, and this forward takes a list (train.privacy)
        self.cls = ClsToken(dim)  # runs saved before stored it as `fusion.cls` (run.py renames)
        self.blocks = nn.ModuleList(
            TransformerBlock(dim, settings.heads, settings.dropout) for _ in range(settings.layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.out_features = dim

    def forward(self, encoded: Sequence[torch.Tensor]) -> torch.Tensor:
        tokens = [tok(x).unsqueeze(1) for tok, x in zip(self.tokenizers, encoded, strict=True)]
        x = self.cls(torch.cat(tokens, dim=1))  # (B, T, D)
        for block in self.blocks:
            x, _ = block(x)
        return self.norm(x[:, 0])  # (B, D): the [CLS] token


class ClsToken(nn.Module):
    """A learned [CLS] token put in front of the tokens: (B, N, D) -> (B, 1 + N, D)."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.token = nn.Parameter(torch.randn(1, 1, dim) * 0.02)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.token.expand(tokens.shape[0], -1, -1), tokens], dim=1)


class ConcatCombiner(Fusion):
    """Today's fusion: the encodings side by side, (B, sum F_i)."""

    def __init__(self, widths: Sequence[int]) -> None:
        super().__init__()
        self.out_features = sum(widths)

    def forward(self, encoded: Sequence[torch.Tensor]) -> torch.Tensor:
        return torch.cat(list(encoded), dim=-1)


def make_fusion(widths: Sequence[int], settings: FusionSettings) -> Fusion:
    """The module that turns the encodings into one vector; it exposes `out_features`."""
    if settings.combiner == "concat":
        return ConcatCombiner(widths)
    if settings.combiner == "transformer":
        return TransformerCombiner(widths, settings)
    raise ConfigError(f"model.combiner: unknown '{settings.combiner}'; known: concat, transformer")
