"""Tests for infogan.training.module: a real (tiny) Lightning fit, where each loss term's gradient goes, checkpoints."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pytest
import pytorch_lightning as pl
import torch

from infogan.data.images import to_model_range
from infogan.errors import InfoGANError
from infogan.training.datamodule import DeviceImages
from infogan.training.module import InfoGANTraining
from pipeline.params import shipped_model, shipped_train

BATCH = 32


def trainer(max_steps: int = -1, callbacks: Sequence[pl.Callback] = (), precision: str = "32-true") -> pl.Trainer:
    return pl.Trainer(
        accelerator="cpu",
        precision=precision,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        max_epochs=1,
        max_steps=max_steps,
        callbacks=list(callbacks),
    )


def random_images(n: int = 256, size: int = 28, seed: int = 0) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in module.named_parameters()}


@pytest.fixture(scope="module")
def fitted():
    """An MNIST-config InfoGAN before and after one epoch of 2 iterations on random images."""
    torch.manual_seed(0)
    module = InfoGANTraining(shipped_model(), shipped_train(recipe="paper"))
    before = {part: snapshot(getattr(module.model, part)) for part in ("generator", "trunk", "d_head", "q_head")}
    fit = trainer()
    fit.fit(module, datamodule=DeviceImages(random_images(), BATCH, batches_per_epoch=2, seed=0))
    return module, fit, before


def test_fit_runs_the_requested_iterations(fitted):
    _, fit, _ = fitted
    assert fit.fit_loop.epoch_loop.total_batch_idx + 1 == 2
    assert fit.global_step == 4  # two optimizer steps (D, then G) per iteration
    for key in ("loss/d_epoch", "loss/g_epoch", "info/categorical_epoch", "info/continuous_epoch"):
        assert torch.isfinite(fit.callback_metrics[key])


@pytest.mark.parametrize("part", ["generator", "trunk", "d_head", "q_head"])
def test_fit_updates_every_parameter(fitted, part):
    module, _, before = fitted
    unchanged = [
        name
        for name, p in getattr(module.model, part).named_parameters()
        if torch.equal(p.detach(), before[part][name])
    ]
    assert unchanged == []


def test_fit_leaves_every_parameter_trainable(fitted):
    """Lightning's optimizer toggling must hand requires_grad back afterwards."""
    module, _, _ = fitted
    assert all(p.requires_grad for p in module.parameters())


def test_optimizers_split_the_parameters():
    module = InfoGANTraining(shipped_model(), shipped_train(recipe="paper", lr_d=1e-4, lr_g=3e-4, beta1=0.4))
    opt_d, opt_g = module.configure_optimizers()
    d_ids = {id(p) for group in opt_d.param_groups for p in group["params"]}
    g_ids = {id(p) for group in opt_g.param_groups for p in group["params"]}
    assert g_ids == {id(p) for p in module.model.generator.parameters()}
    assert d_ids == {
        id(p) for part in (module.model.trunk, module.model.d_head, module.model.q_head) for p in part.parameters()
    }
    assert opt_d.param_groups[0]["lr"] == 1e-4 and opt_g.param_groups[0]["lr"] == 3e-4
    assert opt_d.param_groups[0]["betas"] == (0.4, 0.999)


# ---------------------------------------------------------------- gradient flow, step by step


@pytest.fixture(scope="module")
def step_module():
    torch.manual_seed(0)
    return InfoGANTraining(shipped_model(), shipped_train(recipe="paper")).train()


@pytest.fixture
def step_inputs(step_module):
    """A fresh G forward (its own graph) and cleared gradients for each test."""
    module = step_module
    module.zero_grad(set_to_none=True)
    module.config = module.config.model_copy(update={"train": shipped_train(recipe="paper")})
    generator = torch.Generator().manual_seed(0)
    real = to_model_range(random_images(16))
    latent = module.model.codes.sample(16, generator)
    fake = module.model.generator(latent.vector)
    return module, real, fake, latent


def grads(part: torch.nn.Module) -> list[torch.Tensor | None]:
    return [p.grad for p in part.parameters()]


def all_nonzero(part: torch.nn.Module) -> bool:
    return all(g is not None and g.abs().sum() > 0 for g in grads(part))


def test_discriminator_step_information_loss_trains_q_not_g(step_inputs):
    module, real, fake, latent = step_inputs
    losses = module.discriminator_step(real, fake, latent)
    assert set(losses) == {"total", "loss/d", "info/categorical", "info/continuous"}
    (losses["info/categorical"] + losses["info/continuous"]).backward()
    assert all_nonzero(module.model.trunk)
    assert all_nonzero(module.model.q_head)
    assert all(g is None for g in grads(module.model.d_head))  # the info term does not pass through D's head
    assert all(g is None for g in grads(module.model.generator))  # the fake is detached in D's step


