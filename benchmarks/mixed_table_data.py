"""Mixed tables built offline for benchmarks/mixed_tables.py: text, names, numbers, categories.

- `modules`: one row per Python file of the installed distributions (site-packages), parsed with
  `ast`, never imported. Like the table of issue 18: a one-line description (`summary`, the
  module's docstring or else its first function's), a space-separated list of names (`imports`,
  the modules it imports, its own package's left out), three heavy-tailed numbers (`size_kb`,
  `docstring_kb`, `defs`), a high-cardinality category (`folder`, the parent folder's name), a
  two-valued (`kind`: package __init__ or module) and a five-valued category (`depth`) and a
  yes/no (`private`: a name starting with '_'). Label: the top-level package (16 classes).
- `functions`: one row per function or class of the standard library: its docstring's first
  paragraph (`doc`), its argument names (`args`, a set), its length in lines and its count of
  arguments and decorators, the class that owns it (high cardinality), whether it is a
  method; label: the top-level module (16 classes).
- `synthetic`: a table with a known answer: the label is the parity of a keyword in the text
  and a category's group, beside a heavy-tailed number of noise; no column alone decides it.
- `evidence`: a table with a known answer of the opposite kind: the text, a category and a
  heavy-tailed number each point to the right class of four only some of the time, independently,
  so each column group alone is well short of what their evidence together gives, and no
  interaction is needed (a linear model can reach the ceiling).
(Installed distributions' own metadata has too few rows here, 135, to train on.)
"""

from __future__ import annotations

import ast
import sysconfig
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CLASSES = 16
SEED = 0


def _first_line(doc: str | None, limit: int = 200) -> str:
    text = " ".join((doc or "").strip().split("\n\n")[0].split())
    return text[:limit]


def _imports(tree: ast.Module, own: str) -> list[str]:
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names.append(("." * node.level) + (node.module or ""))
    kept = [n.lstrip(".") for n in names if n.lstrip(".") and n.split(".")[0] != own]
    return list(dict.fromkeys(kept))


def _module_row(path: Path, root: Path) -> dict[str, Any] | None:
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
        return None
    parts = path.relative_to(root).parts
    functions = [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))]
    doc = ast.get_docstring(tree) or next(
        (d for d in (ast.get_docstring(f) for f in functions) if d), ""
    )
    docs = sum(len(ast.get_docstring(f) or "") for f in functions)
    return {
        "summary": _first_line(doc),
        "imports": " ".join(_imports(tree, parts[0])),
        "size_kb": round(len(source.encode()) / 1024, 2),
        "docstring_kb": round(docs / 1024, 2),
        "defs": len(functions),
        "folder": parts[-2] if len(parts) > 2 else "(top)",
        "kind": "package" if path.name == "__init__.py" else "module",
        "depth": str(min(len(parts) - 1, 5)),
        "private": "yes" if path.stem.startswith("_") and path.name != "__init__.py" else "no",
        "package": parts[0],
    }


def modules_table(per_class: int = 1250, root: Path | None = None) -> pd.DataFrame:
    """The `modules` table: at most `per_class` files of each of the 16 packages with most."""
    root = root or Path(sysconfig.get_paths()["purelib"])
    files: dict[str, list[Path]] = {}
    for path in sorted(root.glob("*/**/*.py")):
        top = path.relative_to(root).parts[0]
        if not top.endswith(("-info", "__pycache__")) and "tests" not in path.parts:
            files.setdefault(top, []).append(path)
    biggest = sorted(files, key=lambda k: (-len(files[k]), k))[:CLASSES]
    rng = np.random.default_rng(SEED)
    rows = []
    for package in biggest:
        chosen = sorted(files[package])
        if len(chosen) > per_class:
            chosen = [chosen[i] for i in sorted(rng.choice(len(chosen), per_class, replace=False))]
        rows += [row for row in (_module_row(p, root) for p in chosen) if row is not None]
    return pd.DataFrame(rows).sample(frac=1.0, random_state=SEED).reset_index(drop=True)


