"""The train stage under Lightning's DDP: two CPU processes (gloo), run as a real subprocess.

A small driver runs the stage's own `main` with one extra Lightning callback that records, in each
process, the images of every batch it trained on, the state of the generator the latents are drawn
from, the iterations it saved checkpoints at and its final weights, and keeps the last resumable
checkpoint. Lightning starts the driver again for rank 1, so both are recorded. The tests then
check what the ranks did, what reached MLflow and the stage's outputs, and that a DDP training
resumed from that checkpoint ends as the uninterrupted one did.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import pytorch_lightning as pl
import torch
from mlflow.tracking import MlflowClient
from pytorch_lightning.strategies import DDPStrategy

from infogan.data.batches import ShardedShuffle
from infogan.data.images import load_split
from infogan.model.load import read_checkpoint
from infogan.training.trainer import use_ddp_with_unused_parameters
from pipeline.stage import train_command
from tests.pipeline.project_copy import attempt

pytestmark = pytest.mark.slow  # trains, or runs dvc repro: `pytest -m "not slow"` skips it

ROOT = Path(__file__).resolve().parents[2]
EPOCHS, BATCHES, BATCH_SIZE = 6, 10, 16  # tiny_params: a checkpoint every 7 iterations, a sample every 3 epochs
SAVED_AT = list(range(7, EPOCHS * BATCHES + 1, 7))

DRIVER = """
import hashlib, json, os, shutil, sys, types
from pathlib import Path

sys.path.insert(0, {root!r})
import pytorch_lightning as pl
import torch

import infogan.training.trainer
from pipeline import train

RECORD = Path({record!r})


def weights_sha(state_dict):
    data = b"".join(state_dict[k].detach().cpu().numpy().tobytes() for k in sorted(state_dict))
    return hashlib.sha256(data).hexdigest()


class RecordTraining(pl.Callback):
    def __init__(self):
        self.batches, self.latent_rng = [], []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batches.append([hashlib.sha256(image.cpu().numpy().tobytes()).hexdigest() for image in batch])
        # the latents of this iteration are drawn from torch's default generator, in this state
        self.latent_rng.append(hashlib.sha256(torch.get_rng_state().numpy().tobytes()).hexdigest())

    def on_train_end(self, trainer, pl_module):
        self.rank = trainer.global_rank
        if trainer.is_global_zero:  # the stage deletes it once fit returns
            shutil.copy(trainer.checkpoint_callback.path, RECORD / "last.ckpt")
        record = dict(
            rank=trainer.global_rank, world_size=trainer.world_size, pid=os.getpid(), batches=self.batches,
            latent_rng=self.latent_rng, weights=weights_sha(pl_module.state_dict()),
            parameters=weights_sha(dict(pl_module.named_parameters())),
            saved_at=trainer.checkpoint_callback.saved_at,
        )
        (RECORD / f"rank{{self.rank}}.json").write_text(json.dumps(record))


recorder = RecordTraining()


class RecordingTrainer(pl.Trainer):
    def __init__(self, *args, callbacks=(), **kwargs):
        super().__init__(*args, callbacks=[*callbacks, recorder], **kwargs)


