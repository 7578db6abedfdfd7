"""The metric a run watches: early stopping's, checked before step 0, else validation's first."""

from __future__ import annotations

import pytest
from conftest import make_table

from megalith.config import validate_config
from megalith.data.preprocess import Preprocessor
from megalith.errors import ConfigError
from megalith.training.watched_metric import check_watched_metric, watched_metric

CONFIG = {
    "name": "tiny",
    "data": {"source": "table.csv"},
    "inputs": [{"name": "size", "type": "number"}],
    "outputs": [{"name": "label", "type": "category"}],
    "model": {"arch": "mlp", "hidden": [8]},
}


def _preprocessor(cfg):
    return Preprocessor.fit(cfg.inputs, cfg.outputs, make_table(20), base_dir=None, origin="t")


def test_without_early_stopping_the_first_metric_after_the_loss_is_watched() -> None:
    cfg = validate_config(CONFIG)
    check_watched_metric(cfg, _preprocessor(cfg))  # nothing to check
    assert watched_metric(cfg, _preprocessor(cfg)) == "val/accuracy"


def test_an_early_stopping_metric_validation_does_not_report_is_refused_with_a_hint() -> None:
    good = validate_config({**CONFIG, "train": {"early_stop": {"metric": "val/macro_f1"}}})
    check_watched_metric(good, _preprocessor(good))
    assert watched_metric(good, _preprocessor(good)) == "val/macro_f1"

    bad = validate_config({**CONFIG, "train": {"early_stop": {"metric": "val/acuracy"}}})
    with pytest.raises(ConfigError, match=r"'val/acuracy' \(did you mean 'val/accuracy'\?\)"):
        check_watched_metric(bad, _preprocessor(bad))