def test_discriminator_step_total_never_reaches_the_generator(step_inputs):
    module, real, fake, latent = step_inputs
    module.discriminator_step(real, fake, latent)["total"].backward()
    assert all_nonzero(module.model.d_head) and all_nonzero(module.model.trunk) and all_nonzero(module.model.q_head)
    assert all(g is None for g in grads(module.model.generator))


def test_information_loss_through_the_generator_step_reaches_the_generator(step_inputs):
    module, _, fake, latent = step_inputs
    info = module.information_loss(module.model.encode(fake), latent)
    (info.categorical + info.continuous).backward()
    assert all_nonzero(module.model.generator)


def test_generator_step_trains_the_generator(step_inputs):
    module, _, fake, latent = step_inputs
    losses = module.generator_step(fake, latent)
    assert set(losses) == {"total", "loss/g"}
    losses["total"].backward()
    assert all_nonzero(module.model.generator)


def test_lambdas_weight_the_information_term_in_the_generator_step(step_inputs):
    module, _, fake, latent = step_inputs
    fake = fake.detach()
    with torch.no_grad():
        info = module.information_loss(module.model.encode(fake), latent)
        totals = {}
        for lam_cat, lam_cont in [(0.0, 0.0), (1.0, 1.0), (1.0, 0.0), (0.0, 1.0)]:
            train = module.config.train.model_copy(update={"lambda_cat": lam_cat, "lambda_cont": lam_cont})
            module.config = module.config.model_copy(update={"train": train})
            totals[lam_cat, lam_cont] = module.generator_step(fake, latent)["total"]
    base = totals[0.0, 0.0]
    assert not torch.allclose(totals[1.0, 1.0], base)
    torch.testing.assert_close(totals[1.0, 1.0] - base, info.categorical + info.continuous)
    torch.testing.assert_close(totals[1.0, 0.0] - base, info.categorical)
    torch.testing.assert_close(totals[0.0, 1.0] - base, info.continuous)


def test_forward_generates_images():
    module = InfoGANTraining(shipped_model(), shipped_train(recipe="paper"))
    images = module(module.model.codes.sample(3).vector)
    assert images.shape == (3, 1, 28, 28)


def test_plain_dict_configs_are_checked():
    """A checkpoint's hyperparameters are plain dicts: every key must be there and valid."""
    model, train = shipped_model().to_dict(), shipped_train(recipe="paper").to_dict()
    module = InfoGANTraining(model | {"categorical": [10, 3]}, train | {"lambda_cont": 0.5})
    assert module.config.model.categorical == (10, 3)
    assert module.config.train.lambda_cont == 0.5
    with pytest.raises(InfoGANError, match=re.escape("model.categorical[0] = 'ten'")):
        InfoGANTraining(model | {"categorical": ["ten"]}, train)
    with pytest.raises(InfoGANError, match=re.escape("train.adversarial_loss")):
        InfoGANTraining(model, train | {"adversarial_loss": "wgan"})
    with pytest.raises(InfoGANError, match=re.escape("model.q_hidden is missing")):
        InfoGANTraining({k: v for k, v in model.items() if k != "q_hidden"}, train)
    with pytest.raises(InfoGANError, match="the improved recipe needs its settings"):
        InfoGANTraining(model, train | {"recipe": "improved"})


# ---------------------------------------------------------------- checkpoints and the hinge/SN option


def test_checkpoint_round_trip_gives_identical_samples(fitted, tmp_path):
    module, fit, _ = fitted
    path = tmp_path / "model.ckpt"
    fit.save_checkpoint(path)
    restored = InfoGANTraining.load_from_checkpoint(path, weights_only=False).eval()
    assert restored.config.model == module.config.model and restored.config.train == module.config.train
    module.eval()
    latent = module.model.codes.sample(8, torch.Generator().manual_seed(1)).vector
    with torch.no_grad():
        expected, got = module(latent), restored(latent)
    module.train()
    assert torch.equal(expected, got)
    # the generator is not trivially constant: different latents give different samples
    assert not torch.equal(got[0], got[1])


def test_hinge_with_spectral_norm_trains(tmp_path):
    torch.manual_seed(0)
    module = InfoGANTraining(shipped_model(spectral_norm=True), shipped_train(recipe="paper", adversarial_loss="hinge"))
    before = snapshot(module.model)
    fit = trainer(max_steps=2)
    fit.fit(module, datamodule=DeviceImages(random_images(64), 16, batches_per_epoch=1, seed=0))
    assert fit.global_step == 2
    assert torch.isfinite(fit.callback_metrics["loss/d_epoch"]) and torch.isfinite(fit.callback_metrics["loss/g_epoch"])
    after = snapshot(module.model)
    assert not torch.equal(before["generator.fc.0.weight"], after["generator.fc.0.weight"])
    original = "trunk.layers.0.parametrizations.weight.original"
    assert not torch.equal(before[original], after[original])
