"""Recommender families (mf, ncf, two_tower) through the shared model check, and their
user x item score matrices agreeing with pair scores."""

from __future__ import annotations

import pytest
import torch
from model_check import check_model, random_batch

from megalith.data.specs import InputSpec, OutputSpec
from megalith.models import MFConfig, NCFConfig, TwoTowerConfig, build_model
from megalith.models.recommenders import DotRecommender, Recommender

INPUTS = [InputSpec("user", "category", vocab_size=12), InputSpec("item", "category", 20)]
CONFIGS = [
    MFConfig(dim=8),
    NCFConfig(dim=8, hidden=[16, 8], dropout=0.0),
    TwoTowerConfig(dim=8, hidden=[16]),
    TwoTowerConfig(dim=8, similarity="cosine", temperature=0.2),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.arch}")
@pytest.mark.parametrize("kind", ["binary", "number"])
def test_recommenders_pass_the_model_check(config: object, kind: str) -> None:
    outputs = [OutputSpec("score", kind, 2 if kind == "binary" else 0)]
    x, y = random_batch(INPUTS, outputs, batch_size=32)
    # embeddings start small (std 0.01): a larger step lets 30 steps move them
    check_model(lambda: build_model(config, INPUTS, outputs), x, y, outputs, lr=5e-2)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.arch}")
def test_score_matrix_equals_pair_scores(config: object) -> None:
    torch.manual_seed(0)
    model = build_model(config, INPUTS, [OutputSpec("score", "binary", 2)])
    assert isinstance(model, Recommender)
    for p in model.parameters():  # away from the near-zero start, so differences show
        torch.nn.init.normal_(p, std=0.5)
    model.eval()
    users, items = torch.tensor([0, 3, 11]), torch.arange(20)
    with torch.no_grad():
        matrix = model.score_matrix(users, items)
        pairs = model({"user": users.repeat_interleave(20), "item": items.repeat(3)})["score"]
    torch.testing.assert_close(matrix, pairs.view(3, 20), rtol=1e-5, atol=1e-5)
    if isinstance(model, DotRecommender):
        vectors = model.user_vectors(users) @ model.item_vectors(items).T
        torch.testing.assert_close(matrix, vectors + model.item_bias(items))


def test_two_tower_with_side_features_passes_the_model_check() -> None:
    from megalith.data.features.encoding import SequenceEncoderConfig

    side = [
        InputSpec("user.age", "number"),
        InputSpec("user.job", "category", vocab_size=5, embedding_dim=3),
        InputSpec(
            "item.genres",
            "text",
            vocab_size=9,
            shape=(3,),
            embedding_dim=4,
            encoder=SequenceEncoderConfig(kind="bag"),
        ),
    ]
    outputs = [OutputSpec("score", "binary", 2)]
    x, y = random_batch(INPUTS, outputs, batch_size=32)

    def build() -> torch.nn.Module:
        model = build_model(TwoTowerConfig(dim=8, hidden=[16]), INPUTS + side, outputs)
        generator = torch.Generator().manual_seed(0)
        user_rows = {
            "age": torch.randn(12, generator=generator),
            "job": torch.randint(0, 5, (12,), generator=generator),
        }
        model.set_side_rows("user", user_rows, torch.arange(12) % 3 > 0)
        genres = {"genres": torch.randint(0, 9, (20, 3), generator=generator)}
        model.set_side_rows("item", genres, torch.ones(20, dtype=torch.bool))
        return model

    check_model(build, x, y, outputs, lr=5e-2)
    model = build().eval()
    with torch.no_grad():  # users without history read the shared row: only features differ
        vectors = model.user_vectors(torch.tensor([0, 3]))
        features = {"age": model.user_side.table(0)[[0]], "job": model.user_side.table(1)[[0]]}
        torch.testing.assert_close(model.new_user_vectors(features), vectors[:1])
