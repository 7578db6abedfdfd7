"""Built-in datasets that work offline: scikit-learn's bundled sets and generated tables.

scikit-learn is imported inside each loader: it takes about a second to import.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from megalith.data.docstrings import docstrings_table
from megalith.data.number_words import number_words_table
from megalith.errors import DataError, did_you_mean


@dataclass(frozen=True)
class BuiltinDataset:
    """A named dataset with the features and model that suit it."""

    name: str
    description: str
    target: str
    """The column to predict."""
    inputs: list[dict[str, Any]]
    """Input feature configs, e.g. [{"name": "image", "type": "image"}]."""
    outputs: list[dict[str, Any]]
    """Output feature configs, e.g. [{"name": "label", "type": "category"}]."""
    arch: str
    """Suggested model.arch: 'cnn' for images, else 'mlp'."""
    loader: Callable[[], pd.DataFrame]


def _digits() -> pd.DataFrame:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    pixels = np.rint(bunch.images * (255 / 16)).astype(np.uint8)  # (N, 8, 8), 0..16 -> 0..255
    images = np.empty(len(pixels), dtype=object)
    for row, image in enumerate(pixels):
        images[row] = image  # one (8, 8) array per cell; pandas would otherwise make it 2-D
    return pd.DataFrame({"image": images, "label": bunch.target.astype(np.int64)})


def _digits_table() -> pd.DataFrame:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    frame = pd.DataFrame(bunch.data.astype(np.int64), columns=_PIXELS)
    frame["label"] = bunch.target.astype(np.int64)
    return frame


def _sklearn_table(
    load: Callable[..., Any], target: str, names: Callable[[str], str] = str
) -> pd.DataFrame:
    """A scikit-learn Bunch as a frame; class targets become their names."""
    bunch = load()
    frame = pd.DataFrame(bunch.data, columns=[names(n) for n in bunch.feature_names])
    classes = getattr(bunch, "target_names", None)
    frame[target] = bunch.target if classes is None else np.asarray(classes)[bunch.target]
    return frame


def _iris() -> pd.DataFrame:
    from sklearn.datasets import load_iris

    # 'sepal length (cm)' -> 'sepal_length'
    return _sklearn_table(load_iris, "species", lambda n: n.removesuffix(" (cm)").replace(" ", "_"))


def _wine() -> pd.DataFrame:
    from sklearn.datasets import load_wine

    return _sklearn_table(load_wine, "cultivar")


def _breast_cancer() -> pd.DataFrame:
    from sklearn.datasets import load_breast_cancer

    return _sklearn_table(load_breast_cancer, "diagnosis")  # scikit-learn's names: 'mean radius'


def _diabetes() -> pd.DataFrame:
    from sklearn.datasets import load_diabetes

    frame = _sklearn_table(lambda: load_diabetes(scaled=False), "progression")
    frame["sex"] = frame["sex"].astype(np.int64)
    return frame


def _synthetic_classification() -> pd.DataFrame:
    """1000 rows with the usual mess: missing cells, an ID, a constant, strings, yes/no."""
    rng = np.random.default_rng(20240501)
    rows = 1000
    age = rng.normal(40, 12, rows).round(1)
    income = rng.lognormal(10.5, 0.5, rows).round(2)
    score = rng.normal(0, 1, rows).round(3)
    city = rng.choice(["paris", "lagos", "lima", "osaka", "perth"], rows)
    member = rng.choice(["yes", "no"], rows, p=[0.4, 0.6])
    latent = (
        1.2 * score
        + 0.03 * (age - 40)
        + 0.9 * (member == "yes")
        + np.select([city == "paris", city == "lima"], [0.8, -0.8], 0.0)
        + rng.normal(0, 0.4, rows)
    )
    low, high = np.quantile(latent, [1 / 3, 2 / 3])
    age[rng.choice(rows, 25, replace=False)] = np.nan  # a few missing cells, after the label
    frame = pd.DataFrame(
        {
            "customer_id": [f"c{i:05d}" for i in range(rows)],
            "age": age,
            "income": income,
            "score": score,
            "city": city,
            "member": member,
            "source": "web",
            "label": np.where(latent < low, "low", np.where(latent < high, "mid", "high")),
        }
    )
    frame.loc[rng.choice(rows, 10, replace=False), "city"] = None
    return frame


def _synthetic_regression() -> pd.DataFrame:
    """1000 rows: y = a smooth nonlinear function of three numbers and a region, plus noise."""
    rng = np.random.default_rng(20240502)
    rows = 1000
    x1, x2, x3 = (rng.uniform(-2, 2, rows) for _ in range(3))
    region = rng.choice(["north", "south", "east", "west"], rows)
    effect = pd.Series(region).map({"north": 1.0, "south": -1.0, "east": 0.5, "west": 0.0})
    y = np.sin(2 * x1) + 0.5 * x2**2 + 0.5 * x1 * x3 + effect.to_numpy() + rng.normal(0, 0.1, rows)
    return pd.DataFrame(
        {"x1": x1.round(4), "x2": x2.round(4), "x3": x3.round(4), "region": region, "y": y.round(4)}
    )


_PIXELS = [f"px{i}" for i in range(64)]
_IRIS = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
_WINE = [
    "alcohol",
    "malic_acid",
    "ash",
    "alcalinity_of_ash",
    "magnesium",
    "total_phenols",
    "flavanoids",
    "nonflavanoid_phenols",
    "proanthocyanins",
    "color_intensity",
    "hue",
    "od280/od315_of_diluted_wines",
    "proline",
]
_MEASURES = [
    "radius",
    "texture",
    "perimeter",
    "area",
    "smoothness",
    "compactness",
    "concavity",
    "concave points",
    "symmetry",
    "fractal dimension",
]
_CANCER = (
    [f"mean {m}" for m in _MEASURES]
    + [f"{m} error" for m in _MEASURES]
    + [f"worst {m}" for m in _MEASURES]
)
_DIABETES = ["age", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6"]


def _python_stdlib() -> pd.DataFrame:
    from megalith.data.corpus import python_stdlib_corpus  # imports the text features

    return python_stdlib_corpus()


def _spoken_digits() -> pd.DataFrame:
    from megalith.data.spoken_digits import spoken_digits_table  # soundfile and soxr

    return spoken_digits_table()


def _spoken_digit_strings() -> pd.DataFrame:
    from megalith.data.spoken_digit_strings import spoken_digit_strings_table  # soundfile, soxr

    return spoken_digit_strings_table()


def _numbers(names: list[str]) -> list[dict[str, Any]]:
    return [{"name": name, "type": "number"} for name in names]


def _output(name: str, type: str) -> list[dict[str, Any]]:
    return [{"name": name, "type": type}]


_DATASETS = [
    BuiltinDataset(
        "digits",
        "1,797 handwritten digits as 8x8 greyscale images (scikit-learn); classify 0-9",
        "label",
        [{"name": "image", "type": "image"}],
        _output("label", "category"),
        "cnn",
        _digits,
    ),
    BuiltinDataset(
        "digits_table",
        "the same digits as 64 pixel columns px0..px63; classify 0-9",
        "label",
        _numbers(_PIXELS),
        _output("label", "category"),
        "mlp",
        _digits_table,
    ),
    BuiltinDataset(
        "iris",
        "150 iris flowers, 4 measurements; classify the species (3 classes)",
        "species",
        _numbers(_IRIS),
        _output("species", "category"),
        "mlp",
        _iris,
    ),
    BuiltinDataset(
        "wine",
        "178 wines, 13 chemical measurements; classify the cultivar (3 classes)",
        "cultivar",
        _numbers(_WINE),
        _output("cultivar", "category"),
        "mlp",
        _wine,
    ),
    BuiltinDataset(
        "breast_cancer",
        "569 tumours, 30 measurements; diagnosis malignant or benign",
        "diagnosis",
        _numbers(_CANCER),
        _output("diagnosis", "binary"),
        "mlp",
        _breast_cancer,
    ),
    BuiltinDataset(
        "diabetes",
        "442 patients, 10 measurements; regress disease progression after one year",
        "progression",
        [*_numbers(_DIABETES[:1]), {"name": "sex", "type": "binary"}, *_numbers(_DIABETES[1:])],
        _output("progression", "number"),
        "mlp",
        _diabetes,
    ),
    BuiltinDataset(
        "synthetic_classification",
        "1,000 generated rows with missing cells, strings and yes/no; classify low/mid/high",
        "label",
        [
            *_numbers(["age", "income", "score"]),
            {"name": "city", "type": "category"},
            {"name": "member", "type": "binary"},
        ],
        _output("label", "category"),
        "mlp",
        _synthetic_classification,
    ),
    BuiltinDataset(
        "synthetic_regression",
        "1,000 generated rows, 3 numbers and a region; regress a noisy nonlinear y",
        "y",
        [*_numbers(["x1", "x2", "x3"]), {"name": "region", "type": "category"}],
        _output("y", "number"),
        "mlp",
        _synthetic_regression,
    ),
    BuiltinDataset(
        "docstrings",
        "~3,500 docstrings (first paragraphs) of this Python's standard library; classify the "
        "module they document (16 classes: asyncio, email, xml, ...)",
        "module",
        [{"name": "text", "type": "text"}],
        _output("module", "category"),
        "mlp",
        docstrings_table,
    ),
    BuiltinDataset(
        "number_words",
        "6,000 numbers written in digits and in English words (generated); for seq2seq: "
        "'4218' -> 'four thousand two hundred eighteen'",
        "words",
        [{"name": "number", "type": "text", "tokenizer": "char"}],
        [{"name": "words", "type": "text", "tokenizer": "word", "vocab_size": 64}],
        "seq2seq",
        number_words_table,
    ),
    BuiltinDataset(
        "python_stdlib",
        "a text corpus: the source of this Python's standard-library modules (~150 files, "
        "~4.5 MB); for language models (model.arch gpt)",
        "text",
        [],
        _output("text", "text"),
        "gpt",
        _python_stdlib,
    ),
    BuiltinDataset(
        "spoken_digits",
        "600 spoken digits 'zero'-'nine' by 12 synthetic voices (espeak-ng, 8 kHz), generated "
        "once into the cache; column split holds out 2 voices for test, 1 for val",
        "digit",
        [{"name": "audio", "type": "audio", "sample_rate": 8000, "duration": 1.1, "augment": {}}],
        _output("digit", "category"),
        "cnn",
        _spoken_digits,
    ),
    BuiltinDataset(
        "spoken_digit_strings",
        "720 strings of 3-7 spoken digits ('four one seven') by 24 synthetic voices (espeak-ng, "
        "8 kHz), generated once into the cache; for speech recognition (asr): column split "
        "holds out 4 voices for test, 2 for val",
        "text",
        [{"name": "audio", "type": "audio", "sample_rate": 8000, "augment": {"gain_db": 6}}],
        [{"name": "text", "type": "text", "tokenizer": "char"}],
        "asr",
        _spoken_digit_strings,
    ),
]
BUILTIN_DATASETS: dict[str, BuiltinDataset] = {d.name: d for d in _DATASETS}
"""Every built-in dataset by name; `data.source: builtin:NAME`."""


def load_builtin(name: str) -> pd.DataFrame:
    """The rows of built-in dataset `name` (without the 'builtin:' prefix), with a RangeIndex.

    Raises:
        DataError: for an unknown name, with the closest name and the list of names.
    """
    dataset = BUILTIN_DATASETS.get(name)
    if dataset is None:
        names = ", ".join(BUILTIN_DATASETS)
        raise DataError(
            f"unknown built-in dataset 'builtin:{name}'{did_you_mean(name, BUILTIN_DATASETS)}; "
            f"choose from {names} (list them with `megalith datasets`)."
        )
    return dataset.loader()
