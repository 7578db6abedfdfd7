"""explain.html: a row past the first IMAGES_DRAWN, whose map is not drawn, says where its map
is rather than show nothing."""

from __future__ import annotations

import numpy as np

from megalith.explain import Explanations, ImageMap
from megalith.explain.output import IMAGES_DRAWN
from megalith.explain.page import explain_page, image_name


def test_rows_past_the_drawn_ones_name_their_key_in_image_maps() -> None:
    rows, images = [], []
    for row in range(IMAGES_DRAWN + 2):
        rows.append({"row": row, "explained": {"output": "label", "class": "cat", "value": 0.5},
                     "attributions": {"photo": 0.1}})  # fmt: skip
        pixels, values = np.zeros((3, 4, 4), np.uint8), np.zeros((4, 4), np.float32)
        images.append(ImageMap(row, "photo", pixels, values))
    summary = {"run": "r", "output": "label", "method_name": "ig", "rows": len(rows),
               "data": "d", "target": "t", "units": "u", "baselines": "b", "trust": {},
               "global_importance": {"photo": 0.1}}  # fmt: skip
    pngs = {image_name(image): b"\x89PNG" for image in images[:IMAGES_DRAWN]}
    page = explain_page(Explanations(rows, summary, images), pngs)
    assert page.count("<img ") == IMAGES_DRAWN
    assert page.count("class='undrawn'") == 2
    assert f"key '{IMAGES_DRAWN + 1}-photo'" in page
