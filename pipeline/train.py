"""Stage `train@<dataset>`: train InfoGAN with Lightning, tracked in one MLflow run.

    python -m pipeline.train --dataset mnist --data data/prepared/mnist --out models/mnist \
        --history reports/mnist/train_history.csv

Reads `model.<dataset>`, `train`, `improved` (used when `train.recipe` is improved) and `tracking`
from params.yaml, all checked before any work, and checks that the tracking store can be reached.
When the prepared labels are digits, the first categorical code is scored against them after
every epoch.
Writes to --out: model.ckpt (Lightning checkpoint), config.json (the resolved configuration) and
run.json (the MLflow run id, which render logs into). Writes the per-epoch history CSV (a DVC plot).

Resuming: every `train.checkpoint_every_n_steps` iterations the whole training state goes to
<checkpoints>/last.ckpt (infogan/checkpoint.py), a folder that is no stage output, so DVC leaves it alone. A
run started with that file present and the same configuration resumes from it, in the same MLflow
run, and ends with the same weights as an uninterrupted run. With a different configuration it
starts a new run and says so, keeping the old file as previous.ckpt. A finished run deletes
last.ckpt: there is nothing left to resume.

Several devices or nodes (`train.devices`, `train.num_nodes`, `train.strategy`) train with
Lightning's DDP. Lightning runs this same command once more for each further process on a node (or
a cluster's launcher, such as srun, starts them all), so everything before `fit` runs in every
process. Only global rank 0 opens the MLflow run, logs, writes the outputs and the checkpoints;
the others train their shards of the data and exit.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any

import pandas as pd
import pytorch_lightning as pl
from pytorch_lightning.plugins.environments import SLURMEnvironment
from pytorch_lightning.strategies import DDPStrategy, StrategyRegistry
from pytorch_lightning.utilities.warnings import PossibleUserWarning

from infogan.atomic import atomic_path, write_json
from infogan.callbacks import EpochEvaluation, PeakMemory, SampleSnapshots
from infogan.checkpoint import ResumableCheckpoint, read_checkpoint, save_atomically
from infogan.config import (
    ImprovedConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    from_mapping,
    resolve_recipe_length,
    split_section,
    to_dict,
)
from infogan.data import DeviceImages, load_split
from infogan.errors import InfoGANError
from infogan.hardware import resolve_compile, resolve_precision
from infogan.module import InfoGAN
from pipeline import tracking
from pipeline.stage import check_dataset, entry_point, flatten, load_params, parser, prepared_manifest, section

# train keys that change what is reported, not what is trained: a checkpoint made with other values resumes
REPORTING_KEYS = ("log_every_n_steps", "sample_every_n_epochs", "eval_batch_size", "checkpoint_every_n_steps")


def load_configs(params: dict, dataset: str) -> tuple[ModelConfig, OptimConfig, TrainConfig, ImprovedConfig | None]:
    """The configs of one training; the last is None unless `train.recipe` is improved."""
    model = from_mapping(ModelConfig, section(params, f"model.{dataset}"), f"model.{dataset}", require_all=True)
    train_section = resolve_recipe_length(section(params, "train"))
    optim, train = split_section(train_section, (OptimConfig, TrainConfig), "train")
    improved = None
    if optim.recipe == "improved":
        improved = from_mapping(ImprovedConfig, section(params, "improved"), "improved", require_all=True)
    return model, optim, train, improved


def check_data_matches(images, model: ModelConfig, dataset: str) -> None:
    expected = (model.image_channels, model.image_size, model.image_size)
    if tuple(images.shape[1:]) != expected:
        raise InfoGANError(
            f"prepared {dataset} images are {tuple(images.shape[1:])} but model.{dataset} expects "
            f"{expected} (image_channels, image_size); fix params.yaml or rerun prepare"
        )


def training_identity(resolved: dict[str, Any], manifest_sha256: str, uri: str) -> dict[str, Any]:
    """What a checkpoint must share with this run to be resumed: the configuration that shapes the
    weights (reporting keys aside), the prepared data (its manifest's hash) and the tracking store."""
    train = {k: v for k, v in resolved["train"].items() if k not in REPORTING_KEYS}
    return {**resolved, "train": train, "data_manifest_sha256": manifest_sha256, "tracking_uri": uri}


def fingerprint(identity: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


def use_ddp_with_unused_parameters() -> None:
    """Make Lightning's `ddp`, which `strategy: auto` also picks for several devices or nodes, DDP
    with `find_unused_parameters=True`; `ddp_find_unused_parameters_true` already is.

    The module needs it. Each iteration has two backward passes: the discriminator's, which never
    reaches G's weights (the fakes are detached), and the generator's, with D's weights frozen. So
    each leaves part of the model without a gradient, and plain DDP stops at the first generator
    step ("It looks like your LightningModule has parameters that were not used in producing the
    loss"). A user who asks for DDP, or for several devices with the default `auto`, gets DDP
    that trains instead of a choice between an error and a strategy name to look up.
    """
    StrategyRegistry.register(
        "ddp",
        DDPStrategy,
        description="DDP with find_unused_parameters=True (the GAN's two backward passes each use part of it)",
        override=True,
        start_method="popen",
        find_unused_parameters=True,
    )


def resumable_checkpoint(path: Path, identity: dict[str, Any], rank_zero: bool = True) -> dict[str, Any] | None:
    """The metadata of the checkpoint at `path` if this run should resume from it, else None.

    A checkpoint made with a different identity is moved to previous.ckpt (never reused silently,
    never lost), and the differences are printed: by global rank 0 only (`rank_zero`); the other
    ranks reach the same answer without touching the file. An unreadable one stops the stage.
    """
    if not path.is_file():
        return None
    meta = read_checkpoint(path, advice="cannot resume from it: move or delete it to train from the start").get(
        "infogan"
    )
    if not isinstance(meta, dict) or not {"fingerprint", "run_id", "iteration", "identity"} <= meta.keys():
        raise InfoGANError(
            f"{path} has no resume record (it was not written by the train stage's periodic "
            "save); cannot resume from it: move or delete it to train from the start"
        )
    if meta["fingerprint"] == fingerprint(identity):
        return meta
    if not rank_zero:
        return None
    old, new = flatten(meta["identity"]), flatten(identity)
    changed = [
        f"{k}: {old.get(k, '(none)')} -> {new.get(k, '(none)')}"
        for k in sorted(set(old) | set(new))
        if old.get(k) != new.get(k)
    ]
    previous = path.with_name("previous.ckpt")
    os.replace(path, previous)
    print(
        f"not resuming: {path} (MLflow run {meta['run_id']}, iteration {meta['iteration']}) was made with a "
        f"different configuration ({'; '.join(changed[:8])}{'; ...' if len(changed) > 8 else ''}). "
        f"Starting a new run; that checkpoint is kept as {previous}.",
        flush=True,
    )
    return None


@entry_point
def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--out", type=Path, required=True, help="folder for model.ckpt, config.json, run.json")
    p.add_argument("--history", type=Path, required=True, help="per-epoch history CSV")
    p.add_argument("--checkpoints", type=Path, required=True, help="folder for the checkpoint a run resumes from")
    args = p.parse_args()

    params = load_params(args.params)
    dataset = check_dataset(args.dataset, params)
    model_cfg, optim_cfg, train_cfg, improved_cfg = load_configs(params, dataset)
    uri = tracking.tracking_uri(params)
    tracking.check_reachable(uri)  # before the data is even read
    train_images, _ = load_split(args.data / "train.pt")
    test_images, test_labels = load_split(args.data / "test.pt")
    check_data_matches(train_images, model_cfg, dataset)
    if prepared_manifest(args.data)["labels"] != "digits":  # nothing to score the categorical code against
        test_images = test_labels = None

    pl.seed_everything(train_cfg.seed, workers=True)
    precision = resolve_precision(train_cfg.precision, train_cfg.accelerator)
    compile_networks = resolve_compile(train_cfg.compile, train_cfg.accelerator)
    module = InfoGAN(model_cfg, optim_cfg, improved_cfg, compile_networks=compile_networks)
    # keyed as in params.yaml (model.<dataset> becomes model), so MLflow params read like -S overrides;
    # `precision` and `compile` are what ran, not "auto"
    resolved = {
        "dataset": dataset,
        "model": to_dict(model_cfg),
        "train": {**to_dict(optim_cfg), **to_dict(train_cfg), "precision": precision, "compile": compile_networks},
    }
    if improved_cfg is not None:
        resolved["improved"] = to_dict(improved_cfg)
    manifest_sha256 = tracking.file_sha256(args.data / "manifest.json")
    identity = training_identity(resolved, manifest_sha256, uri)
    checkpoint_path = args.checkpoints / "last.ckpt"

    def save_snapshot(epoch: int, image) -> None:  # on rank 0 only (SampleSnapshots), once the run below is open
        try:
            client.log_image(run_id, image, artifact_file=f"samples/epoch_{epoch:04d}.png")
        except Exception as err:  # the server went away: keep training, report at the end
            logger.record(f"sample image of epoch {epoch}", err)

    evaluation = EpochEvaluation(test_images, test_labels, train_cfg.eval_batch_size)
    checkpointing = ResumableCheckpoint(
        checkpoint_path,
        train_cfg.checkpoint_every_n_steps,
        {"fingerprint": fingerprint(identity), "identity": identity},
    )
    use_ddp_with_unused_parameters()
    # the evaluation runs on rank 0 alone by design (EpochEvaluation): Lightning's advice to sync it across ranks
    warnings.filterwarnings("ignore", r"It is recommended to use `self.log\('eval/", PossibleUserWarning)
    trainer = pl.Trainer(
        accelerator=train_cfg.accelerator,
        devices=train_cfg.devices,
        num_nodes=train_cfg.num_nodes,
        strategy=train_cfg.strategy,
        precision=precision,
        max_epochs=train_cfg.max_epochs,
        logger=False,  # rank 0 gets the MLflow logger below
        callbacks=[
            evaluation,
            SampleSnapshots(save_snapshot, train_cfg.sample_every_n_epochs, train_cfg.seed),
            PeakMemory(),
            checkpointing,
        ],
        log_every_n_steps=train_cfg.log_every_n_steps,
        enable_checkpointing=True,  # with our ResumableCheckpoint, Lightning adds no ModelCheckpoint of its own
        enable_model_summary=False,
        # under SLURM, without Lightning's requeue on a signal: that would close the MLflow run and save
        # hpc_ckpt_<n>.ckpt into the working directory; a requeued job resumes from --checkpoints instead
        plugins=[SLURMEnvironment(auto_requeue=False)] if SLURMEnvironment.detect() else None,
    )
    # Lightning knows each process's global rank once the Trainer exists, from its launcher or the cluster
    rank_zero = trainer.is_global_zero
    resume = resumable_checkpoint(checkpoint_path, identity, rank_zero)
    if rank_zero:
        if resume is not None:
            run_id = resume["run_id"]
            tracking.resume_run(uri, run_id)
            print(f"resuming MLflow run {run_id} from {checkpoint_path} at iteration {resume['iteration']}", flush=True)
        else:
            title = tracking.run_name(dataset, optim_cfg.recipe, train_cfg.seed)  # the clock, not the seeded RNG
            run_id = tracking.start_run(params, dataset, resolved, tracking.run_tags(manifest_sha256), title)
        client = tracking.client_for(uri)
        print(f"MLflow run {run_id} in experiment {tracking.experiment_name(dataset)} at {uri}", flush=True)
        tracking.quick_failing_http()  # from here on a lost server costs seconds per call, not minutes
        logger = tracking.TolerantMLFlowLogger(
            experiment_name=tracking.experiment_name(dataset), tracking_uri=uri, run_id=run_id
        )
        logger.experiment  # noqa: B018 - opens the run now, while the server is known to answer, not mid-run
        trainer.logger = logger
        checkpointing.metadata["run_id"] = run_id  # what a resumed run continues
    neighbours = improved_cfg.neighbours if improved_cfg is not None and module.improved is not None else 0
    data = DeviceImages(train_images, train_cfg.batch_size, train_cfg.batches_per_epoch, train_cfg.seed, neighbours)
    try:
        if rank_zero:
            client.set_tag(run_id, "device", str(trainer.strategy.root_device))
            client.set_tag(run_id, "world_size", str(trainer.world_size))  # processes training together
        trainer.fit(module, datamodule=data, ckpt_path=checkpoint_path if resume is not None else None)
    except BaseException:
        if rank_zero:
            with contextlib.suppress(Exception):  # the failure being raised is the one to report
                client.set_terminated(run_id, "FAILED")
        raise
    # what render needs (resuming uses last.ckpt); every rank takes part in the save, rank 0 writes
    save_atomically(trainer, args.out / "model.ckpt", weights_only=True)
    if not rank_zero:
        return

    write_outputs(args, resolved, run_id, uri, dataset, evaluation.history)
    for path in (args.out / "model.ckpt", args.out / "config.json", args.history):
        try:
            client.log_artifact(run_id, str(path), "model" if path.parent == args.out else None)
        except Exception as err:
            logger.record(f"artifact {path}", err)
    checkpoint_path.unlink(missing_ok=True)  # finished: nothing to resume
    if module.skipped_steps:
        print(
            f"skipped {module.skipped_steps} optimizer steps whose loss was NaN or infinite (train.on_nonfinite: skip)",
            flush=True,
        )
    try:
        client.set_terminated(run_id, "FINISHED")
    except Exception as err:
        logger.record("run status FINISHED", err)
    last = evaluation.history[-1] if evaluation.history else {}
    print(f"trained {dataset}: " + ", ".join(f"{k} {v:.4g}" for k, v in last.items()))
    if logger.failures:
        print(
            f"warning: training finished and its outputs are written, but {len(logger.failures)} MLflow "
            f"call(s) to {uri} failed, so the run there is incomplete. First: {logger.failures[0]}. "
            f"Last: {logger.failures[-1]}.",
            file=sys.stderr,
            flush=True,
        )


def write_outputs(args, resolved: dict, run_id: str, uri: str, dataset: str, history: list) -> None:
    """Write the stage's outputs besides model.ckpt, each atomically."""
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(resolved, args.out / "config.json")
    write_json(
        {"run_id": run_id, "experiment": tracking.experiment_name(dataset), "tracking_uri": uri}, args.out / "run.json"
    )
    with atomic_path(args.history) as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)


if __name__ == "__main__":
    main()
