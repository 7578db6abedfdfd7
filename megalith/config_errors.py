"""Pydantic's validation errors told in the config's own terms: the path as the user writes it
(`inputs.0.name`, not pydantic's union labels), 'did you mean' for unknown keys, the choices of a
tagged union (`model.arch`, an input's `type`)."""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from megalith.errors import did_you_mean


def describe_error(error: Mapping[str, Any], root: type[BaseModel]) -> tuple[str, str, str]:
    """(path as the user writes it, the problem, ' (got VALUE)' or '') for one pydantic error
    raised while validating `root` (the top-level Config)."""
    loc = tuple(error["loc"])
    shown = _walk(loc, root)[0]
    path = ".".join(shown) or "config"
    kind, value = error["type"], error.get("input")
    if kind == "extra_forbidden":
        parent = ".".join(shown[:-1]) or "top level"
        hint = did_you_mean(str(loc[-1]), _fields_at(loc[:-1], root))
        return path, f"unknown key '{loc[-1]}' in {parent}{hint}", ""
    if kind == "missing":
        return path, "required key is missing", ""
    if kind == "union_tag_not_found":
        key = str(error.get("ctx", {}).get("discriminator", "type")).strip("'")
        choices = _tag_choices(loc, key)
        return path, f"needs a '{key}' key ({choices})", ""
    if kind == "union_tag_invalid":
        ctx = error.get("ctx", {})
        tag, expected = str(ctx.get("tag", value)), str(ctx.get("expected_tags", ""))
        names = [t.strip(" '") for t in expected.split(",")]
        field = "arch" if loc and loc[-1] == "model" else "type"
        problem = f"unknown '{tag}'{did_you_mean(tag, names)}; choose from {expected}"
        return f"{path}.{field}", problem, ""
    message = str(error["msg"]).removeprefix("Value error, ")
    got = "" if isinstance(value, dict | list) else f" (got {value!r})"
    return path, message[:1].lower() + message[1:], got


def _walk(loc: tuple[Any, ...], root: type[BaseModel]) -> tuple[list[str], Any]:
    """Follow a pydantic location through the config's fields, lists and tagged unions.

    Returns the location as people should see it (pydantic's union labels left out:
    inputs.0.number.name -> inputs.0.name) and the annotation the location reaches.
    """
    shown: list[str] = []
    annotation: Any = root
    for part in loc:
        model = _single_model(annotation)
        if model is None:
            if len(_members(annotation)) == 1 or not isinstance(part, str):
                shown.append(str(part))  # a list index; union labels are what is left out
            annotation = _unwrap(annotation, part)
            continue
        shown.append(str(part))
        if part in model.model_fields:
            annotation = model.model_fields[part].annotation
    return shown, annotation


def _tag_choices(loc: tuple[Any, ...], key: str) -> str:
    from megalith.data.features import INPUT_TYPES, OUTPUT_TYPES
    from megalith.models import known_archs

    if key == "arch":
        return "one of " + ", ".join(known_archs())
    return "one of " + ", ".join(OUTPUT_TYPES if loc and loc[0] == "outputs" else INPUT_TYPES)


def _fields_at(loc: tuple[Any, ...], root: type[BaseModel]) -> list[str]:
    """Field names valid at a location, for 'did you mean'."""
    model = _single_model(_walk(loc, root)[1])
    return list(model.model_fields) if model is not None else []


def _unwrap(annotation: Any, part: Any) -> Any:
    """Step into list items (int parts) or a tagged union's member (tag parts)."""
    if get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) is list:
        return get_args(annotation)[0]
    for member in _members(annotation):
        if isinstance(member, type) and issubclass(member, BaseModel):
            tags = [
                f.default for name, f in member.model_fields.items() if name in ("type", "arch")
            ]
            if part in tags:
                return member
    return annotation


def _single_model(annotation: Any) -> type[BaseModel] | None:
    """The config class an annotation stands for, unless it is a union of several."""
    members = [m for m in _members(annotation) if isinstance(m, type) and issubclass(m, BaseModel)]
    if len(members) == 1:
        return members[0]
    return None


def _members(annotation: Any) -> tuple[Any, ...]:
    if get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return get_args(annotation)
    return (annotation,)
