"""A private MLP run: auto takes ghost clipping, records it, and trains as per-sample clipping
does (same batches, same noise, same epsilon, the same weights up to float rounding)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from conftest import make_table

import megalith as mg


def _config(table: Path, clipping: str) -> dict[str, Any]:
    return {
        "name": f"private-{clipping}",
        "data": {"source": str(table), "split": {"val": 0.15, "test": 0.15}},
        "inputs": [{"name": "size", "type": "number"}, {"name": "member", "type": "binary"}],
        "outputs": [{"name": "label", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [32, 32]},
        "train": {
            "epochs": 2,
            "batch_size": 32,
            "optimizer": {"name": "sgd", "lr": 0.1},
            "privacy": {"epsilon": 8.0, "accountant": "rdp", "clipping": clipping},
            "baselines": False,
        },
    }


@pytest.mark.slow
def test_auto_trains_an_mlp_with_ghost_clipping_as_per_sample_clipping_would(
    tmp_path: Path,
) -> None:
    table = tmp_path / "table.csv"
    make_table(rows=400).to_csv(table, index=False)
    runs = {c: mg.train(_config(table, c), output_dir=tmp_path / c) for c in ("auto", "per_sample")}
    auto, per_sample = runs["auto"].metrics["privacy"], runs["per_sample"].metrics["privacy"]
    assert (auto["clipping"], per_sample["clipping"]) == ("ghost", "per_sample")
    assert auto["epsilon"] == per_sample["epsilon"] and 0 < auto["epsilon"] <= 8.0
    assert auto["noise_multiplier"] == per_sample["noise_multiplier"] > 0
    assert auto["steps"] == per_sample["steps"] == 2 * 9  # ceil(280 / 32) steps an epoch
    weights = [dict(runs[c].model.named_parameters()) for c in runs]
    for name, value in weights[0].items():
        torch.testing.assert_close(value, weights[1][name], rtol=0, atol=1e-4, msg=name)
