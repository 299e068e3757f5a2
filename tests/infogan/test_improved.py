"""The improved recipe: the nuisance transformation, the consistency loss and the terms they add
to the training step; and Q's fixed-std option for continuous codes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from infogan.augment import affine_jitter, nuisance, thickness_jitter
from infogan.codes import Latent
from infogan.config import ImprovedConfig, ModelConfig, OptimConfig
from infogan.losses import categorical_consistency, categorical_nll
from infogan.module import InfoGAN


def digits(n: int = 8) -> torch.Tensor:
    """(n, 1, 28, 28) in [-1, 1]: background -1 and a vertical bar of ink (+1), 2 pixels wide."""
    images = torch.full((n, 1, 28, 28), -1.0)
    images[:, :, 6:22, 13:15] = 1.0
    return images


def ink(images: torch.Tensor) -> torch.Tensor:
    """Ink mass per image, in [0, 1] units per pixel."""
    return ((images + 1) / 2).sum(dim=(1, 2, 3))


def test_affine_jitter_with_nothing_to_do_is_the_identity():
    images = digits()
    assert torch.allclose(affine_jitter(images, 0.0, 0.0), images, atol=1e-5)


def test_affine_jitter_moves_each_image_differently_and_keeps_the_background():
    torch.manual_seed(0)
    images = digits(16)
    moved = affine_jitter(images, 15.0, 2.0)
    assert moved.shape == images.shape and moved.dtype == images.dtype
    assert moved.min() >= -1 - 1e-5 and moved.max() <= 1 + 1e-5
    assert not torch.allclose(moved, images, atol=1e-3)
    assert len({tuple(m.flatten().round(decimals=3).tolist()) for m in moved}) == 16
    # the bar stays inside the frame, so rotating and shifting keep its ink (up to resampling)
    assert torch.allclose(ink(moved), ink(images), rtol=0.05)
    # the corners are far from the bar: still background
    assert torch.all(moved[:, :, :3, :3] == -1)


def test_affine_jitter_rotates_within_the_bound():
    """The bar's angle from vertical, from its second moments, stays within ±15 degrees."""
    torch.manual_seed(1)
    moved = (affine_jitter(digits(64), 15.0, 0.0) + 1) / 2
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    mass = moved[:, 0].sum(dim=(1, 2))
    mx = (moved[:, 0] * xs).sum(dim=(1, 2)) / mass
    my = (moved[:, 0] * ys).sum(dim=(1, 2)) / mass
    cxy = (moved[:, 0] * (xs - mx[:, None, None]) * (ys - my[:, None, None])).sum(dim=(1, 2)) / mass
    cyy = (moved[:, 0] * (ys - my[:, None, None]) ** 2).sum(dim=(1, 2)) / mass
    angle = torch.rad2deg(torch.atan(cxy / cyy)).abs()
    assert angle.max() <= 15.5 and angle.max() >= 8  # 64 uniform draws reach well past half the bound


def test_thickness_jitter_erodes_keeps_or_dilates():
    torch.manual_seed(0)
    images = digits(64)
    out = thickness_jitter(images)
    masses = ink(out)
    # 2-px bar: erosion leaves nothing, dilation adds a column each side and a row at each end
    assert set(masses.round().tolist()) == {0.0, 32.0, 72.0}
    for image, mass in zip(out, masses, strict=True):
        if mass == 32:
            assert torch.equal(image, images[0])


def test_nuisance_follows_its_config():
    images = digits()
    off = ImprovedConfig(rotation_deg=0.0, shift_px=0.0, thickness=False)
    assert torch.equal(nuisance(images, off), images)
    torch.manual_seed(0)
    assert not torch.allclose(nuisance(images, ImprovedConfig()), images)


def test_consistency_is_the_kl_divergence_and_leaves_the_target_alone():
    torch.manual_seed(0)
    target = torch.randn(6, 13, requires_grad=True)
    logits = torch.randn(6, 13, requires_grad=True)
    sizes = (10, 3)
    loss = categorical_consistency(target, logits, sizes)
    expected = sum(
        (F.softmax(t, 1) * (F.log_softmax(t, 1) - F.log_softmax(q, 1))).sum(1).mean()
        for t, q in zip(target.split(sizes, 1), logits.split(sizes, 1), strict=True)
    )
    assert torch.allclose(loss, expected, rtol=1e-5)
    assert categorical_consistency(logits, logits.detach(), sizes).abs() < 1e-6
    loss.backward()
    assert target.grad is None and logits.grad.abs().sum() > 0


