"""Mixed tables: Megalith (the config `megalith init` writes) against linear and boosted baselines.

For each table of benchmarks/mixed_table_data.py (built offline, cached as CSV): an 80/10/10
split stratified by the label (seed 0, a `split` column); then
  - linear: TF-IDF of text (word 1-2-grams) and of name lists, one-hot categories, signed-log
    standardised numbers, logistic regression with C picked on val;
  - lightgbm (the `bench` extra; skipped when missing): the same numbers raw, categories as
    LightGBM categories, text and names as TF-IDF (2,000 columns each), early stopping on val;
  - megalith: `megalith init` then `megalith train` (the CLI, as a user runs it); its test
    accuracy, wall time and epochs, then with each input column blanked (every cell missing) in
    the test rows, and the same config trained on each column group alone (text: text and set
    columns; table: the rest) to show what fusion adds, or (`--columns`) on each input column
    alone, beside the linear baseline on that column alone: which column loses the points.
Prints JSON, one object per table, and each Megalith figure as a ratio of the linear baseline's.

Also printed: the fusion margin (Megalith on every column minus the best column group alone) and
each column's blanking cost (test accuracy lost, in points).

    python benchmarks/mixed_tables.py [--tables modules,functions,synthetic,evidence]
        [--cache DIR] [--groups] [--blank] [--columns] [--set key=value ...]
        [--numbers log|quantile]
        [--no-baselines]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from mixed_table_data import TABLES
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

SEED = 0
C_GRID = (0.3, 1.0, 3.0, 10.0, 30.0)
NAMES = r"[^\s|,;]+"
"""A name in a name list: anything between spaces, '|', ',' or ';'."""


def split_rows(frame: pd.DataFrame, target: str) -> pd.Series:
    rest, test = train_test_split(
        frame.index, test_size=0.1, random_state=SEED, stratify=frame[target]
    )
    _, val = train_test_split(
        rest, test_size=1 / 9, random_state=SEED, stratify=frame.loc[rest, target]
    )
    split = pd.Series("train", index=frame.index)
    split.loc[val], split.loc[test] = "val", "test"
    return split


def _signed_log(x: Any) -> Any:
    x = np.nan_to_num(np.asarray(x, dtype=np.float64))
    return np.sign(x) * np.log1p(np.abs(x))


def _columns(inputs: list[dict[str, Any]], kinds: tuple[str, ...]) -> list[str]:
    return [f["name"] for f in inputs if f["type"] in kinds]


def linear_features(inputs: list[dict[str, Any]], max_features: int | None = None) -> Any:
    """The ColumnTransformer of the linear baseline, by the types init gave each column."""
    parts: list[tuple[str, Any, Any]] = []
    for name in _columns(inputs, ("text",)):
        vectorizer = TfidfVectorizer(
            ngram_range=(1, 2), sublinear_tf=True, min_df=2, max_features=max_features
        )
        parts.append((f"text:{name}", vectorizer, name))
    for name in _columns(inputs, ("set",)):
        vectorizer = TfidfVectorizer(
            token_pattern=NAMES, lowercase=False, min_df=2, max_features=max_features
        )
        parts.append((f"set:{name}", vectorizer, name))
    categories = _columns(inputs, ("category", "binary"))
    if categories:
        onehot = OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=2)
        parts.append(("onehot", onehot, categories))
    numbers = _columns(inputs, ("number",))
    if numbers:
        parts.append(
            ("numbers", make_pipeline(FunctionTransformer(_signed_log), StandardScaler()), numbers)
        )
    return ColumnTransformer(parts)


def _prepared(frame: pd.DataFrame, inputs: list[dict[str, Any]]) -> pd.DataFrame:
    frame = frame.copy()
    for name in _columns(inputs, ("text", "set")):
        frame[name] = frame[name].fillna("").astype(str)
    for name in _columns(inputs, ("category", "binary")):
        frame[name] = frame[name].astype(str)
    return frame


def fit_linear(frame: pd.DataFrame, target: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    start = time.perf_counter()
    frame = _prepared(frame, inputs)
    parts = {name: frame[frame["split"] == name] for name in ("train", "val", "test")}
    features = linear_features(inputs)
    x_train = features.fit_transform(parts["train"])
    x_val, x_test = (features.transform(parts[n]) for n in ("val", "test"))
    models = {
        c: LogisticRegression(C=c, max_iter=3000).fit(x_train, parts["train"][target])
        for c in C_GRID
    }
    val = {c: float(m.score(x_val, parts["val"][target])) for c, m in models.items()}
    c = max(C_GRID, key=val.__getitem__)
    return {
        "C": c,
        "val_accuracy": round(val[c], 4),
        "test_accuracy": round(float(models[c].score(x_test, parts["test"][target])), 4),
        "seconds": round(time.perf_counter() - start, 1),
    }


def fit_lightgbm(frame: pd.DataFrame, target: str, inputs: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        import lightgbm as lgb
    except ImportError:
        return {"skipped": "lightgbm is not installed"}
    from scipy import sparse

    start = time.perf_counter()
    frame = _prepared(frame, inputs)
    parts = {name: frame[frame["split"] == name] for name in ("train", "val", "test")}
    texts = [f for f in inputs if f["type"] in ("text", "set")]
    others = [f for f in inputs if f["type"] not in ("text", "set")]
    vectorized = linear_features(texts, max_features=2000) if texts else None
    categories = _columns(others, ("category", "binary"))
    numbers = _columns(others, ("number",))
    codes = {c: pd.Categorical(parts["train"][c]).categories for c in categories}

    def matrix(part: pd.DataFrame, fit: bool = False) -> Any:
        blocks = []
        if vectorized is not None:
            blocks.append(vectorized.fit_transform(part) if fit else vectorized.transform(part))
        table = [pd.Categorical(part[c], categories=codes[c]).codes for c in categories]
        table += [part[c].to_numpy(dtype=np.float64) for c in numbers]
        if table:
            blocks.append(sparse.csr_matrix(np.column_stack(table).astype(np.float64)))
        return sparse.hstack(blocks).tocsr()

    x_train = matrix(parts["train"], fit=True)
    x_val, x_test = matrix(parts["val"]), matrix(parts["test"])
    first = x_train.shape[1] - len(categories) - len(numbers)
    model = lgb.LGBMClassifier(
        n_estimators=500, learning_rate=0.1, num_leaves=31, num_threads=2, verbose=-1
    )
    model.fit(
        x_train,
        parts["train"][target],
        eval_set=[(x_val, parts["val"][target])],
        categorical_feature=list(range(first, first + len(categories))),
        callbacks=[lgb.early_stopping(30, verbose=False)],
    )
    return {
        "trees": int(model.best_iteration_ or model.n_estimators),
        "test_accuracy": round(float(model.score(x_test, parts["test"][target])), 4),
        "seconds": round(time.perf_counter() - start, 1),
    }


def megalith_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "megalith", *args], capture_output=True, text=True)


def init_config(csv: Path, target: str, folder: Path) -> dict[str, Any]:
    path = folder / "init.yaml"
    done = megalith_cli("init", str(csv), "--target", target, "--output", str(path))
    if done.returncode:
        raise SystemExit(f"megalith init failed: {done.stderr.strip()}")
    config = yaml.safe_load(path.read_text())
    config["data"]["split"] = {"column": "split"}  # the baselines' split
    return config


def train_megalith(config: dict[str, Any], folder: Path, sets: list[str]) -> dict[str, Any]:
    """Train `config` with the CLI; test accuracy, seconds, epochs run, or the error."""
    path = folder / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    run = folder / config["name"]
    overrides = [arg for s in sets for arg in ("--set", s)]
    start = time.perf_counter()
    done = megalith_cli("train", str(path), "--output-dir", str(run), *overrides)
    seconds = round(time.perf_counter() - start, 1)
    if done.returncode:
        return {"error": done.stderr.strip()[-500:], "seconds": seconds}
    metrics = json.loads((run / "eval.json").read_text())
    training = metrics["training"]
    return {
        "test_accuracy": round(float(metrics["test"]["accuracy"]), 4),
        "seconds": seconds,
        "train_seconds": round(training["seconds"], 1),
        "epochs": training["epochs"],
        "best_epoch": training.get("best_epoch"),
    }


def baselines(frame: pd.DataFrame, target: str, inputs: list[dict[str, Any]], cache: Path) -> Any:
    """The linear and LightGBM results, kept in `cache` (they do not change with --set)."""
    if cache.exists():
        return json.loads(cache.read_text())
    results = {
        "linear": fit_linear(frame, target, inputs),
        "lightgbm": fit_lightgbm(frame, target, inputs),
    }
    cache.write_text(json.dumps(results))
    return results


def blanked_accuracy(run: Path, test: pd.DataFrame, target: str, column: str) -> float:
    import megalith as mg

    blank = test.drop(columns=[target]).copy()
    blank[column] = np.nan if pd.api.types.is_numeric_dtype(blank[column]) else None
    predicted = mg.load(run).predict(blank)[target]
    return round(float((predicted.astype(str).to_numpy() == test[target].astype(str)).mean()), 4)


def run_table(name: str, args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    target, build = TABLES[name]
    csv = Path(args.cache) / f"{name}.csv"
    if not csv.exists():
        build().to_csv(csv, index=False)
    frame = pd.read_csv(csv, keep_default_na=True)
    frame["split"] = split_rows(frame, target)
    data = folder / f"{name}.csv"
    frame.to_csv(data, index=False)
    config = init_config(data, target, folder)
    config["name"] = name
    inputs = config["inputs"]
    if args.numbers:  # the lever `transform: quantile` against init's log, on the same columns
        for feature in inputs:
            if feature.get("transform") == "log":
                feature["transform"] = args.numbers
    result: dict[str, Any] = {
        "table": name,
        "rows": len(frame),
        "classes": int(frame[target].nunique()),
        "inputs": {f["name"]: f["type"] for f in inputs},
    }
    if not args.no_baselines:
        result.update(baselines(frame, target, inputs, Path(args.cache) / f"{name}-baselines.json"))
    result["megalith"] = train_megalith(config, folder, args.set)
    test = frame[frame["split"] == "test"]
    if args.blank and "error" not in result["megalith"]:
        result["blanked"] = {
            f["name"]: blanked_accuracy(folder / name, test, target, f["name"]) for f in inputs
        }
    if args.columns:
        result["columns"] = each_column_alone(frame, target, config, folder, args)
    if args.groups:
        result["groups"] = {}
        for group, kinds in (("text", ("text", "set")), ("table", None)):
            kept = [
                f
                for f in inputs
                if (f["type"] in kinds if kinds else f["type"] not in ("text", "set"))
            ]
            if kept and len(kept) < len(inputs):
                model = dict(config["model"])
                if len(kept) == 1:  # nothing to drop in favour of another input
                    model.pop("modality_dropout", None)
                alone = {**config, "name": f"{name}-{group}", "inputs": kept, "model": model}
                result["groups"][group] = train_megalith(alone, folder, args.set)
    _summarise(result)
    if "linear" in result and "test_accuracy" in result["megalith"]:
        ratio = result["megalith"]["test_accuracy"] / result["linear"]["test_accuracy"]
        result["megalith_vs_linear"] = round(ratio, 3)
    return result


def each_column_alone(
    frame: pd.DataFrame, target: str, config: dict[str, Any], folder: Path, args: Any
) -> dict[str, Any]:
    """Megalith (the same config, no modality dropout) and the linear baseline trained on one
    input column at a time: which column's encoding loses points against the linear model."""
    results: dict[str, Any] = {}
    for feature in config["inputs"]:
        model = {k: v for k, v in config["model"].items() if not k.startswith("modality_dropout")}
        alone = {**config, "name": f"{config['name']}-{feature['name']}", "inputs": [feature]}
        results[feature["name"]] = {
            "megalith": train_megalith({**alone, "model": model}, folder, args.set),
            "linear": None if args.no_baselines else fit_linear(frame, target, [feature]),
        }
    return results


