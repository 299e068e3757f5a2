"""infogan.model.load: G and Q from a checkpoint's model section alone, whatever its training sections hold."""

from __future__ import annotations

import pytest
import torch

from infogan.errors import InfoGANError
from infogan.model.infogan import InfoGAN
from infogan.model.load import load_model, network_weights
from infogan.training.module import InfoGANTraining
from pipeline.params import shipped_model, shipped_train

TINY = {"g_fc": (16,), "g_base_channels": 8, "g_upconv": (4,), "d_conv": (4, 8), "d_fc": (8,), "q_hidden": 8}


def test_the_training_modules_checkpoint_loads_as_the_pure_model(tmp_path):
    torch.manual_seed(0)
    module = InfoGANTraining(shipped_model(**TINY), shipped_train(recipe="paper"))
    path = tmp_path / "model.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, path)
    model = load_model(path)
    assert isinstance(model, InfoGAN) and not model.training
    assert model.config == module.config.model
    for key, value in module.model.state_dict().items():
        assert torch.equal(model.state_dict()[key], value), key


def test_trained_reads_the_networks_as_trained_beside_their_average_and_the_average_where_alone(tmp_path):
    """A training checkpoint with a moving average holds the average in its state dict and the trained
    networks in `current_model_state` (Lightning's WeightAveraging); `trained` picks the latter."""
    torch.manual_seed(0)
    average, trained = InfoGAN(shipped_model(**TINY)), InfoGAN(shipped_model(**TINY))
    hyper = {"model": average.config.to_dict()}
    path = tmp_path / "last.ckpt"
    torch.save(
        {"state_dict": average.state_dict(), "current_model_state": trained.state_dict(), "hyper_parameters": hyper},
        path,
    )
    weight = "generator.fc.0.weight"
    assert torch.equal(load_model(path).state_dict()[weight], average.state_dict()[weight])
    assert torch.equal(load_model(path, trained=True).state_dict()[weight], trained.state_dict()[weight])
    assert not torch.equal(average.state_dict()[weight], trained.state_dict()[weight])
    alone = tmp_path / "model.ckpt"
    torch.save({"state_dict": average.state_dict(), "hyper_parameters": hyper}, alone)
    assert torch.equal(load_model(alone, trained=True).state_dict()[weight], average.state_dict()[weight])


def test_settings_only_training_reads_do_not_stop_a_model_from_loading(tmp_path):
    """A checkpoint of an older version: its optimizer section under another name, with a key since
    removed and one missing; its weights at the top of the state dict."""
    torch.manual_seed(0)
    model = InfoGAN(shipped_model(**TINY))
    path = tmp_path / "model.ckpt"
    hyper = {"model": model.config.to_dict(), "optim": {"lr_d": 2e-4, "retired_key": 1}, "improved": {"old": True}}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hyper}, path)
    loaded = load_model(path)
    latent = model.codes.sample(3, torch.Generator().manual_seed(1)).vector
    with torch.no_grad():
        assert torch.equal(loaded(latent), model.eval()(latent))


def test_a_bad_model_section_is_named(tmp_path):
    model = InfoGAN(shipped_model(**TINY))
    path = tmp_path / "model.ckpt"
    hyper = {"model": {**model.config.to_dict(), "noise_dim": -1}}
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": hyper}, path)
    with pytest.raises(InfoGANError, match=r"model\.noise_dim = -1 is invalid"):
        load_model(path)


def test_network_weights_take_the_training_modules_prefix_off():
    weights = {"model.generator.w": torch.zeros(1), "model.trunk.w": torch.ones(1)}
    assert set(network_weights(weights)) == {"generator.w", "trunk.w"}
    assert network_weights({"generator.w": torch.zeros(1)}).keys() == {"generator.w"}
