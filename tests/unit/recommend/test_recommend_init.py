"""`megalith init` on the built-in interactions."""

from __future__ import annotations

import yaml

from megalith.recommend.init import recommender_init_text


def test_init_writes_a_recommender_for_the_builtin_interactions() -> None:
    source = "builtin:planted_interactions"
    text = recommender_init_text(source, name=None, source=source)
    assert text is not None
    config = yaml.safe_load(text)
    assert config["name"] == "planted_interactions" and config["data"]["source"] == source
    assert config["recommend"]["user"] == "user" and config["model"]["arch"] == "mf"
    assert recommender_init_text("builtin:digits", name=None, source="builtin:digits") is None
