"""Feature types: each module holds a type's config and its encoder (fit, transform, JSON)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from megalith.data.features.audio import AudioInput
from megalith.data.features.binary import BinaryInput, BinaryOutput
from megalith.data.features.category import CategoryInput, CategoryOutput
from megalith.data.features.image import ImageInput
from megalith.data.features.names import SetInput
from megalith.data.features.number import NumberInput, NumberOutput
from megalith.data.features.sequence import SequenceInput
from megalith.data.features.text import TextInput, TextOutput

InputFeature = Annotated[
    NumberInput
    | BinaryInput
    | CategoryInput
    | ImageInput
    | TextInput
    | SequenceInput
    | AudioInput
    | SetInput,
    Field(discriminator="type"),
]
OutputFeature = Annotated[
    NumberOutput | BinaryOutput | CategoryOutput | TextOutput, Field(discriminator="type")
]

INPUT_TYPES = ("number", "binary", "category", "image", "text", "sequence", "audio", "set")
OUTPUT_TYPES = ("number", "binary", "category", "text")

__all__ = [
    "INPUT_TYPES",
    "OUTPUT_TYPES",
    "AudioInput",
    "BinaryInput",
    "BinaryOutput",
    "CategoryInput",
    "CategoryOutput",
    "ImageInput",
    "InputFeature",
    "NumberInput",
    "NumberOutput",
    "OutputFeature",
    "SequenceInput",
    "SetInput",
    "TextInput",
    "TextOutput",
]
