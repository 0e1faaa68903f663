"""The registered pyfunc as MLflow model code: a model folder of this pipeline behind predict()."""

from __future__ import annotations

from typing import Any

import pandas as pd
from mlflow.models import set_model
from mlflow.pyfunc import PythonModel

from sentiment_pipeline.errors import PipelineError
from sentiment_pipeline.models.artifacts.loader import load_model
from sentiment_pipeline.models.artifacts.manifest import ModelManifest, SentimentModel
from sentiment_pipeline.registry.cache import MODEL_DIR


def input_columns(manifest: ModelManifest) -> list[str]:
    """The columns of the pyfunc's input: the text, and the aspect for a pair model."""
    return ["text", "aspect"] if manifest.input == "pair" else ["text"]


class SentimentPyfunc(PythonModel):
    """An MLflow pyfunc around any model directory of this pipeline (every kind).

    Registered from this file's source (MLflow's models-from-code), so the registry holds no
    pickle: `mlflow.pyfunc.load_model` runs this file and the folder loads with load_model.
    """

    def load_context(self, context: Any) -> None:
        self.model: SentimentModel = load_model(context.artifacts[MODEL_DIR], trust=True)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        columns = input_columns(self.model.manifest)
        missing = [c for c in columns if c not in model_input.columns]
        if missing:
            wanted = " and ".join(f"a column {c!r}" for c in missing)
            raise PipelineError(
                f"expected {wanted} in the model input, found {list(model_input.columns)} "
                f"(a {self.model.manifest.input} model takes the columns {columns})"
            )
        values = [model_input[c].fillna("").astype(str).tolist() for c in columns]
        inputs = values[0] if len(values) == 1 else list(zip(*values, strict=True))
        proba = self.model.predict_proba(inputs)
        out = pd.DataFrame({"label": [self.model.labels[i] for i in proba.argmax(axis=1)]})
        for i, label in enumerate(self.model.labels):
            out[f"p_{label}"] = proba[:, i]
        return out


# MLflow executes this file as a module of its own name to find the model; imported from the
# package (register_model does, for the file's path) it only defines the class.
if not __name__.startswith("sentiment_pipeline."):
    set_model(SentimentPyfunc())
