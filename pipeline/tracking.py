"""MLflow for the stages: one tracking URI everywhere, one run per training, shared with render.

The URI is `MLFLOW_TRACKING_URI` when set (a real server), else `tracking.uri` from params.yaml,
by default an SQLite file at the project root. Artifacts of new experiments go under
`tracking.artifact_root`. Lightning's MLFlowLogger gets the same URI and the run id made here
(pipeline/training_run.py).

What the UI shows: each run is named for what it trained and when (`run_name`, e.g.
mnist-paper-seed0-20250101-120000), each param once under its params.yaml key, and the pipeline's
experiments are marked as model training (EXPERIMENT_KIND_TAG) rather than GenAI.

Render logs into the training's run when the store has it (`has_run`), else into a run of its own
that leads back to the training's (`open_render_run`): media can be rendered from a model fetched
with `dvc pull` without the store it was trained with. A training's run, from its start to its end,
is pipeline/training_run.py's; at its end the generator is logged as an MLflow model and registered
(pipeline/registry.py).

Faults: a server that cannot be reached when a stage starts stops it at once (`check_reachable`),
before any work.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import platform
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from mlflow.entities import Metric, Param
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from infogan.config import TrackingConfig, flatten
from infogan.errors import InfoGANError

MAX_PARAM_LENGTH = 6000  # MLflow's limit on one param value
LOCAL_STORE = "sqlite:///mlflow.db"  # params.yaml's default `tracking.uri`
REACH_TIMEOUT_S = 5
# an experiment's type as MLflow 3 records it (the UI's type selector writes this tag), and the value for
# model training; MLflow 3.17's UI still opens on the view its sidebar switch (GenAI | Model training) holds
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING = "custom_model_development"


def tracking_uri(tracking: TrackingConfig) -> str:
    """`MLFLOW_TRACKING_URI` when set, else the params' `tracking.uri`."""
    return os.environ.get("MLFLOW_TRACKING_URI") or tracking.uri


def experiment_name(dataset: str) -> str:
    return f"infogan-{dataset}"


def run_name(dataset: str, recipe: str, seed: int, now: datetime | None = None) -> str:
    """A training run's name, e.g. mnist-paper-seed0-20250101-120000 (its start, UTC). MLflow's own
    random name would be drawn from `random` after the seed is set: the same for every run of a seed."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    return f"{dataset}-{recipe}-seed{seed}-{now:%Y%m%d-%H%M%S}"


def client_for(uri: str) -> MlflowClient:
    """A client of the store at `uri`. MLflow opens the store as the client is made, and builds a new
    SQLite store's tables then, so that is done under `store_lock`: two sweeps started together on a
    new store would otherwise both build them, and one fails (`table experiments already exists`)."""
    with store_lock(uri):
        return MlflowClient(tracking_uri=uri)


def check_reachable(uri: str) -> None:
    """Stop now, with what to do, if the tracking store cannot be used: an HTTP server that does not
    answer its health check within a few seconds, or an SQLite file in a folder that cannot be written."""
    parsed = urllib.parse.urlparse(uri)
    advice = (
        f"start the server, point MLFLOW_TRACKING_URI (or tracking.uri in params.yaml) at one that runs, "
        f"or use the local store: unset MLFLOW_TRACKING_URI and set tracking.uri: {LOCAL_STORE}"
    )
    if parsed.scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=REACH_TIMEOUT_S) as response:
                response.read()
        except (urllib.error.URLError, OSError, ValueError) as err:
            reason = getattr(err, "reason", err)
            raise InfoGANError(f"the MLflow tracking server {uri} cannot be reached ({reason}); {advice}") from None
    elif parsed.scheme == "sqlite":
        folder = sqlite_path(uri).parent
        if not (folder.is_dir() and os.access(folder, os.W_OK)):
            raise InfoGANError(f"the MLflow store {uri} cannot be written: {folder} is not a writable folder; {advice}")


def has_run(uri: str, run_id: str) -> bool:
    """Whether the store at `uri` holds run `run_id`. A store that cannot be read stops here, with what
    to do: only a run that does not exist is an answer."""
    try:
        client_for(uri).get_run(run_id)
    except MlflowException as err:
        if err.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise InfoGANError(f"cannot read MLflow run {run_id} from {uri} ({err.error_code}: {err.message})") from None
    return True


def open_render_run(
    tracking: TrackingConfig,
    dataset: str,
    training: Mapping[str, Any],
    trained: Mapping[str, Any],
    manifest_sha256: str,
) -> str:
    """A run of render's own, for a model whose training run this store lacks (trained against
    another store, such as a team's server, and fetched with `dvc pull`): in the dataset's
    experiment, with the training's params (`trained`, its config.json) and tags that lead back to
    it (`training_run_id`, its store) besides the usual provenance. Returns its id."""
    tags = {
        **run_tags(manifest_sha256),
        "training_run_id": training["run_id"],
        "training_tracking_uri": str(training.get("tracking_uri", "unknown")),
        "stage": "render",
    }
    title = f"{dataset}-render-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    return start_run(tracking, dataset, trained, tags, title)


def sqlite_path(uri: str) -> Path:
    """The database file of a sqlite:/// URI (relative, or absolute with four slashes)."""
    return Path(uri[len("sqlite:///") :])


