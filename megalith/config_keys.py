"""The key of a `--set KEY=VALUE` override, split into its parts.

A key is parts joined by '.': `train.epochs`, `inputs.0.type`. A part that itself holds a '.'
or '=' (a column named `a.b` inside `model.modality_dropout_by_input`) is quoted, with double or
single quotes, or written in brackets:

    model.modality_dropout_by_input."a.b"=0.3
    model.modality_dropout_by_input['a.b']=0.3
    model.modality_dropout_by_input["a.b"]=0.3
"""

from __future__ import annotations

from megalith.errors import ConfigError

_QUOTES = "\"'"


def split_override(override: str) -> tuple[list[str], str]:
    """'a."b.c"=v' -> (['a', 'b.c'], 'v'): the key's parts and the raw value text after '='.

    Raises:
        ConfigError: no '=', an empty key or part, an unclosed quote or bracket, or text
            between a closing quote and the next '.'.
    """
    parts: list[str] = []
    i, text = 0, override
    while True:
        part, i = _read_part(text, i, override)
        parts.append(part)
        if i < len(text) and text[i] == ".":
            i += 1
        elif i < len(text) and text[i] == "=":
            return parts, text[i + 1 :]
        elif i >= len(text) or text[i] != "[":
            if "=" not in text:
                raise ConfigError(f"--set '{override}': expected KEY=VALUE, e.g. train.epochs=3")
            raise ConfigError(
                f"--set '{override}': after the quoted key part {part!r} comes '.', '[' or '='"
            )


def _read_part(text: str, i: int, override: str) -> tuple[str, int]:
    """One part starting at text[i]: quoted, bracketed or bare; (part, index after it)."""
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] in _QUOTES:
        return _closed(text, i + 1, text[i], override)
    if i < len(text) and text[i] == "[":
        return _bracketed(text, i, override)
    start = i
    while i < len(text) and text[i] not in ".=[":
        i += 1
    part = text[start:i].strip()
    if not part:
        key = text.partition("=")[0].strip()
        if not key or "=" not in text:
            raise ConfigError(f"--set '{override}': expected KEY=VALUE, e.g. train.epochs=3")
        raise ConfigError(f"--set '{override}': empty part in the key '{key}'")
    return part, i


def _bracketed(text: str, i: int, override: str) -> tuple[str, int]:
    """A part written ["x"] or ['x'] starting at text[i] == '['."""
    j = i + 1
    if j >= len(text) or text[j] not in _QUOTES:
        raise ConfigError(
            f"--set '{override}': a bracketed key part is quoted, like [\"a.b\"] or ['a.b']"
        )
    part, k = _closed(text, j + 1, text[j], override)
    if k >= len(text) or text[k] != "]":
        raise ConfigError(f"--set '{override}': the bracket opened at {i + 1} is not closed")
    return part, k + 1


def _closed(text: str, start: int, quote: str, override: str) -> tuple[str, int]:
    """The quoted text from `start` to the closing `quote`; (text, index after the quote)."""
    end = text.find(quote, start)
    if end < 0:
        raise ConfigError(f"--set '{override}': the quote {quote} in the key is not closed")
    if end == start:
        raise ConfigError(f"--set '{override}': an empty quoted part ({quote}{quote}) in the key")
    return text[start:end], end + 1
