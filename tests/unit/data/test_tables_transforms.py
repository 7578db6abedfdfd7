"""Heavy-tailed numbers (log, quantile) and set columns: fitted on train only, saved as JSON,
encoded identically after a reload (what predict, export and the runtime read)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from pydantic import TypeAdapter

from megalith.data.features import CategoryOutput, InputFeature, NumberInput, SetInput
from megalith.data.preprocess import Preprocessor

ORIGIN = "data/sizes.csv"


def _frame(seed: int, rows: int = 200) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    sizes = np.exp(rng.normal(5, 3, rows)).round()  # log-normal: 0 .. millions
    names = [" ".join(rng.choice(["numpy", "pandas", "torch", "rich", "jax"], 2)) for _ in sizes]
    return pd.DataFrame(
        {"size_kb": sizes, "rank": sizes, "requires": names, "label": rng.choice(["a", "b"], rows)}
    )


def _fit(train: pd.DataFrame) -> Preprocessor:
    inputs = [
        NumberInput(name="size_kb", transform="log"),
        NumberInput(name="rank", transform="quantile"),
        SetInput(name="requires", min_count=1),
    ]
    return Preprocessor.fit(
        inputs, [CategoryOutput(name="label")], train, base_dir=None, origin=ORIGIN
    )


def test_log_and_quantile_are_fitted_on_train_only() -> None:
    train, test = _frame(0), _frame(1)
    fitted = _fit(train).to_json()
    shifted = test.assign(size_kb=test["size_kb"] * 1000, rank=test["rank"] * 1000)
    together = _fit(pd.concat([train, shifted]))
    assert _fit(train).to_json() == fitted  # deterministic
    assert together.to_json() != fitted  # the statistics do depend on the rows fitted on
    encoded = _fit(train).encode_inputs(train, base_dir=None, origin=ORIGIN)
    log_sizes = encoded["size_kb"].astype(np.float64)
    assert abs(log_sizes.mean()) < 1e-5 and abs(log_sizes.std() - 1) < 1e-4  # standardised
    expected = np.log1p(train["size_kb"].to_numpy())  # population std, as fitted
    np.testing.assert_allclose(
        log_sizes, (expected - expected.mean()) / expected.std(), rtol=1e-4, atol=1e-5
    )
    ranks = encoded["rank"]
    assert np.corrcoef(ranks, train["rank"].rank())[0, 1] > 0.999  # monotone in the value
    # a new value beyond the train range clips to the top quantile; a missing one is the mean
    extreme = _fit(train).encode_inputs(
        pd.DataFrame({"size_kb": [1e12, None], "rank": [1e12, None], "requires": ["", None]}),
        base_dir=None,
        origin=ORIGIN,
    )
    assert extreme["rank"][0] == pytest.approx(ranks.max(), abs=1e-5)
    assert extreme["size_kb"][1] == 0.0 and extreme["rank"][1] == pytest.approx(0.0, abs=1e-6)


def test_a_reloaded_preprocessor_encodes_identically(tmp_path) -> None:
    train, test = _frame(0), _frame(1)
    fitted = _fit(train)
    fitted.save(tmp_path / "preprocessor.json")
    saved = json.loads((tmp_path / "preprocessor.json").read_text())
    assert len(saved["inputs"][1]["state"]["quantiles"]) == 101  # the quantile table is JSON
    loaded = Preprocessor.load(tmp_path / "preprocessor.json")
    before = fitted.encode_inputs(test, base_dir=None, origin=ORIGIN)
    after = loaded.encode_inputs(test, base_dir=None, origin=ORIGIN)
    for name in before:
        np.testing.assert_array_equal(before[name], after[name])


def test_set_names_become_a_bag_with_an_other_bucket() -> None:
    train = pd.DataFrame({"requires": ["numpy pandas", "numpy|torch", "numpy, rich", None]})
    feature = TypeAdapter(InputFeature).validate_python({"name": "requires", "type": "set"})
    assert isinstance(feature, SetInput) and feature.min_count == 2
    from megalith.data.features.names import SetInputEncoder

    encoder = SetInputEncoder(feature)
    encoder.fit(train["requires"], where=ORIGIN)
    assert encoder.vocabulary == ["numpy"]  # seen on 3 rows; the others once -> 'other'
    ids = encoder.encode(pd.Series(["numpy numpy jax", "", "pandas"]), where=ORIGIN)
    assert ids.tolist() == [[4, 1], [0, 0], [1, 0]]  # once per row; unseen names are 'other'
    spec = encoder.spec()
    assert spec.type == "text" and spec.encoder.kind == "bag" and spec.shape == (2,)
    assert spec.token_weights[4] < spec.token_weights[1]  # common names weigh less (idf)


def test_set_cells_may_be_lists_as_json_and_parquet_hold_them() -> None:
    from megalith.data.features.names import SetInputEncoder

    feature = SetInput(name="genres", min_count=1)
    encoder = SetInputEncoder(feature)
    encoder.fit(pd.Series([["Action", "Comedy"], "Action|Drama", None]), where=ORIGIN)
    assert sorted(encoder.vocabulary) == ["Action", "Comedy", "Drama"]
    as_lists = encoder.encode(pd.Series([["Drama", "Action"], [], ("Comedy",)]), where=ORIGIN)
    as_texts = encoder.encode(pd.Series(["Drama|Action", "", "Comedy"]), where=ORIGIN)
    assert as_lists.tolist() == as_texts.tolist()
