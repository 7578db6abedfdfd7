"""init's note on a name-list column's missing cells says they are empty sets."""

from __future__ import annotations

import pandas as pd

from megalith.data.infer_tables import refine_inputs


def test_a_category_column_retyped_as_set_notes_empty_sets_for_missing_cells() -> None:
    names = ["numpy pandas", "rich", "torch numpy", "flask rich", None] * 20
    frame = pd.DataFrame({"deps": names})
    inputs = [{"name": "deps", "type": "category"}]
    notices = ["column 'deps': 20 missing cells, read as an 'unknown' category"]
    refine_inputs(frame, inputs, notices)
    assert inputs[0]["type"] == "set"
    assert notices[0] == "column 'deps': 20 missing cells, read as an empty set"
