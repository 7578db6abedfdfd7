"""The reference for benchmarks/serve_load.py: the FastAPI app a user writes by hand around a
Megalith run — one forward pass per request, no batching, images sent as base64 PNG.

    MEGALITH_RUN=runs/digits uvicorn benchmarks.serve_reference:app --port 8001
"""

from __future__ import annotations

import base64
import io
import os
from typing import Any

import numpy as np
import pandas as pd
from fastapi import FastAPI
from PIL import Image

import megalith as mg

run = mg.load(os.environ["MEGALITH_RUN"])
images = [f.name for f in run.config.inputs if f.type == "image"]
app = FastAPI()


@app.post("/predict")
def predict(body: dict[str, Any]) -> dict[str, Any]:
    frame = pd.DataFrame(body["rows"])
    for column in images:
        frame[column] = [
            np.asarray(Image.open(io.BytesIO(base64.b64decode(value)))) for value in frame[column]
        ]
    predictions = run.predict(frame)
    return {"predictions": predictions.astype(object).to_dict(orient="records")}
