"""Text baseline: TF-IDF + logistic regression on `builtin:docstrings`; Megalith on the same split.

Builds the stdlib docstrings table, splits it 80/10/10 (stratified, seed 0), writes it as a CSV
with a `split` column, and fits word 1-2-gram TF-IDF + LogisticRegression with C chosen on val.
With --megalith it also runs `megalith init` and `megalith train` on that CSV, split by the same
column, and reports Megalith's test accuracy as a ratio of the baseline's. Prints JSON.

    python benchmarks/text_baseline.py [--output-dir DIR] [--megalith]
    python benchmarks/text_baseline.py --megalith --library .venv/lib/python3.11/site-packages \
        --per-class 1250      # ~20,000 rows in 16 classes: the installed packages' docstrings
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split

from megalith.data.docstrings import docstrings_table

SEED = 0
C_GRID = (1.0, 3.0, 10.0, 30.0, 100.0)
SPLIT = {"column": "split"}
"""Megalith's data.split that reads each row's split from the CSV's `split` column."""


def split_rows(frame: pd.DataFrame) -> pd.Series:
    """'train' / 'val' / 'test' per row: 80/10/10, stratified by module, seed 0."""
    rest, test = train_test_split(
        frame.index, test_size=0.1, random_state=SEED, stratify=frame["module"]
    )
    _, val = train_test_split(
        rest, test_size=1 / 9, random_state=SEED, stratify=frame.loc[rest, "module"]
    )
    split = pd.Series("train", index=frame.index)
    split.loc[val], split.loc[test] = "val", "test"
    return split


def fit_baseline(frame: pd.DataFrame) -> dict[str, Any]:
    """TF-IDF + LogisticRegression fitted on train, C picked by val accuracy."""
    start = time.perf_counter()
    parts = {name: frame[frame["split"] == name] for name in ("train", "val", "test")}
    vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=2)
    x_train = vectorizer.fit_transform(parts["train"]["text"])
    x_val, x_test = (vectorizer.transform(parts[n]["text"]) for n in ("val", "test"))
    labels = {name: part["module"] for name, part in parts.items()}
    models = {
        c: LogisticRegression(C=c, max_iter=2000).fit(x_train, labels["train"]) for c in C_GRID
    }
    val_accuracy = {c: float(model.score(x_val, labels["val"])) for c, model in models.items()}
    c = max(C_GRID, key=val_accuracy.__getitem__)  # the smallest C among ties
    return {
        "C": c,
        "val_accuracy": round(val_accuracy[c], 4),
        "test_accuracy": round(float(models[c].score(x_test, labels["test"])), 4),
        "seconds": round(time.perf_counter() - start, 2),
    }


def megalith_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "megalith", *args], capture_output=True, text=True)


def run_megalith(csv: Path, folder: Path) -> dict[str, Any]:
    """`megalith init` + `megalith train` on the CSV: test accuracy from eval.json, or the error."""
    config = folder / "cfg.yaml"
    init = megalith_cli("init", str(csv), "--target", "module", "--output", str(config))
    if init.returncode != 0:
        return {"failed": "megalith init", "stderr": init.stderr.strip()[-2000:]}
    start = time.perf_counter()
    train = megalith_cli(
        "train",
        str(config),
        "--output-dir",
        str(folder / "run"),
        "--set",
        f"data.split={json.dumps(SPLIT)}",
    )
    seconds = time.perf_counter() - start
    if train.returncode != 0:
        return {"failed": "megalith train", "stderr": train.stderr.strip()[-2000:]}
    evaluation = json.loads((folder / "run" / "eval.json").read_text())
    return {
        "config": str(config),
        "test_accuracy": round(float(evaluation["test"]["accuracy"]), 4),
        "train_seconds": round(seconds, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, help="Where to write the CSV (default: temp).")
    parser.add_argument("--megalith", action="store_true", help="Also train Megalith on it.")
    parser.add_argument(
        "--library",
        type=Path,
        help="Read docstrings from this folder instead of the standard library, e.g. a venv's "
        "site-packages: labels are then the installed packages (a larger, harder table).",
    )
    parser.add_argument("--per-class", type=int, help="Keep at most this many rows per class.")
    args = parser.parse_args()
    folder = args.output_dir or Path(tempfile.mkdtemp(prefix="megalith-text-"))
    folder.mkdir(parents=True, exist_ok=True)

    start = time.perf_counter()
    frame = docstrings_table(args.library)
    if args.per_class:  # the table is shuffled, so this keeps a random sample of each class
        frame = frame[frame.groupby("module").cumcount() < args.per_class]
        frame = frame.reset_index(drop=True)
    table_seconds = time.perf_counter() - start
    frame["split"] = split_rows(frame)
    csv = folder / "docstrings.csv"
    frame.to_csv(csv, index=False)

    result: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}",
        "table_seconds": round(table_seconds, 2),
        "rows": {name: int((frame["split"] == name).sum()) for name in ("train", "val", "test")},
        "classes": int(frame["module"].nunique()),
        "rows_per_class": [int(n) for n in frame["module"].value_counts().agg(["min", "max"])],
        "csv": str(csv),
        "megalith_config": {"data": {"source": str(csv), "split": SPLIT}},
        "baseline": fit_baseline(frame),
    }
    if args.megalith:
        outcome = run_megalith(csv, folder)
        if "test_accuracy" in outcome:
            ratio = outcome["test_accuracy"] / result["baseline"]["test_accuracy"]
            outcome["accuracy_ratio_to_baseline"] = round(ratio, 3)
        result["megalith"] = outcome
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
