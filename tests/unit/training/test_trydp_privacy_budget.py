"""An epsilon the accountant's noise search cannot end on, or no noise reaches, is refused
before anything is written, naming the key (it used to hang, or leave a half-written run)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import megalith as mg
from megalith.errors import ConfigError
from megalith.training.privacy import PrivacyConfig


@pytest.mark.parametrize("accountant", ["prv", "gdp"])
def test_a_huge_epsilon_needs_the_rdp_accountant(accountant: str) -> None:
    # Opacus's PRV search never ends above about 700 here (its epsilon turns infinite), GDP fails
    with pytest.raises(ValueError, match="set accountant: rdp for an epsilon that large"):
        PrivacyConfig(epsilon=1e9, accountant=accountant)  # type: ignore[arg-type]
    PrivacyConfig(epsilon=1e9, accountant="rdp")
    PrivacyConfig(epsilon=100.0, accountant=accountant)  # type: ignore[arg-type]


def test_an_unreachable_epsilon_leaves_no_run_directory(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"x": rng.normal(size=60), "y": rng.choice(["a", "b"], 60)})
    frame.to_csv(tmp_path / "t.csv", index=False)
    config = {
        "name": "t",
        "data": {"source": str(tmp_path / "t.csv")},
        "inputs": [{"name": "x", "type": "number"}],
        "outputs": [{"name": "y", "type": "category"}],
        "model": {"arch": "mlp", "hidden": [4]},
        "train": {"epochs": 1, "batch_size": 8, "privacy": {"epsilon": 1e-9}},
    }
    with pytest.raises(ConfigError, match=r"train\.privacy\.epsilon: 1e-09 cannot be reached"):
        mg.train(config, output_dir=tmp_path / "run")
    assert not (tmp_path / "run").exists()