def _summarise(result: dict[str, Any]) -> None:
    """Add the fusion margin over the best group alone and each column's cost when blanked."""
    fused = result["megalith"].get("test_accuracy")
    if fused is None:
        return
    alone = [g["test_accuracy"] for g in result.get("groups", {}).values() if "test_accuracy" in g]
    if alone:
        result["fusion_margin_points"] = round(100 * (fused - max(alone)), 1)
    if "blanked" in result:
        result["blank_cost_points"] = {
            name: round(100 * (fused - accuracy), 1) for name, accuracy in result["blanked"].items()
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", default=",".join(TABLES))
    parser.add_argument("--cache", default=tempfile.gettempdir(), help="where the CSVs are kept")
    parser.add_argument("--output-dir", default=None, help="keep the runs here")
    parser.add_argument("--groups", action="store_true", help="also train on each column group")
    parser.add_argument("--blank", action="store_true", help="also blank each column at test")
    parser.add_argument("--columns", action="store_true", help="also train on each column alone")
    parser.add_argument("--set", action="append", default=[], help="a config override")
    parser.add_argument("--no-baselines", action="store_true", help="Megalith only")
    parser.add_argument("--numbers", choices=("log", "quantile"), help="replace init's log")
    args = parser.parse_args()
    machine = {"python": platform.python_version(), "cpus": __import__("os").cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.output_dir or tmp)
        folder.mkdir(parents=True, exist_ok=True)
        for name in args.tables.split(","):
            print(json.dumps({**run_table(name, args, folder), "machine": machine}), flush=True)


if __name__ == "__main__":
    main()
