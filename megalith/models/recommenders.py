"""Recommenders over user and item ids: matrix factorisation, NeuMF and a two-tower model.

Each takes the inputs `user` and `item` (category ids, int64 (B,)) and returns one output: the
score of the pair, a logit for implicit feedback or a standardised rating for explicit feedback
(B,). Beyond `forward`, each scores batches of users against many items at once,
`score_matrix(users (B,), items (M,)) -> (B, M)`, which training (in-batch softmax) and ranking
evaluation use; dot-product families also expose `user_vectors` / `item_vectors` so that top-k
is one matrix product (what export and the runtime use).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from megalith.configbase import ConfigModel
from megalith.data.specs import InputSpec, OutputSpec
from megalith.errors import ConfigError
from megalith.models.blocks import make_encoder
from megalith.models.registry import register_model


class MFConfig(ConfigModel):
    """Matrix factorisation: score = user vector . item vector + item bias (Koren et al. 2009)."""

    arch: Literal["mf"] = "mf"
    dim: PositiveInt = 64
    """Size of the user and item vectors."""


class NCFConfig(ConfigModel):
    """NeuMF (He et al. 2017): generalised MF and an MLP over the id embeddings, fused."""

    arch: Literal["ncf"] = "ncf"
    dim: PositiveInt = 32
    """Size of the GMF embeddings and of each MLP embedding."""
    hidden: list[PositiveInt] = [64, 32, 16]
    """Widths of the MLP tower over the concatenated user and item embeddings."""
    dropout: float = Field(0.0, ge=0, lt=1)
    """Dropout after each MLP layer."""


class TwoTowerConfig(ConfigModel):
    """A user tower and an item tower, each an embedding and an MLP; score by dot or cosine."""

    arch: Literal["two_tower"] = "two_tower"
    dim: PositiveInt = 64
    """Size of the id embeddings and of the towers' outputs."""
    hidden: list[PositiveInt] = []
    """Widths of the hidden layers of each tower (none: the embeddings themselves)."""
    similarity: Literal["dot", "cosine"] = "dot"
    """dot product, or cosine similarity divided by `temperature`."""
    temperature: float = Field(0.1, gt=0)
    """cosine only: scores are cosine / temperature, so a logit can leave [-1, 1]."""
    id_dropout: float = Field(0.0, ge=0, lt=1)
    """With side features: the share of training pairs whose id embedding is swapped for the
    shared row of users / items without history (the idea of DropoutNet, Volkovs et al. 2017),
    which training then reaches too. At 0 that row stays near zero: a new user or item is read
    from its features alone (as good on new users in benchmarks/recommend_cold_start.py, and
    better on known ones than 0.2)."""


# -----------------------------------------------------------------------------
# the families


def _vocab(inputs: Sequence[InputSpec], name: str) -> int:
    for spec in inputs:
        if spec.name == name and spec.type == "category":
            return spec.vocab_size
    raise ConfigError(f"a recommender needs a category input named '{name}'")


def _embedding(count: int, dim: int) -> nn.Embedding:
    table = nn.Embedding(count, dim)
    nn.init.normal_(table.weight, std=0.01)  # small: early scores near 0, as in the NCF paper
    return table


