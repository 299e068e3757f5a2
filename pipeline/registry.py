"""The trained generator as a registered MLflow model.

At the end of training the train stage logs the generator into its run as the MLflow model
`generator` and registers it as the next version of `infogan-<dataset>-generator`. The model is
`infogan/model/export.py`'s `CodeTable` (a table of code values in, uint8 images out) traced by the PyTorch
flavour with `torch.export`: loading it needs torch and MLflow, not this repository.

    mlflow.pyfunc.load_model("models:/infogan-mnist-generator/1").predict(codes)
"""

from __future__ import annotations

import mlflow
import mlflow.pytorch
import numpy as np
import torch
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types import Schema, TensorSpec

from infogan.model.codes import fixed_codes
from infogan.model.export import CodeTable, code_columns, code_table
from infogan.model.infogan import InfoGAN


def registered_model_name(dataset: str) -> str:
    return f"infogan-{dataset}-generator"


def log_generator(uri: str, run_id: str, model: InfoGAN, dataset: str, seed: int) -> str:
    """Log `model`'s generator to run `run_id` as an MLflow model of the PyTorch flavour, traced with
    `torch.export` (infogan/model/export.py: a table of codes in, uint8 images out), with its signature and,
    as the input example, ten columns of a traversal from `seed`; register it as a new version of
    `infogan-<dataset>-generator`. Returns the version's `models:/` URI. Loading it needs torch and
    MLflow, not this repository."""
    table = CodeTable.of(model)
    example = code_table(model.codes, *fixed_codes(model.codes, 10, seed)).numpy()
    config = model.config
    signature = ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, example.shape[1]))]),
        outputs=Schema(
            [TensorSpec(np.dtype(np.uint8), (-1, config.image_channels, config.image_size, config.image_size))]
        ),
    )
    # the flavour's log_model reads the global URI and experiment, not a client's: without the run's
    # experiment, the model would land in the Default one, under ./mlruns
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(experiment_id=MlflowClient(uri).get_run(run_id).info.experiment_id)
    name = registered_model_name(dataset)
    info = mlflow.pytorch.log_model(
        table,
        name="generator",
        run_id=run_id,
        serialization_format="pt2",
        signature=signature,
        input_example=example,
        registered_model_name=name,
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"],
        metadata={"columns": code_columns(model.codes), "categorical_sizes": list(model.codes.categorical_sizes)},
    )
    return f"models:/{name}/{info.registered_model_version}"
