"""What a private run says besides epsilon: no raw Opacus warning, a note when one step would
take every train row, and baselines labelled as not private (eval.json, summary, report)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from conftest import make_table

from tests.multiprocess import megalith_train

CONFIG = {
    "name": "notes",
    "data": {"source": "table.csv", "split": {"val": 0.15, "test": 0.15}},
    "inputs": [{"name": "size", "type": "number"}, {"name": "color", "type": "category"}],
    "outputs": [{"name": "label", "type": "category"}],
    "model": {"arch": "mlp", "hidden": [16]},
    # 512 rows a step from 140 train rows: sample rate 1, where Opacus's PRV accountant
    # divides by zero (log(1 - q)) and, in its noise search, warns about the largest RDP order
    "train": {"epochs": 2, "batch_size": 512, "privacy": {"epsilon": 3.0, "accountant": "prv"}},
}


@pytest.mark.slow
def test_a_private_run_speaks_in_its_own_words(tmp_path: Path) -> None:
    make_table(rows=200).to_csv(tmp_path / "table.csv", index=False)
    (tmp_path / "private.yaml").write_text(yaml.safe_dump(CONFIG))
    outcome = megalith_train(tmp_path, "private.yaml", "-o", "run")
    assert outcome.returncode == 0, outcome.stderr
    said = " ".join((outcome.stdout + outcome.stderr).split())  # rich wraps long lines
    for raw in ("Warning:", "opacus/", "Optimal order", "divide by zero", "warnings.warn"):
        assert raw not in said, raw
    assert (
        "note: train.batch_size 512 is at least the 140 train rows: every DP-SGD step takes "
        "every row (sample rate 1)" in said
    )
    assert "set train.batch_size to 14 or less" in said
    assert "note: the baselines are not private: fitted on the same private train rows" in said
    privacy = json.loads((tmp_path / "run" / "eval.json").read_text())["privacy"]
    assert privacy["sample_rate"] == 1.0 and privacy["notes"] == []
    assert privacy["baselines"].startswith("the baselines are not private")
    report = (tmp_path / "run" / "report.html").read_text()
    assert 'id="baselines-not-private"' in report and "linear (test, not private)" in report