# the Trainer the stage builds, only
infogan.training.trainer.pl = types.SimpleNamespace(**{{**vars(pl), "Trainer": RecordingTrainer}})
train.main()
(RECORD / f"rank{{recorder.rank}}.exited").write_text("main returned")
"""


def image_hashes(images: torch.Tensor) -> list[str]:
    return [hashlib.sha256(image.numpy().tobytes()).hexdigest() for image in images]


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory, prepared_mnist, tiny_params, train_args, stage_env):
    tmp = tmp_path_factory.mktemp("ddp")
    params = tiny_params(tmp, accelerator="cpu", devices=2, strategy="ddp", num_nodes=1)
    record = tmp / "record"
    record.mkdir()
    driver = tmp / "train_recorded.py"
    driver.write_text(DRIVER.format(root=str(ROOT), record=str(record)))
    start = time.monotonic()
    command = [sys.executable, str(driver), *train_args(tmp, params, prepared_mnist)]
    result = attempt(command, ROOT, stage_env, timeout=600)  # one torch thread per process
    print(f"\nDDP training of {EPOCHS * BATCHES} iterations on 2 CPU processes: {time.monotonic() - start:.1f} s")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    ranks = {}
    for rank in (0, 1):
        assert (record / f"rank{rank}.json").is_file(), f"rank {rank} did not finish training\n{result.stderr[-4000:]}"
        ranks[rank] = json.loads((record / f"rank{rank}.json").read_text())
    return {"tmp": tmp, "result": result, "ranks": ranks, "record": record}


def test_both_ranks_train_their_own_disjoint_shards(ddp_run, prepared_mnist):
    ranks = ddp_run["ranks"]
    assert [ranks[r]["rank"] for r in (0, 1)] == [0, 1]
    assert ranks[0]["world_size"] == ranks[1]["world_size"] == 2
    assert ranks[0]["pid"] != ranks[1]["pid"]
    for rank in (0, 1):
        assert len(ranks[rank]["batches"]) == EPOCHS * BATCHES
        assert all(len(batch) == BATCH_SIZE for batch in ranks[rank]["batches"])
        assert ranks[rank]["saved_at"] == SAVED_AT  # every rank takes part in each save; rank 0 writes

    images, _ = load_split(prepared_mnist / "train.pt")
    for epoch in range(EPOCHS):
        seen = [
            [h for batch in ranks[r]["batches"][epoch * BATCHES : (epoch + 1) * BATCHES] for h in batch] for r in (0, 1)
        ]
        # no image trained on by both ranks in one epoch, and none twice by one
        assert not set(seen[0]) & set(seen[1]), f"epoch {epoch}: the ranks shared images"
        assert len(set(seen[0])) == len(set(seen[1])) == BATCHES * BATCH_SIZE
        # each rank's images are its shard of the epoch's shuffle, in order
        for rank in (0, 1):
            shard = ShardedShuffle(len(images), BATCH_SIZE, BATCHES, seed=0, rank=rank, world_size=2)
            shard.set_epoch(epoch)
            assert seen[rank] == image_hashes(images[shard.batches().flatten()]), f"rank {rank}, epoch {epoch}"


def test_ranks_draw_their_own_latents_and_end_with_the_same_weights(ddp_run):
    ranks = ddp_run["ranks"]
    # the latent generator's state differs between the ranks at every iteration: each draws its own fakes
    assert all(a != b for a, b in zip(ranks[0]["latent_rng"], ranks[1]["latent_rng"], strict=True))
    # DDP averaged the gradients: the ranks end with the same parameters. (Not the same batch-norm running
    # statistics: each rank updates its own after DDP's broadcast of rank 0's.) Rank 0's model is the one written
    assert ranks[0]["parameters"] == ranks[1]["parameters"]
    written = read_checkpoint(ddp_run["tmp"] / "model" / "model.ckpt")["state_dict"]
    digest = hashlib.sha256(b"".join(written[k].numpy().tobytes() for k in sorted(written))).hexdigest()
    assert digest == ranks[0]["weights"]


def test_rank_zero_alone_logs_one_finished_mlflow_run(ddp_run):
    tmp = ddp_run["tmp"]
    client = MlflowClient(f"sqlite:///{tmp / 'mlflow.db'}")
    experiments = client.search_experiments()
    runs = client.search_runs([e.experiment_id for e in experiments])
    assert len(runs) == 1, [r.info.run_id for r in runs]
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert json.loads((tmp / "model" / "run.json").read_text())["run_id"] == run.info.run_id
    assert run.data.tags["world_size"] == "2"
    params = run.data.params
    assert (params["train.strategy"], params["train.devices"], params["train.num_nodes"]) == ("ddp", "2", "1")
    # each metric logged once per step, by one process: iterations are counted per rank
    iterations = EPOCHS * BATCHES
    steps = [m.step for m in client.get_metric_history(run.info.run_id, "loss/d")]
    assert steps == list(range(5, iterations + 1, 5))
    assert len(client.get_metric_history(run.info.run_id, "eval/categorical_accuracy")) == EPOCHS
    assert [a.path for a in client.list_artifacts(run.info.run_id, "samples")] == [
        "samples/epoch_0003.png",
        "samples/epoch_0006.png",
    ]
    assert {a.path for a in client.list_artifacts(run.info.run_id, "model")} == {
        "model/config.json",
        "model/model.ckpt",
    }


def test_rank_zero_writes_the_outputs_and_every_rank_exits_cleanly(ddp_run):
    tmp, record = ddp_run["tmp"], ddp_run["record"]
    assert sorted(p.name for p in (tmp / "model").iterdir()) == ["config.json", "model.ckpt", "run.json"]
    assert json.loads((tmp / "model" / "config.json").read_text())["train"]["strategy"] == "ddp"
    history = pd.read_csv(tmp / "history.csv")
    assert list(history["iteration"]) == list(range(BATCHES, EPOCHS * BATCHES + 1, BATCHES))
    assert history["eval/categorical_accuracy"].notna().all()
    assert list((tmp / "checkpoints").iterdir()) == []  # finished: the resumable checkpoint is gone
    for rank in (0, 1):
        assert (record / f"rank{rank}.exited").is_file()
    assert "Traceback" not in ddp_run["result"].stderr
    assert ddp_run["result"].stdout.count("MLflow run ") == 1


@pytest.mark.parametrize("strategy", ["auto", "ddp", "ddp_find_unused_parameters_true"])
def test_every_strategy_offered_gives_ddp_that_finds_unused_parameters(strategy):
    """Plain DDP stops at the first generator step of this module (infogan/training/trainer.py); `auto` picks
    DDP for several devices, so each value must give the DDP that finds unused parameters."""
    use_ddp_with_unused_parameters()
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy=strategy, logger=False, enable_progress_bar=False)
    assert isinstance(trainer.strategy, DDPStrategy)
    assert trainer.strategy._ddp_kwargs.get("find_unused_parameters") is True  # where Lightning keeps DDP's arguments


def test_a_ddp_training_resumed_from_its_checkpoint_ends_as_the_uninterrupted_one(
    ddp_run, prepared_mnist, train_args, stage_env
):
    """Each rank gets back its own random state and loss sums (the checkpoint holds every rank's)."""
    tmp = ddp_run["tmp"]
    folder = tmp / "resumed"
    (folder / "checkpoints").mkdir(parents=True)
    shutil.copy(ddp_run["record"] / "last.ckpt", folder / "checkpoints" / "last.ckpt")
    result = attempt(train_command("mnist", tmp / "params.yaml", prepared_mnist, folder), ROOT, stage_env, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    run_id = json.loads((tmp / "model" / "run.json").read_text())["run_id"]
    checkpoint = folder / "checkpoints" / "last.ckpt"
    assert f"resuming MLflow run {run_id} from {checkpoint} at iteration {SAVED_AT[-1]}" in result.stdout
    resumed, uninterrupted = (read_checkpoint(f / "model" / "model.ckpt")["state_dict"] for f in (folder, tmp))
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed)
    pd.testing.assert_frame_equal(pd.read_csv(folder / "history.csv"), pd.read_csv(tmp / "history.csv"))
