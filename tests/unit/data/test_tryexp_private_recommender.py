"""`init INTERACTIONS --private` is refused in one line, as docs/privacy.md says recommenders
are; it wrote a non-private recommender config without a word."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from conftest import run_cli


def test_init_private_refuses_a_recommender(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = tmp_path / "inter.csv"
    pd.DataFrame({"user": rng.integers(0, 30, 300), "item": rng.integers(0, 40, 300)}).to_csv(
        data, index=False
    )
    written = tmp_path / "c.yaml"
    result = run_cli("init", str(data), "--private", "-o", str(written))
    assert result.code == 2 and not written.exists()
    assert "--private:" in result.stderr and "recommender" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
