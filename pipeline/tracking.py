"""MLflow for the stages: one tracking URI everywhere, one run per training, shared with render.

The URI is `MLFLOW_TRACKING_URI` when set (a real server), else `tracking.uri` from params.yaml,
by default an SQLite file at the project root. Artifacts of new experiments go under
`tracking.artifact_root`. Lightning's MLFlowLogger gets the same URI and the run id made here.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any, Mapping

import torch
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient

from infogan.errors import InfoGANError
from pipeline.stage import flatten, section

MAX_PARAM_LENGTH = 6000  # MLflow's limit on one param value


def tracking_uri(params: Mapping[str, Any]) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or section(params, "tracking.uri")


def experiment_name(dataset: str) -> str:
    return f"infogan-{dataset}"


def client_for(uri: str) -> MlflowClient:
    return MlflowClient(tracking_uri=uri)


def start_run(params: Mapping[str, Any], dataset: str, run_params: Mapping[str, Any], tags: dict[str, str]) -> str:
    """Create the training run (and the dataset's experiment if needed); log params and tags; return its id."""
    uri = tracking_uri(params)
    client = client_for(uri)
    name = experiment_name(dataset)
    try:
        experiment = client.get_experiment_by_name(name)
    except Exception as err:  # an unreachable server or a broken store: nothing has been trained yet
        raise InfoGANError(
            f"cannot reach the MLflow tracking store {uri!r} ({err.__class__.__name__}: {err}); "
            "unset MLFLOW_TRACKING_URI to use the local SQLite store"
        ) from None
    if experiment is None:
        root = Path(section(params, "tracking.artifact_root")).resolve() / name
        experiment_id = client.create_experiment(name, artifact_location=root.as_uri())
    else:
        experiment_id = experiment.experiment_id
    run = client.create_run(experiment_id, tags=tags)
    flat = flatten(run_params)
    client.log_batch(
        run.info.run_id,
        params=[Param(k, json.dumps(v) if isinstance(v, list) else str(v))
                for k, v in flat.items() if len(str(v)) <= MAX_PARAM_LENGTH],
    )
    return run.info.run_id


def log_metrics(client: MlflowClient, run_id: str, metrics: Mapping[str, float], step: int = 0) -> None:
    client.log_batch(run_id, metrics=[Metric(k, float(v), 0, step) for k, v in metrics.items()])


def run_tags(manifest: Path) -> dict[str, str]:
    """Provenance of a run: code version, data version, software and hardware."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "git_commit": commit,
        "dataset_manifest_sha256": hashlib.sha256(manifest.read_bytes()).hexdigest(),
        "torch_version": torch.__version__,
        "cuda_version": str(torch.version.cuda),
        "python_version": platform.python_version(),
    }