def improved_module(improved: ImprovedConfig, recipe: str = "improved") -> InfoGAN:
    torch.manual_seed(0)
    return InfoGAN(ModelConfig(), OptimConfig(recipe=recipe), improved).train()


def latent_and_fake(module: InfoGAN, batch: int = 16) -> tuple[Latent, torch.Tensor]:
    torch.manual_seed(1)
    latent = module.codes.sample(batch, device=torch.device("cpu"))
    return latent, module.generator(latent.vector)


def test_paper_recipe_ignores_the_improved_config():
    module = improved_module(ImprovedConfig(), recipe="paper")
    assert module.improved is None
    latent, fake = latent_and_fake(module)
    assert "improved/real_consistency" not in module.discriminator_step(digits(16), fake, latent)


def test_improved_recipe_without_a_categorical_code_adds_nothing():
    torch.manual_seed(0)
    module = InfoGAN(ModelConfig(categorical=(), continuous=2), OptimConfig(recipe="improved"), ImprovedConfig())
    assert module.improved is None
    latent, fake = latent_and_fake(module.train())
    losses = module.discriminator_step(digits(16), fake, latent)
    assert not any(key.startswith("improved/") for key in losses)
    assert torch.isfinite(module.generator_step(fake, latent)["total"])


def test_improved_discriminator_step_adds_its_two_weighted_terms():
    config = ImprovedConfig(augmented_information=0.7, real_consistency=2.0)
    module = improved_module(config)
    latent, fake = latent_and_fake(module)
    real = digits(16)
    torch.manual_seed(2)
    losses = module.discriminator_step(real, fake, latent)
    paper = (
        module.optim_config.lambda_cat * losses["info/categorical"]
        + module.optim_config.lambda_cont * losses["info/continuous"]
        + losses["loss/d"]
    )
    expected = paper + 0.7 * losses["improved/augmented_information"] + 2.0 * losses["improved/real_consistency"]
    assert torch.allclose(losses["total"], expected, rtol=1e-5)
    # the augmented term is Q's cross-entropy on T(fake): replay the same random draws
    torch.manual_seed(2)
    transformed = nuisance(fake.detach(), config)
    direct = categorical_nll(module.encode(transformed).categorical_logits, latent.categorical, (10,)).sum()
    assert torch.allclose(losses["improved/augmented_information"], direct, rtol=1e-4)
    assert losses["improved/real_consistency"] > 0


def test_improved_generator_step_puts_the_augmented_term_on_g():
    with_term = improved_module(ImprovedConfig(augmented_information=1.0, real_consistency=0.0))
    without = improved_module(ImprovedConfig(augmented_information=0.0, real_consistency=0.0))
    grads = []
    for module in (with_term, without):
        latent, fake = latent_and_fake(module)
        torch.manual_seed(3)
        module.generator_step(fake, latent)["total"].backward()
        grads.append(torch.cat([p.grad.flatten() for p in module.generator.parameters()]))
    assert not torch.allclose(grads[0], grads[1])


def test_a_zero_weight_term_is_not_computed():
    module = improved_module(ImprovedConfig(augmented_information=0.0, real_consistency=1.0))
    latent, fake = latent_and_fake(module)
    losses = module.discriminator_step(digits(16), fake, latent)
    assert "improved/augmented_information" not in losses and "improved/real_consistency" in losses


def test_improved_config_survives_a_checkpoint(tmp_path):
    import pytorch_lightning as pl

    config = ImprovedConfig(real_consistency=0.5, rotation_deg=10.0)
    module = improved_module(config)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    reloaded = InfoGAN.load_from_checkpoint(tmp_path / "m.ckpt", weights_only=False)
    assert reloaded.improved == config and reloaded.optim_config.recipe == "improved"


@pytest.mark.parametrize("std", ["learned", "fixed"])
def test_q_continuous_std(std):
    module = InfoGAN(ModelConfig(q_continuous_std=std), OptimConfig()).train()
    q = module.encode(digits(4))
    assert q.continuous_mean.shape == q.continuous_log_scale.shape == (4, 2)
    assert module.q_head.out.out_features == 10 + 2 * (2 if std == "learned" else 1)
    if std == "fixed":  # std 1 for every image
        assert torch.equal(q.continuous_log_scale, torch.zeros(4, 2))
    else:
        assert q.continuous_log_scale.abs().sum() > 0