class Recommender(nn.Module):
    """Shared interface: forward on (user, item) pairs; `score_matrix` on users x items."""

    def __init__(self, output: str) -> None:
        super().__init__()
        self.output = output

    def forward(self, inputs: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {self.output: self.score(inputs["user"], inputs["item"])}

    def score(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users (B,), items (B,) -> (B,)."""
        return self.score_matrix_pairs(users, items[:, None])[:, 0]

    def score_matrix(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users (B,), items (M,) -> (B, M)."""
        return self.score_matrix_pairs(users, items.expand(len(users), -1))

    def score_matrix_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """users (B,), items (B, C) -> (B, C): each user against its own candidates."""
        raise NotImplementedError


class DotRecommender(Recommender):
    """A score that is a dot product of a user vector and an item vector, plus an item bias."""

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        """(B,) -> (B, D)."""
        raise NotImplementedError

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        """(M,) -> (M, D)."""
        raise NotImplementedError

    def item_bias(self, items: torch.Tensor) -> torch.Tensor:
        """(M,) -> (M,); zero unless the family has one."""
        return torch.zeros(items.shape, device=items.device)

    def score_matrix(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        # one matrix product instead of B x M pairs
        return self.user_vectors(users) @ self.item_vectors(items).T + self.item_bias(items)

    def score_matrix_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        u = self.user_vectors(users)  # (B, D)
        v = self.item_vectors(items.flatten()).view(*items.shape, -1)  # (B, C, D)
        return (v @ u[:, :, None])[..., 0] + self.item_bias(items)


class MatrixFactorisation(DotRecommender):
    def __init__(self, n_users: int, n_items: int, dim: int, output: str) -> None:
        super().__init__(output)
        self.user = _embedding(n_users, dim)
        self.item = _embedding(n_items, dim)
        self.bias = nn.Parameter(torch.zeros(n_items))
        self.offset = nn.Parameter(torch.zeros(()))

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self.user(users)

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        return self.item(items)

    def item_bias(self, items: torch.Tensor) -> torch.Tensor:
        return self.bias[items] + self.offset


def _mlp(widths: Sequence[int], dropout: float = 0.0) -> nn.Sequential:
    layers: list[nn.Module] = []
    for width_in, width_out in itertools.pairwise(widths):
        layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return nn.Sequential(*layers)


class NeuMF(Recommender):
    """GMF (element-wise product of embeddings) and an MLP tower, concatenated into one logit."""

    def __init__(self, n_users: int, n_items: int, config: NCFConfig, output: str) -> None:
        super().__init__(output)
        dim = config.dim
        self.gmf_user, self.gmf_item = _embedding(n_users, dim), _embedding(n_items, dim)
        self.mlp_user, self.mlp_item = _embedding(n_users, dim), _embedding(n_items, dim)
        self.tower = _mlp([2 * dim, *config.hidden], config.dropout)
        self.head = nn.Linear(dim + (config.hidden[-1] if config.hidden else 2 * dim), 1)

    def score_matrix_pairs(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        batch, candidates = items.shape
        flat_users = users[:, None].expand(batch, candidates).reshape(-1)
        flat_items = items.reshape(-1)
        gmf = self.gmf_user(flat_users) * self.gmf_item(flat_items)  # (B*C, D)
        pair = torch.cat([self.mlp_user(flat_users), self.mlp_item(flat_items)], dim=-1)
        fused = torch.cat([gmf, self.tower(pair)], dim=-1)
        return self.head(fused).view(batch, candidates)

    def score_matrix(self, users: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        rows = max(1, (1 << 20) // max(len(items), 1))  # ~1M pairs at a time bounds the memory
        parts = [
            self.score_matrix_pairs(chunk, items.expand(len(chunk), -1))
            for chunk in users.split(rows)
        ]
        return torch.cat(parts)


class SideEncoder(nn.Module):
    """One side's features (user or item columns of a side table): every entity's encoded row
    kept as a buffer (saved with the weights), read by index through the ordinary input
    encoders of megalith.models.blocks and concatenated: index (B,) -> (B, F)."""

    def __init__(self, specs: Sequence[InputSpec], count: int) -> None:
        super().__init__()
        self.names = [spec.name.split(".", 1)[1] for spec in specs]
        encoders = [make_encoder(spec, _no_backbone) for spec in specs]
        self.encoders = nn.ModuleList(encoders)
        for i, spec in enumerate(specs):
            dtype = torch.float32 if spec.type in ("number", "binary", "sequence") else torch.long
            self.register_buffer(f"rows_{i}", torch.zeros((count, *spec.shape), dtype=dtype))
        self.out_features = sum(encoder.out_features for encoder in encoders)

    def table(self, i: int) -> torch.Tensor:
        """(count, ...): the encoded rows of feature i."""
        return self.get_buffer(f"rows_{i}")

    def forward(self, index: torch.Tensor) -> torch.Tensor:
        return self.encode({n: self.table(i)[index] for i, n in enumerate(self.names)})

    def encode(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """Encoded feature rows (name -> (B, ...), as megalith.data.specs) -> (B, F)."""
        parts = [enc(features[n]) for enc, n in zip(self.encoders, self.names, strict=True)]
        return torch.cat(parts, dim=-1)


def _no_backbone(spec: InputSpec) -> tuple[nn.Module, int]:
    raise ConfigError(f"{spec.name}: side features may be numbers, categories, text or sets")


class TwoTower(DotRecommender):
    """Each tower: the id embedding (B, dim), and with side features those features'
    encodings (B, F) concatenated to it, through an MLP to (B, dim or hidden[-1]) (Yi et al.
    2019). An entity without train interactions (a new user or item with features) is read
    through one shared embedding row instead of its own (near zero unless `id_dropout` trains
    it), so its features answer for it."""

    user_rows: torch.Tensor  # (U,) with user features: the embedding row of each user
    item_rows: torch.Tensor  # (I,)

    def __init__(
        self,
        n_users: int,
        n_items: int,
        config: TwoTowerConfig,
        output: str,
        side_specs: dict[str, list[InputSpec]] | None = None,
    ) -> None:
        super().__init__(output)
        self.config = config
        side_specs = side_specs or {}
        self.user, self.user_side, self.user_tower = self._side("user", n_users, side_specs)
        self.item, self.item_side, self.item_tower = self._side("item", n_items, side_specs)

    def _side(
        self, side: str, count: int, side_specs: dict[str, list[InputSpec]]
    ) -> tuple[nn.Embedding, SideEncoder | None, nn.Module]:
        specs = side_specs.get(side, [])
        dim, hidden = self.config.dim, self.config.hidden
        if not specs:
            return _embedding(count, dim), None, _tower([dim, *hidden])
        encoder = SideEncoder(specs, count)
        self.register_buffer(f"{side}_rows", torch.arange(count))
        width = dim + encoder.out_features
        # the last row is the shared one of entities without history
        return _embedding(count + 1, dim), encoder, _tower([width, *(hidden or [dim])])

    def set_side_rows(
        self, side: str, arrays: dict[str, torch.Tensor], has_history: torch.Tensor
    ) -> None:
        """Fill `side`'s feature rows (name -> (count, ...)) and which entities have train
        interactions (bool (count,)): the others read the shared embedding row."""
        encoder = self.user_side if side == "user" else self.item_side
        assert encoder is not None
        with torch.no_grad():
            for i, name in enumerate(encoder.names):
                encoder.table(i).copy_(arrays[name])
            rows = self.get_buffer(f"{side}_rows")
            shared = len(rows)
            rows.copy_(torch.where(has_history, torch.arange(shared), shared))

    def _input(
        self, index: torch.Tensor, embedding: nn.Embedding, side: SideEncoder | None, rows: str
    ) -> torch.Tensor:
        if side is None:
            return embedding(index)
        row = self.get_buffer(rows)[index]
        if self.training and self.config.id_dropout > 0:
            dropped = torch.rand(row.shape, device=row.device) < self.config.id_dropout
            row = torch.where(dropped, embedding.num_embeddings - 1, row)
        return torch.cat([embedding(row), side(index)], dim=-1)

    def _finish(self, vectors: torch.Tensor) -> torch.Tensor:
        if self.config.similarity == "cosine":
            return F.normalize(vectors, dim=-1) / self.config.temperature**0.5
        return vectors

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self._finish(
            self.user_tower(self._input(users, self.user, self.user_side, "user_rows"))
        )

    def item_vectors(self, items: torch.Tensor) -> torch.Tensor:
        return self._finish(
            self.item_tower(self._input(items, self.item, self.item_side, "item_rows"))
        )

    def new_user_vectors(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        """(B, D) for users met nowhere, from their encoded features (name -> (B, ...)): the
        shared embedding row and the user tower (cold start).

        Raises:
            ConfigError: the model has no user features.
        """
        if self.user_side is None:
            raise ConfigError("this two_tower has no user features to answer new users from")
        rows = next(iter(features.values())).new_full(
            (len(next(iter(features.values()))),), self.user.num_embeddings - 1, dtype=torch.long
        )
        x = torch.cat([self.user(rows), self.user_side.encode(features)], dim=-1)
        return self._finish(self.user_tower(x))


def _tower(widths: Sequence[int]) -> nn.Module:
    """Hidden layers with ReLU, the last one linear (a vector may point anywhere)."""
    if len(widths) == 1:
        return nn.Identity()
    layers = list(_mlp(widths))[:-1]  # no ReLU after the output layer
    return nn.Sequential(*layers)


def _output_name(outputs: Sequence[OutputSpec]) -> str:
    if len(outputs) != 1 or outputs[0].type not in ("binary", "number"):
        raise ConfigError("a recommender writes one score: a binary (implicit) or number output")
    return outputs[0].name


@register_model("mf")
def build_mf(
    config: MFConfig, inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec]
) -> MatrixFactorisation:
    """Matrix factorisation over the `user` and `item` ids."""
    return MatrixFactorisation(
        _vocab(inputs, "user"), _vocab(inputs, "item"), config.dim, _output_name(outputs)
    )


@register_model("ncf")
def build_ncf(
    config: NCFConfig, inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec]
) -> NeuMF:
    """NeuMF over the `user` and `item` ids."""
    return NeuMF(_vocab(inputs, "user"), _vocab(inputs, "item"), config, _output_name(outputs))


@register_model("two_tower")
def build_two_tower(
    config: TwoTowerConfig, inputs: Sequence[InputSpec], outputs: Sequence[OutputSpec]
) -> TwoTower:
    """A two-tower model over the `user` and `item` ids and any side features (inputs named
    `user.COLUMN` / `item.COLUMN`)."""
    side_specs = {
        side: [spec for spec in inputs if spec.name.startswith(f"{side}.")]
        for side in ("user", "item")
    }
    return TwoTower(
        _vocab(inputs, "user"), _vocab(inputs, "item"), config, _output_name(outputs), side_specs
    )
