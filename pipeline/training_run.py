"""A training's MLflow run, on global rank 0: opened (or reopened, on resume) before the fit, given to
Lightning as its logger, closed FINISHED or FAILED after it.

Faults: a server that goes away during training does not stop the training: `TolerantMLFlowLogger`
records the failed calls, and the run reports them when it closes.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from pytorch_lightning.loggers import MLFlowLogger

from infogan.config import TrackingConfig
from pipeline import registry
from pipeline.tracking import (
    client_for,
    experiment_name,
    quick_failing_http,
    resume_run,
    run_name,
    run_tags,
    start_run,
    tracking_uri,
)


class TolerantMLFlowLogger(MLFlowLogger):
    """Lightning's MLFlowLogger, except that a failed call (the server went away mid-run) is
    recorded in `failures` instead of stopping the training, and it logs no hyperparameters."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.failures: list[str] = []

    def record(self, what: str, err: Exception) -> None:
        self.failures.append(f"{what}: {err.__class__.__name__}: {str(err).splitlines()[0] if str(err) else ''}")

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        try:
            super().log_metrics(metrics, step)
        except Exception as err:
            self.record(f"metrics at step {step}", err)

    def log_hyperparams(self, params: Any) -> None:
        pass  # start_run already logged every param under its params.yaml key (train.lr_g, not train/lr_g)

    def finalize(self, status: str = "success") -> None:
        try:
            super().finalize(status)
        except Exception as err:
            self.record(f"run status {status}", err)


class TrainingRun:
    """One training's open MLflow run, on global rank 0. Every call is tolerant: a server that went
    away mid-run is recorded in `failures` (the logger's), reported when the run closes, and the
    training goes on."""

    def __init__(self, uri: str, run_id: str, logger: TolerantMLFlowLogger):
        self.uri, self.run_id, self.logger = uri, run_id, logger
        self.client = client_for(uri)

    def _try(self, what: str, call: Any, *args: Any, **kwargs: Any) -> None:
        try:
            call(*args, **kwargs)
        except Exception as err:
            self.logger.record(what, err)

    def log_image(self, image: Any, artifact_file: str) -> None:
        self._try(f"image {artifact_file}", self.client.log_image, self.run_id, image, artifact_file=artifact_file)

    def log_artifact(self, path: Path, folder: str | None = None) -> None:
        self._try(f"artifact {path}", self.client.log_artifact, self.run_id, str(path), folder)

    def log_generator(self, model: Any, dataset: str, seed: int) -> str | None:
        """Log the trained generator as an MLflow model of the run and register it as
        `infogan-<dataset>-generator` (pipeline/registry.py); its `models:/` URI, or None if that failed."""
        try:
            return registry.log_generator(self.uri, self.run_id, model, dataset, seed)
        except Exception as err:
            self.logger.record("the generator model", err)
            return None


@contextlib.contextmanager
def training_run(
    trainer: Any,
    tracking: TrackingConfig,
    dataset: str,
    resolved: Mapping[str, Any],
    manifest_sha256: str,
    resume: Mapping[str, Any] | None,
    checkpoint: Path,
) -> Iterator[TrainingRun | None]:
    """The life of a training's MLflow run, around its fit.

    On global rank 0: open a new run (named for the dataset, recipe and seed, with every resolved
    param and the provenance tags) or, with `resume` (the record of the `checkpoint` the fit resumes
    from), reopen the run it belongs to; give the trainer its MLflow logger; mark the run FAILED if
    the body raises and FINISHED when it ends, and say then if any MLflow call failed on the way.
    Other ranks get None and log nothing.
    """
    if not trainer.is_global_zero:
        yield None
        return
    uri = tracking_uri(tracking)
    if resume is not None:
        run_id = resume["run_id"]
        resume_run(uri, run_id)
        print(f"resuming MLflow run {run_id} from {checkpoint} at iteration {resume['iteration']}", flush=True)
    else:
        train = resolved["train"]
        title = run_name(dataset, train["recipe"], train["seed"])  # from the clock, not the seeded RNG
        run_id = start_run(tracking, dataset, resolved, run_tags(manifest_sha256), title)
    print(f"MLflow run {run_id} in experiment {experiment_name(dataset)} at {uri}", flush=True)
    quick_failing_http()  # from here on a lost server costs seconds per call, not minutes
    logger = TolerantMLFlowLogger(experiment_name=experiment_name(dataset), tracking_uri=uri, run_id=run_id)
    logger.experiment  # noqa: B018 - opens the run now, while the server is known to answer, not mid-run
    trainer.logger = logger
    run = TrainingRun(uri, run_id, logger)
    try:
        run.client.set_tag(run_id, "device", str(trainer.strategy.root_device))
        run.client.set_tag(run_id, "world_size", str(trainer.world_size))  # processes training together
        yield run
    except BaseException:
        with contextlib.suppress(Exception):  # the failure being raised is the one to report
            run.client.set_terminated(run_id, "FAILED")
        raise
    run._try("run status FINISHED", run.client.set_terminated, run_id, "FINISHED")
    if logger.failures:
        print(
            f"warning: training finished and its outputs are written, but {len(logger.failures)} MLflow "
            f"call(s) to {uri} failed, so the run there is incomplete. First: {logger.failures[0]}. "
            f"Last: {logger.failures[-1]}.",
            file=sys.stderr,
            flush=True,
        )
