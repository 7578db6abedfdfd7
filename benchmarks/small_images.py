"""Small real image datasets: `megalith init` + `megalith train` against logistic regression on the
raw pixels, on the same train / test rows. Prints one JSON object per dataset.

Datasets, made offline:
  digits  scikit-learn's handwritten digits (8x8 grey), PER_CLASS train images per class, the
          rest for test.
  fonts   characters rendered with Pillow in the fonts under /usr/share/fonts: 40 classes (A-Z,
          0-9, four symbols), each drawn once per font at a random size and offset on a 92x112
          grey canvas with a little noise; a few fonts for train (--train-fonts), every other
          font for test, so test images come from typefaces never seen in training.

Each dataset is written as PNG files and a CSV with columns image, label, split (train / test);
`megalith init` reads the split column and holds 10% of train out for validation. The baseline is
LogisticRegression on the standardised raw pixels of all train rows, C chosen by 3-fold
cross-validation on train. Megalith's accuracy is from the run's eval.json (test split).

    python benchmarks/small_images.py [--only digits fonts] [--per-class 5] [--train-fonts 5]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageFont

CHARACTERS = string.ascii_uppercase + string.digits + "#&?@"
"""40 classes."""
FONT_DIR = Path("/usr/share/fonts")


def font_files() -> list[Path]:
    """Every TrueType / OpenType font under /usr/share/fonts, sorted by name."""
    found = [*FONT_DIR.rglob("*.ttf"), *FONT_DIR.rglob("*.otf")]
    return sorted(found, key=lambda p: p.name)


def render_character(
    character: str, font: Path, rng: np.random.Generator, size: tuple[int, int] = (112, 92)
) -> np.ndarray:
    """One character as uint8 (H, W): dark on light, random glyph size, offset and noise."""
    height, width = size
    canvas = Image.new("L", (width, height), color=int(rng.integers(200, 256)))
    points = int(rng.uniform(0.45, 0.75) * height)
    typeface = ImageFont.truetype(str(font), points)
    draw = ImageDraw.Draw(canvas)
    left, top, right, bottom = draw.textbbox((0, 0), character, font=typeface)
    free_x, free_y = max(width - (right - left), 1), max(height - (bottom - top), 1)
    x = int(rng.integers(0, free_x)) - left
    y = int(rng.integers(0, free_y)) - top
    draw.text((x, y), character, fill=int(rng.integers(0, 70)), font=typeface)
    pixels = np.asarray(canvas, dtype=np.float32) + rng.normal(0, 8, (height, width))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def fonts_table(
    folder: Path,
    *,
    classes: int = 40,
    train_fonts: int = 5,
    test_fonts: int | None = None,
    size: tuple[int, int] = (112, 92),
    seed: int = 0,
) -> Path:
    """Render `classes` characters in every font (train fonts spread over the families); write
    PNGs and images.csv (image, label, split) into `folder`; return the CSV's path."""
    fonts = font_files()
    if len(fonts) < train_fonts + 1:
        raise SystemExit(f"need at least {train_fonts + 1} fonts under {FONT_DIR}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(fonts))
    train = {int(i) for i in order[:train_fonts]}
    rest = [int(i) for i in order[train_fonts:]]
    test = set(rest if test_fonts is None else rest[:test_fonts])
    rows = []
    folder.mkdir(parents=True, exist_ok=True)
    for index, font in enumerate(fonts):
        if index not in train and index not in test:
            continue
        for number, character in enumerate(CHARACTERS[:classes]):
            name = f"{number:02d}-{font.stem}.png"
            Image.fromarray(render_character(character, font, rng, size)).save(folder / name)
            split = "train" if index in train else "test"
            rows.append({"image": name, "label": f"c{number:02d}", "split": split})
    csv = folder / "images.csv"
    pd.DataFrame(rows).to_csv(csv, index=False)
    return csv


def digits_table(folder: Path, *, per_class: int = 5, seed: int = 0) -> Path:
    """scikit-learn's digits as 8x8 PNGs: `per_class` random train rows per class, the rest test."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    rng = np.random.default_rng(seed)
    split = np.full(len(bunch.target), "test", dtype=object)
    for label in np.unique(bunch.target):
        rows = rng.permutation(np.flatnonzero(bunch.target == label))[:per_class]
        split[rows] = "train"
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for row, image in enumerate(bunch.images):
        name = f"{row:04d}.png"
        Image.fromarray(np.rint(image * 255 / 16).astype(np.uint8)).save(folder / name)
        names.append(name)
    csv = folder / "images.csv"
    pd.DataFrame({"image": names, "label": bunch.target, "split": split}).to_csv(csv, index=False)
    return csv


def logistic_regression(csv: Path) -> dict[str, Any]:
    """LogisticRegression on standardised raw pixels; C by 3-fold cross-validation on train."""
    from sklearn.linear_model import LogisticRegressionCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    start = time.perf_counter()
    frame = pd.read_csv(csv)
    pixels = np.stack(
        [
            np.asarray(Image.open(csv.parent / name).convert("L"), np.float32).ravel()
            for name in frame["image"]
        ]
    )
    train = (frame["split"] == "train").to_numpy()
    model = make_pipeline(
        StandardScaler(), LogisticRegressionCV(Cs=[0.001, 0.01, 0.1, 1.0], cv=3, max_iter=2000)
    )
    model.fit(pixels[train], frame["label"][train])
    accuracy = float(model.score(pixels[~train], frame["label"][~train]))
    return {"test_accuracy": round(accuracy, 4), "seconds": round(time.perf_counter() - start, 1)}


def megalith_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "megalith", *args], capture_output=True, text=True)


def run_megalith(csv: Path, *overrides: str) -> dict[str, Any]:
    """`megalith init` + `megalith train` (with --set overrides): test accuracy and seconds."""
    config = csv.parent / "config.yaml"
    init = megalith_cli("init", str(csv), "--target", "label", "--output", str(config))
    if init.returncode != 0:
        return {"failed": "megalith init", "stderr": init.stderr.strip()[-2000:]}
    sets = [part for value in overrides for part in ("--set", value)]
    start = time.perf_counter()
    train = megalith_cli(
        "train", str(config), "--output-dir", str(csv.parent / "run"), "--overwrite", *sets
    )
    seconds = time.perf_counter() - start
    if train.returncode != 0:
        return {"failed": "megalith train", "stderr": train.stderr.strip()[-2000:]}
    evaluation = json.loads((csv.parent / "run" / "eval.json").read_text())
    return {
        "test_accuracy": round(float(evaluation["test"]["accuracy"]), 4),
        "seconds": round(seconds, 1),
        "epochs": evaluation["training"]["epochs"],
        "steps": evaluation["training"]["steps"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", default=["digits", "fonts"])
    parser.add_argument("--per-class", type=int, default=5, help="digits: train rows per class")
    parser.add_argument("--train-fonts", type=int, default=5, help="fonts: train fonts")
    parser.add_argument("--test-fonts", type=int, help="fonts: test fonts (default: the rest)")
    parser.add_argument("--output-dir", type=Path, help="Where to write (default: temp).")
    parser.add_argument("--set", action="append", default=[], help="Extra megalith --set.")
    args = parser.parse_args()
    root = args.output_dir or Path(tempfile.mkdtemp(prefix="megalith-small-images-"))
    machine = f"{platform.machine()}, {os.cpu_count()} CPUs, Python {sys.version.split()[0]}"
    for name in args.only:
        if name == "digits":
            csv = digits_table(root / "digits", per_class=args.per_class)
        else:
            csv = fonts_table(
                root / "fonts", train_fonts=args.train_fonts, test_fonts=args.test_fonts
            )
        frame = pd.read_csv(csv)
        baseline = logistic_regression(csv)
        ours = run_megalith(csv, *args.set)
        row = {
            "dataset": name,
            "machine": machine,
            "classes": int(frame["label"].nunique()),
            "train_rows": int((frame["split"] == "train").sum()),
            "test_rows": int((frame["split"] == "test").sum()),
            "logistic_regression": baseline,
            "megalith": ours,
        }
        if "test_accuracy" in ours:
            row["accuracy_ratio"] = round(ours["test_accuracy"] / baseline["test_accuracy"], 3)
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