@contextlib.contextmanager
def store_lock(uri: str) -> Iterator[None]:
    """For an SQLite store, hold an exclusive lock on `<db>.lock` while the store or an experiment in
    it may be created: MLflow builds a new database's tables on first use, and two processes doing
    that at once (two seeds of a sweep, or two sweeps, starting together) can break it. Other stores
    need no lock. Not reentrant: a process holding it waits forever to take it again."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    lock_file = sqlite_path(uri).with_name(sqlite_path(uri).name + ".lock")
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def start_run(
    tracking: TrackingConfig, dataset: str, run_params: Mapping[str, Any], tags: dict[str, str], title: str
) -> str:
    """Create the training run named `title` (and the dataset's experiment if needed, marked as model
    training); log params and tags; return its id. The caller has checked the store with
    `check_reachable`, before any slow work."""
    uri = tracking_uri(tracking)
    name = experiment_name(dataset)
    try:
        client = client_for(uri)  # a new SQLite store gets its tables here
        with store_lock(uri):  # and the dataset's experiment, once
            experiment = client.get_experiment_by_name(name)
            if experiment is None:
                root = Path(tracking.artifact_root).resolve() / name
                experiment_id = client.create_experiment(
                    name, artifact_location=root.as_uri(), tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING}
                )
            else:
                experiment_id = experiment.experiment_id
                if EXPERIMENT_KIND_TAG not in experiment.tags:  # made before the tag was set; a kind set by hand stays
                    client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
    except InfoGANError:
        raise
    except Exception as err:  # a broken store: nothing has been trained yet
        raise InfoGANError(
            f"cannot use the MLflow tracking store {uri!r} ({err.__class__.__name__}: {err}); "
            f"unset MLFLOW_TRACKING_URI and set tracking.uri: {LOCAL_STORE} to use the local store"
        ) from None
    run = client.create_run(experiment_id, tags=tags, run_name=title)
    flat = flatten(run_params)
    client.log_batch(
        run.info.run_id,
        params=[
            Param(k, json.dumps(v) if isinstance(v, list) else str(v))
            for k, v in flat.items()
            if len(str(v)) <= MAX_PARAM_LENGTH
        ],
    )
    return run.info.run_id


def resume_run(uri: str, run_id: str) -> None:
    """Mark an interrupted training's run as running again; it must exist in this store."""
    client = client_for(uri)
    try:
        client.get_run(run_id)
    except Exception as err:
        raise InfoGANError(
            f"the checkpoint belongs to MLflow run {run_id}, which {uri} does not have ({err.__class__.__name__}); "
            "point the tracking URI at the store it was made in, or delete the checkpoint to start a new run"
        ) from None
    client.update_run(run_id, status="RUNNING")
    client.set_tag(run_id, "resumed", "true")


def quick_failing_http(environ: dict[str, str] = os.environ) -> None:
    """Let an MLflow HTTP call that fails give up after seconds rather than MLflow's default of
    minutes of retries, so a training whose server went away does not stall at every log call.
    Values the user set are kept."""
    environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "1")
    environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "10")


def log_metrics(client: MlflowClient, run_id: str, metrics: Mapping[str, float], step: int) -> None:
    """Log `metrics` at `step`, timestamped now. MLflow's latest value of a key is the one with the
    highest (step, time): logged at the training's last iteration, an evaluation after training is
    the latest value of a key the training also logged (eval/categorical_accuracy)."""
    now_ms = int(time.time() * 1000)
    client.log_batch(run_id, metrics=[Metric(k, float(v), now_ms, step) for k, v in metrics.items()])


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_tags(manifest_sha256: str) -> dict[str, str]:
    """Provenance of a run: code version, data version (the prepared data's manifest hash), software
    and hardware."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = "unknown"
    return {
        "git_commit": commit,
        "dataset_manifest_sha256": manifest_sha256,
        "torch_version": torch.__version__,
        "cuda_version": str(torch.version.cuda),
        "python_version": platform.python_version(),
    }
