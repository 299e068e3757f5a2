"""Stage `train@<dataset>`: train InfoGAN with Lightning, tracked in one MLflow run.

    python -m pipeline.train --dataset mnist --data data/prepared/mnist --out models/mnist \
        --history reports/mnist/train_history.csv

Reads `model.<dataset>`, `train`, `improved` (used when `train.recipe` is improved) and `tracking`
from params.yaml, all checked before any work. When the prepared labels are digits, the first
categorical code is scored against them after every epoch.
Writes to --out: model.ckpt (Lightning checkpoint), config.json (the resolved configuration) and
run.json (the MLflow run id, which render logs into). Writes the per-epoch history CSV (a DVC plot).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytorch_lightning as pl
from pytorch_lightning.loggers import MLFlowLogger

from infogan.atomic import atomic_path, write_json
from infogan.callbacks import EpochEvaluation, SampleSnapshots
from infogan.config import (
    ImprovedConfig,
    ModelConfig,
    OptimConfig,
    TrainConfig,
    from_mapping,
    split_section,
    to_dict,
)
from infogan.data import DeviceImages, load_split
from infogan.errors import InfoGANError
from infogan.hardware import resolve_compile, resolve_precision
from infogan.module import InfoGAN
from pipeline import tracking
from pipeline.stage import check_dataset, entry_point, load_params, parser, prepared_manifest, section


def load_configs(params: dict, dataset: str) -> tuple[ModelConfig, OptimConfig, TrainConfig, ImprovedConfig | None]:
    """The configs of one training; the last is None unless `train.recipe` is improved."""
    model = from_mapping(ModelConfig, section(params, f"model.{dataset}"), f"model.{dataset}", require_all=True)
    optim, train = split_section(section(params, "train"), (OptimConfig, TrainConfig), "train")
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


@entry_point
def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--out", type=Path, required=True, help="folder for model.ckpt, config.json, run.json")
    p.add_argument("--history", type=Path, required=True, help="per-epoch history CSV")
    args = p.parse_args()

    params = load_params(args.params)
    dataset = check_dataset(args.dataset, params)
    model_cfg, optim_cfg, train_cfg, improved_cfg = load_configs(params, dataset)
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
    run_id = tracking.start_run(params, dataset, resolved, tracking.run_tags(args.data / "manifest.json"))
    uri = tracking.tracking_uri(params)
    client = tracking.client_for(uri)
    print(f"MLflow run {run_id} in experiment {tracking.experiment_name(dataset)} at {uri}")

    def save_snapshot(epoch: int, image) -> None:
        client.log_image(run_id, image, artifact_file=f"samples/epoch_{epoch:04d}.png")

    evaluation = EpochEvaluation(test_images, test_labels, train_cfg.eval_batch_size)
    trainer = pl.Trainer(
        accelerator=train_cfg.accelerator,
        devices=train_cfg.devices,
        precision=precision,
        max_epochs=train_cfg.max_epochs,
        logger=MLFlowLogger(experiment_name=tracking.experiment_name(dataset), tracking_uri=uri, run_id=run_id),
        callbacks=[evaluation, SampleSnapshots(save_snapshot, train_cfg.sample_every_n_epochs, train_cfg.seed)],
        log_every_n_steps=train_cfg.log_every_n_steps,
        enable_checkpointing=False,
        enable_model_summary=False,
    )
    client.set_tag(run_id, "device", str(trainer.strategy.root_device))
    data = DeviceImages(train_images, train_cfg.batch_size, train_cfg.batches_per_epoch, train_cfg.seed)
    try:
        trainer.fit(module, datamodule=data)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise

    args.out.mkdir(parents=True, exist_ok=True)
    with atomic_path(args.out / "model.ckpt") as tmp:
        trainer.save_checkpoint(tmp)
    write_json(resolved, args.out / "config.json")
    write_json(
        {"run_id": run_id, "experiment": tracking.experiment_name(dataset), "tracking_uri": uri},
        args.out / "run.json",
    )
    with atomic_path(args.history) as tmp:
        pd.DataFrame(evaluation.history).to_csv(tmp, index=False)
    for path in (args.out / "model.ckpt", args.out / "config.json", args.history):
        client.log_artifact(run_id, str(path), "model" if path.parent == args.out else None)
    client.set_terminated(run_id, "FINISHED")
    last = evaluation.history[-1] if evaluation.history else {}
    print(f"trained {dataset}: " + ", ".join(f"{k} {v:.4g}" for k, v in last.items()))


if __name__ == "__main__":
    main()