def _stdlib_functions() -> Iterator[dict[str, Any]]:
    root = Path(sysconfig.get_paths()["stdlib"])
    for path in sorted(root.glob("**/*.py")):
        parts = path.relative_to(root).parts
        if {"test", "tests", "site-packages", "idlelib", "__pycache__"} & set(parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, ValueError, OSError):
            continue
        owners = {
            id(f): c.name for c in ast.walk(tree) if isinstance(c, ast.ClassDef) for f in c.body
        }
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                continue
            doc = _first_line(ast.get_docstring(node), 300)
            if len(doc) < 20:
                continue
            args = node.args.args if not isinstance(node, ast.ClassDef) else []
            yield {
                "doc": doc,
                "args": " ".join(a.arg for a in args if a.arg not in ("self", "cls")),
                "lines": (node.end_lineno or node.lineno) - node.lineno + 1,
                "arg_count": len(args),
                "decorators": len(node.decorator_list),
                "owner": owners.get(id(node), "(none)"),
                "method": "yes" if id(node) in owners else "no",
                "module": parts[0].removesuffix(".py"),
            }


def functions_table(per_class: int = 1250) -> pd.DataFrame:
    """The `functions` table: at most `per_class` rows of each of the 16 biggest modules."""
    frame = pd.DataFrame(list(_stdlib_functions()))
    biggest = frame["module"].value_counts().index[:CLASSES]
    frame = frame[frame["module"].isin(biggest)]
    parts = [
        group.sample(min(len(group), per_class), random_state=SEED)
        for _, group in frame.groupby("module")
    ]
    return pd.concat(parts).sample(frac=1.0, random_state=SEED).reset_index(drop=True)


def synthetic_table(rows: int = 6000, seed: int = SEED) -> pd.DataFrame:
    """Known answer: label = (keyword in text) XOR (colour is warm), 10% of labels flipped at
    random (the ceiling is 90%); `size` is heavy-tailed noise. Each column alone is at chance
    (50%), and so is any model without interactions between inputs (a linear one)."""
    rng = np.random.default_rng(seed)
    words = [f"w{i}" for i in range(200)]
    keyword = rng.random(rows) < 0.5
    text = [" ".join(rng.choice(words, 6)) + (" signal" if k else " noise") for k in keyword]
    colours = np.array([f"c{i}" for i in range(300)])
    colour = rng.choice(colours, rows)
    warm = np.array([int(c[1:]) % 2 == 0 for c in colour])
    size = np.exp(rng.normal(6, 2.5, rows)).round(1)  # log-normal: ~1 .. 10^6
    label = keyword ^ warm
    label ^= rng.random(rows) < 0.1
    return pd.DataFrame(
        {"text": text, "colour": colour, "size": size, "label": np.where(label, "A", "B")}
    )


def evidence_table(rows: int = 6000, seed: int = SEED) -> pd.DataFrame:
    """Known answer, additive: label k of 4; the text holds class k's keyword with probability
    0.55 (else another class's), the 400-valued `shop` belongs to class k with probability 0.55,
    and `amount` is log-normal with a median of 10^(k+1) and a spread of one decade either side.
    `weekday` is noise. The Bayes accuracy (the ceiling) is 0.71 with every column, 0.55 with
    the text alone and 0.65 with the table columns alone (simulated on 200,000 rows)."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 4, rows)

    def hinted(p: float) -> np.ndarray:
        other = (label + rng.integers(1, 4, rows)) % 4  # a wrong class, uniformly
        return np.where(rng.random(rows) < p, label, other)

    keywords = np.array(["invoice", "refund", "transfer", "payroll"])
    filler = [f"w{i}" for i in range(300)]
    text = [" ".join([*rng.choice(filler, 5), keywords[k]]) for k in hinted(0.55)]
    shops = hinted(0.55) + 4 * rng.integers(0, 100, rows)  # shop s belongs to class s % 4
    amount = np.exp(np.log(10.0) * (label + 1 + rng.normal(0, 1.0, rows))).round(2)
    return pd.DataFrame(
        {
            "memo": text,
            "shop": [f"shop{s}" for s in shops],
            "amount": amount,
            "weekday": rng.choice(["mon", "tue", "wed", "thu", "fri"], rows),
            "label": np.array(["A", "B", "C", "D"])[label],
        }
    )


TABLES = {
    "modules": ("package", modules_table),
    "functions": ("module", functions_table),
    "synthetic": ("label", synthetic_table),
    "evidence": ("label", evidence_table),
}
"""name -> (target column, builder)."""
