"""What train-time augmentation an image input gets: its settings and named presets.

The augmentation itself runs in the training loop on whole batches (megalith.training.augment);
evaluation, predict, export and serve never see it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from megalith.configbase import ConfigModel


class ImageAugment(ConfigModel):
    """Random transformations of each training batch, drawn anew at every step."""

    crop: float | None = Field(None, gt=0, le=1)
    """Random resized crop: keep at least this share of the image's area (aspect ratio 3/4 to
    4/3), resized back to the input size; None: no crop."""
    flip: Literal["none", "horizontal", "vertical", "both"] = "none"
    """Mirror half the images left-right (horizontal), top-bottom (vertical) or either (both).
    Leave it off for characters and digits, whose mirror image is another symbol."""
    rotate: float = Field(0.0, ge=0, le=180)
    """Rotate each image by an angle drawn uniformly from [-rotate, rotate] degrees."""
    shift: float = Field(0.0, ge=0, lt=1)
    """Translate each image by up to this share of its height / width."""
    color: float = Field(0.0, ge=0, le=1)
    """Jitter brightness and contrast (and saturation for RGB) by up to this factor."""
    mixup: float = Field(0.0, ge=0)
    """Mixup (Zhang et al. 2018): blend each batch with a shuffled copy of itself, weight
    lambda ~ Beta(mixup, mixup), and the loss against both rows' targets likewise; 0: off."""

    @property
    def enabled(self) -> bool:
        """True when any transformation is switched on."""
        return bool(
            self.crop is not None
            or self.flip != "none"
            or self.rotate
            or self.shift
            or self.color
            or self.mixup
        )


AugmentPreset = Literal["none", "shapes", "photos"]

AUGMENT_PRESETS: dict[str, ImageAugment] = {
    "none": ImageAugment(),
    # characters, digits, scans: small geometric changes, no mirroring
    "shapes": ImageAugment(rotate=10, shift=0.1, crop=0.85, color=0.2),
    # faces, objects, scenes: mirroring keeps the class
    "photos": ImageAugment(crop=0.8, flip="horizontal", rotate=10, color=0.2, mixup=0.2),
}
"""Named settings for `augment: <preset>`."""


def resolve_augment(value: ImageAugment | AugmentPreset | None) -> ImageAugment:
    """The settings an `augment:` value stands for (a preset name, settings, or None: off)."""
    if value is None:
        return AUGMENT_PRESETS["none"]
    if isinstance(value, str):
        return AUGMENT_PRESETS[value]
    return value
