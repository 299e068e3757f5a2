"""Tests for WeightAverage (`improved.ema_decay`): what the module ends with, what the evaluation reads,
and what a checkpoint keeps of the average."""

from __future__ import annotations

import pytorch_lightning as pl
import torch

import infogan.training.callbacks as callbacks
from infogan.model.load import network_weights
from infogan.training.callbacks import EpochEvaluation, WeightAverage
from infogan.training.datamodule import DeviceImages
from infogan.training.module import InfoGANTraining
from pipeline.params import shipped_model, shipped_train
from tests.infogan.training.test_module import BATCH, random_images, snapshot, trainer

DECAY = 0.25  # large steps, so that the average is far from the last trained weights; not 0.5, where
# decay and 1 - decay weigh alike and a swapped update would pass


class TrainedWeights(pl.Callback):
    """The module's weights after each iteration, before anything else at the batch's end reads them."""

    def __init__(self):
        self.after: list[dict[str, torch.Tensor]] = []

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        self.after.append(snapshot(pl_module.model))


class SaveAt(pl.Callback):
    """trainer.save_checkpoint(path) at the end of iteration `iteration` (1-based)."""

    def __init__(self, path, iteration: int):
        self.path, self.iteration = path, iteration

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx: int) -> None:
        if batch_idx + 1 == self.iteration:
            trainer.save_checkpoint(self.path)


def fit(*extra: pl.Callback, iterations: int = 3, ckpt_path=None, seed: int = 0) -> InfoGANTraining:
    torch.manual_seed(seed)
    module = InfoGANTraining(shipped_model(), shipped_train(recipe="paper"))
    data = DeviceImages(random_images(), BATCH, batches_per_epoch=iterations, seed=0)
    trainer(callbacks=extra).fit(module, datamodule=data, ckpt_path=ckpt_path)
    return module


def moving_average(trajectory: list[dict[str, torch.Tensor]], decay: float) -> dict[str, torch.Tensor]:
    average = dict(trajectory[0])  # the first update copies the trained weights
    for weights in trajectory[1:]:
        average = {name: decay * average[name] + (1 - decay) * weights[name] for name in average}
    return average


def test_the_module_ends_with_the_moving_average_of_its_trained_weights():
    trained = TrainedWeights()
    module = fit(trained, WeightAverage(DECAY))
    expected = moving_average(trained.after, DECAY)
    final = snapshot(module.model)
    assert len(trained.after) == 3
    assert all(torch.allclose(final[name], expected[name], atol=1e-6) for name in expected)
    last = trained.after[-1]
    assert any(not torch.allclose(final[name], last[name]) for name in last)  # not the trained weights


def test_the_epoch_evaluation_scores_the_average(monkeypatch):
    scored = []

    def spy(model, images, labels, batch_size):
        scored.append(snapshot(model))
        return {"eval/categorical_accuracy": 0.5}, {}

    monkeypatch.setattr(callbacks, "categorical_code_matching", spy)
    trained, average = TrainedWeights(), WeightAverage(DECAY)
    images = random_images(64, seed=1)
    labels = torch.arange(64) % 10
    module = fit(trained, average, EpochEvaluation(images, labels, 32, average))
    assert len(scored) == 1  # one epoch
    expected = moving_average(trained.after, DECAY)
    assert all(torch.allclose(scored[0][name], expected[name], atol=1e-6) for name in expected)
    assert snapshot(module.model).keys() == scored[0].keys()


def test_a_checkpoint_keeps_the_average_and_the_trained_weights_and_a_resumed_fit_restores_the_average(tmp_path):
    path = tmp_path / "mid.ckpt"
    trained = TrainedWeights()
    fit(trained, WeightAverage(DECAY), SaveAt(path, 2))
    saved = torch.load(path, map_location="cpu", weights_only=True)
    average = moving_average(trained.after[:2], DECAY)
    weights, current = network_weights(saved["state_dict"]), network_weights(saved["current_model_state"])
    assert all(torch.allclose(weights[name], average[name], atol=1e-6) for name in average)
    assert all(torch.equal(current[name], trained.after[1][name]) for name in average)
    # a fit resumed from it, with nothing left to train (2 iterations of 2), ends with the saved average
    resumed = fit(WeightAverage(DECAY), iterations=2, ckpt_path=path, seed=1)
    final = snapshot(resumed.model)
    assert all(torch.allclose(final[name], average[name], atol=1e-6) for name in average)


def test_the_epoch_evaluation_runs_in_the_training_steps_precision(monkeypatch):
    """Under bf16 autocast where the steps are, in fp32 where they are (the render stage's figures are fp32)."""
    seen = []

    def spy(model, images, labels, batch_size):
        seen.append(torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else torch.float32)
        return {"eval/categorical_accuracy": 0.5}, {}

    monkeypatch.setattr(callbacks, "categorical_code_matching", spy)
    images, labels = random_images(64, seed=1), torch.arange(64) % 10
    for precision in ("bf16-mixed", "32-true"):
        torch.manual_seed(0)
        module = InfoGANTraining(shipped_model(), shipped_train(recipe="paper"))
        data = DeviceImages(random_images(), BATCH, batches_per_epoch=1, seed=0)
        fitter = trainer(callbacks=[EpochEvaluation(images, labels, 32)], precision=precision)
        fitter.fit(module, datamodule=data)
    assert seen == [torch.bfloat16, torch.float32]
