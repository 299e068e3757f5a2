"""The improved recipe: the nuisance transformation, the consistency loss and the terms they add
to the training step; and Q's fixed-std option for continuous codes."""

from __future__ import annotations

import copy
import io
import math

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F

import infogan.training.module as training_module
from infogan.config import ImprovedConfig
from infogan.data.images import to_model_range
from infogan.errors import InfoGANError
from infogan.model.augment import affine_jitter, nuisance, thickness_jitter
from infogan.model.codes import Latent
from infogan.model.losses import (
    categorical_consistency,
    categorical_entropies,
    categorical_mutual_information,
    categorical_nll,
    categorical_self_label,
    categorical_virtual_adversarial,
    code_effects,
    continuous_class_dependence,
    continuous_class_disagreement,
    continuous_cross_reading,
    continuous_dependence,
    continuous_effect_drift,
    continuous_effect_overlap,
    continuous_marginal_distance,
    continuous_mixed_derivatives,
    continuous_shared_effect,
    gaussian_nll,
    least_mixed_turn,
    plane_turn,
)
from infogan.training.bookkeeping import Losses
from infogan.training.callbacks import EpochEvaluation, ProgressLines, WeightAverage
from infogan.training.datamodule import DeviceImages
from infogan.training.module import InfoGANTraining
from pipeline.params import shipped_improved, shipped_model, shipped_train
from tests.infogan.training.test_module import random_images, trainer
from tests.infogan.training.test_weight_average import SaveAt


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


def bar_extent(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Width and height of each image's ink, from the second moments (2 * sqrt(3 * variance))."""
    mass_map = (images[:, 0] + 1) / 2
    ys, xs = torch.meshgrid(torch.arange(28.0), torch.arange(28.0), indexing="ij")
    mass = mass_map.sum(dim=(1, 2))
    extent = []
    for axis in (xs, ys):
        mean = (mass_map * axis).sum(dim=(1, 2)) / mass
        var = (mass_map * (axis - mean[:, None, None]) ** 2).sum(dim=(1, 2)) / mass
        extent.append(2 * (3 * var).sqrt())
    return extent[0], extent[1]


def test_affine_jitter_stretches_each_axis_within_the_bound():
    torch.manual_seed(3)
    images = digits(64)
    _, height = bar_extent(images)
    _, stretched = bar_extent(affine_jitter(images, 0.0, 0.0, 0.2))
    ratio = stretched / height
    # the 16-px bar's height changes by up to 20%, both ways, and not by the same factor for all
    assert ratio.min() >= 0.78 and ratio.max() <= 1.22
    assert ratio.min() < 0.9 and ratio.max() > 1.1


def test_affine_jitter_without_a_stretch_keeps_its_random_draws():
    """A scale of 0 draws nothing more, so runs made before the stretch existed replay the same."""
    images = digits(16)
    torch.manual_seed(4)
    before = affine_jitter(images, 15.0, 2.0)
    after_draw = torch.rand(1)
    torch.manual_seed(4)
    again = affine_jitter(images, 15.0, 2.0, 0.0)
    assert torch.equal(before, again) and torch.equal(torch.rand(1), after_draw)


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
    off = shipped_improved(rotation_deg=0.0, scale=0.0, shift_px=0.0, thickness=False)
    assert torch.equal(nuisance(images, off), images)
    torch.manual_seed(0)
    assert not torch.allclose(nuisance(images, shipped_improved()), images)


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


def test_self_labelling_is_the_class_balanced_cross_entropy_on_the_confident_rows():
    torch.manual_seed(0)
    target = torch.randn(8, 13)
    target[[0, 1, 2], 4] = 20.0  # three confident rows of class 4
    target[5, 7] = 20.0  # one of class 7
    target[6, 12] = 20.0  # the second code (3 classes): one confident row of its class 2
    target.requires_grad_(True)
    logits = torch.randn(8, 13, requires_grad=True)
    loss = categorical_self_label(target, logits, (10, 3), threshold=0.99)
    entropy = F.cross_entropy(logits[:, :10], torch.full((8,), 4), reduction="none")
    # the first code's two classes weigh alike: class 4's three rows count as much as class 7's one
    first = (entropy[[0, 1, 2]].mean() + F.cross_entropy(logits[5:6, :10], torch.tensor([7]))) / 2
    second = F.cross_entropy(logits[6:7, 10:], torch.tensor([2]))
    assert torch.allclose(loss, first + second, rtol=1e-5)
    loss.backward()
    assert target.grad is None  # the target is held fixed
    assert logits.grad[[3, 4, 7]].abs().sum() == 0 and logits.grad[[0, 5, 6]].abs().sum() > 0  # unconfident rows: none
    assert categorical_self_label(torch.zeros(8, 13), logits, (10, 3), threshold=0.99) == 0  # none confident


def test_mutual_information_is_high_for_agreeing_balanced_classes_and_zero_for_one_class():
    sizes = (10,)
    confident = torch.eye(10).repeat(5, 1) * 30  # 50 images, each class 5 times, one-hot logits
    assert torch.allclose(
        categorical_mutual_information(confident, confident, sizes), torch.tensor(math.log(10)), atol=1e-3
    )
    # a second view that says nothing (uniform) carries no information about the first
    assert categorical_mutual_information(confident, torch.zeros(50, 10), sizes).abs() < 1e-5
    # everything in one class: the views agree, but H(c) = 0, so I = 0 (the marginal term at work)
    one_class = torch.zeros(50, 10)
    one_class[:, 3] = 30
    assert categorical_mutual_information(one_class, one_class, sizes).abs() < 1e-3


def test_mutual_information_sums_the_codes_and_reaches_both_views():
    torch.manual_seed(0)
    logits = torch.randn(32, 13, requires_grad=True)
    other = torch.randn(32, 13, requires_grad=True)
    total = categorical_mutual_information(logits, other, (10, 3))
    parts = categorical_mutual_information(logits[:, :10], other[:, :10], (10,)) + categorical_mutual_information(
        logits[:, 10:], other[:, 10:], (3,)
    )
    assert torch.allclose(total, parts) and total > 0
    total.backward()
    assert logits.grad.abs().sum() > 0 and other.grad.abs().sum() > 0


def test_entropies_of_confident_balanced_and_of_uncertain_classes():
    confident = torch.eye(10).repeat(3, 1) * 40  # each class 3 times, one-hot
    conditional, marginal = categorical_entropies(confident, (10,))
    assert conditional.abs() < 1e-6 and torch.allclose(marginal, torch.tensor(math.log(10)))
    conditional, marginal = categorical_entropies(torch.zeros(30, 13), (10, 3))  # uniform: both at their maximum
    assert torch.allclose(conditional, torch.tensor(math.log(10) + math.log(3)))
    assert torch.allclose(marginal, conditional)
    one_class = torch.zeros(30, 10)
    one_class[:, 0] = 40
    assert categorical_entropies(one_class, (10,))[1].abs() < 1e-6


def only(**weights: float) -> ImprovedConfig:
    """params.yaml's improved section with every term at weight 0 but those given (T's ranges as shipped)."""
    zero = dict.fromkeys(
        ("augmented_information", "real_consistency", "real_information", "real_entropy", "real_marginal_entropy"), 0.0
    )
    return shipped_improved(**(zero | weights))


def improved_module(improved: ImprovedConfig, recipe: str = "improved") -> InfoGANTraining:
    torch.manual_seed(0)
    return InfoGANTraining(shipped_model(), shipped_train(recipe=recipe), improved).train()


def latent_and_fake(module: InfoGANTraining, batch: int = 16) -> tuple[Latent, torch.Tensor]:
    torch.manual_seed(1)
    latent = module.model.codes.sample(batch, device=torch.device("cpu"))
    return latent, module.model.generator(latent.vector)


def test_paper_recipe_ignores_the_improved_config():
    module = improved_module(shipped_improved(), recipe="paper")
    assert module.improved is None
    latent, fake = latent_and_fake(module)
    assert "improved/real_consistency" not in module.discriminator_step(digits(16), fake, latent)


def test_improved_recipe_without_a_categorical_code_adds_nothing():
    torch.manual_seed(0)
    module = InfoGANTraining(
        shipped_model(categorical=(), continuous=2), shipped_train(recipe="improved"), shipped_improved()
    )
    assert module.improved is None
    latent, fake = latent_and_fake(module.train())
    losses = module.discriminator_step(digits(16), fake, latent)
    assert not any(key.startswith("improved/") for key in losses)
    assert torch.isfinite(module.generator_step(fake, latent)["total"])


def discriminator_step(config: ImprovedConfig) -> tuple[InfoGANTraining, torch.Tensor, torch.Tensor, Latent, dict]:
    """One improved discriminator step on 16 bar digits, T's draws seeded with 2: the module, the
    real and fake batches, the latent, and the losses; `paper` among them is D's paper-recipe loss."""
    module = improved_module(config)
    latent, fake = latent_and_fake(module)
    real = digits(16)
    torch.manual_seed(2)
    losses = module.discriminator_step(real, fake, latent)
    optim = module.config.train
    losses["paper"] = (
        losses["loss/d"] + optim.lambda_cat * losses["info/categorical"] + optim.lambda_cont * losses["info/continuous"]
    )
    return module, real, fake, latent, losses


def test_improved_discriminator_step_adds_its_two_weighted_terms():
    config = only(augmented_information=0.7, real_consistency=2.0)
    module, _, fake, latent, losses = discriminator_step(config)
    expected = (
        losses["paper"] + 0.7 * losses["improved/augmented_information"] + 2.0 * losses["improved/real_consistency"]
    )
    assert torch.allclose(losses["total"], expected, rtol=1e-5)
    # the augmented term is Q's cross-entropy on T(fake): replay the same random draws
    torch.manual_seed(2)
    transformed = nuisance(fake.detach(), config)
    direct = categorical_nll(module.model.encode(transformed).categorical_logits, latent.categorical, (10,)).sum()
    assert torch.allclose(losses["improved/augmented_information"], direct, rtol=1e-4)
    assert losses["improved/real_consistency"] > 0


def test_real_information_is_subtracted_with_its_weight():
    config = only(real_information=0.5, scale=0.1)
    module, real, _, _, losses = discriminator_step(config)
    assert torch.allclose(losses["total"], losses["paper"] - 0.5 * losses["improved/real_information"], rtol=1e-5)
    assert "improved/real_consistency" not in losses
    # the term is Q's I(c(x); c(T(x))): replay T's random draws
    torch.manual_seed(2)
    moved = module.model.encode(nuisance(real, config)).categorical_logits
    direct = categorical_mutual_information(module.model.encode(real).categorical_logits, moved, (10,))
    assert torch.allclose(losses["improved/real_information"], direct, rtol=1e-4)


def test_real_entropy_terms_enter_with_imsats_signs():
    config = only(real_entropy=0.1, real_marginal_entropy=0.4)
    module, real, _, _, losses = discriminator_step(config)
    expected = losses["paper"] + 0.1 * losses["improved/real_entropy"] - 0.4 * losses["improved/real_marginal_entropy"]
    assert torch.allclose(losses["total"], expected, rtol=1e-5)
    assert not {"improved/real_consistency", "improved/real_information"} & set(losses)
    conditional, marginal = categorical_entropies(module.model.encode(real).categorical_logits, (10,))
    assert torch.allclose(losses["improved/real_entropy"], conditional, rtol=1e-4)
    assert torch.allclose(losses["improved/real_marginal_entropy"], marginal, rtol=1e-4)


def test_self_labelling_enters_with_its_weight_against_q_on_the_transformed_batch():
    config = only(self_label=0.5, self_label_threshold=0.1, scale=0.1)  # at 0.1 every row of 10 classes is confident
    module, real, _, _, losses = discriminator_step(config)
    assert torch.allclose(losses["total"], losses["paper"] + 0.5 * losses["improved/self_label"], rtol=1e-5)
    assert not {"improved/real_consistency", "improved/real_information"} & set(losses)
    torch.manual_seed(2)  # replay T's random draws
    moved = module.model.encode(nuisance(real, config)).categorical_logits
    direct = categorical_self_label(module.model.encode(real).categorical_logits, moved, (10,), 0.1)
    assert torch.allclose(losses["improved/self_label"], direct, rtol=1e-4) and direct > 0


class OnePixelClassifier(torch.nn.Module):
    """Two classes on (B, 1, 4, 4) images whose logits differ by `sharpness` times pixel 5 alone."""

    def __init__(self, sharpness: float = 3.0):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(16, 2))
        with torch.no_grad():
            self.weight[5, 1] = sharpness

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return images.flatten(1) @ self.weight


def test_virtual_adversarial_perturbation_moves_the_one_pixel_the_class_reads():
    torch.manual_seed(0)
    classify, images = OnePixelClassifier(), torch.rand(64, 1, 4, 4)
    target, radius = classify(images), torch.full((64,), 0.5)
    value = categorical_virtual_adversarial(classify, images, target, (2,), radius)
    assert classify.weight.grad is None  # the direction's search leaves no gradient on the parameters

    def along_pixel_5(sign: float) -> torch.Tensor:  # each row's divergence with r = sign * radius on pixel 5
        moved = images.clone()
        moved[:, 0, 1, 1] += sign * 0.5
        with torch.no_grad():
            t, m = target.log_softmax(1), classify(moved).log_softmax(1)
        return (t.exp() * (t - m)).sum(1)

    # each row's r is +radius or -radius on pixel 5 (the search keeps its random probe's side), so the
    # batch's divergence lies between the two signs' and far above random directions' of the same norm
    low, high = (
        torch.minimum(along_pixel_5(1.0), along_pixel_5(-1.0)),
        torch.maximum(along_pixel_5(1.0), along_pixel_5(-1.0)),
    )
    found = float(value.detach())
    assert float(low.mean()) - 1e-6 <= found <= float(high.mean()) + 1e-6
    random = images + 0.5 * F.normalize(torch.randn(64, 16), dim=1).view(64, 1, 4, 4)
    assert found > 5 * float(categorical_consistency(target, classify(random), (2,)).detach())
    value.backward()  # the divergence at x + r reaches the parameters
    assert classify.weight.grad.abs().sum() > 0


def test_virtual_adversarial_term_is_zero_at_radius_zero():
    torch.manual_seed(0)
    classify, images = OnePixelClassifier(), torch.rand(8, 1, 4, 4)
    value = categorical_virtual_adversarial(classify, images, classify(images), (2,), torch.zeros(8))
    assert float(value) == pytest.approx(0.0, abs=1e-7)


def test_virtual_adversarial_term_enters_ds_step_with_its_weight_at_a_share_of_the_partners_distance():
    config = only(real_vat=0.5, real_vat_radius=0.25, neighbours=5)
    module = improved_module(config)
    latent, fake = latent_and_fake(module)
    real = digits(16)
    partners = torch.roll(real, shifts=1, dims=3)  # each real digit's neighbour: the bar a pixel to the right
    torch.manual_seed(2)
    losses = module.discriminator_step(real, fake, latent, partners)
    train = module.config.train
    paper = (
        losses["loss/d"] + train.lambda_cat * losses["info/categorical"] + train.lambda_cont * losses["info/continuous"]
    )
    assert torch.allclose(losses["total"], paper + 0.5 * losses["improved/real_vat"], rtol=1e-5)
    assert losses["improved/real_vat"] > 0
    # replay the search's random probe: r's norm is a quarter of the bar's distance to its shifted copy
    radius = torch.full((16,), 0.25 * float((real[0] - partners[0]).norm()))
    torch.manual_seed(2)
    logits_of = lambda images: module.model.encode(images).categorical_logits  # noqa: E731
    direct = categorical_virtual_adversarial(logits_of, real, logits_of(real), (10,), radius)
    assert torch.allclose(losses["improved/real_vat"], direct, rtol=1e-4)
    with pytest.raises(InfoGANError, match="real_vat needs each real image's neighbour"):
        module.discriminator_step(real, fake, latent)


def test_the_virtual_adversarial_term_needs_neighbours():
    with pytest.raises(InfoGANError, match="real_vat needs neighbours > 0"):
        only(real_vat=1.0, neighbours=0)


def test_a_teacher_gives_the_consistency_terms_their_target_and_the_live_q_the_rest(monkeypatch):
    config = only(real_consistency=1.0, real_vat=1.0, real_entropy=0.1, real_teacher=True, ema_decay=0.9)
    module = improved_module(config)
    teacher = copy.deepcopy(module.model)
    with torch.no_grad():  # a teacher that reads the real digits otherwise than the live Q does
        for parameter in teacher.q_head.parameters():
            parameter.add_(0.3 * torch.randn_like(parameter))
    monkeypatch.setattr(module, "teacher", lambda: teacher)
    latent, fake = latent_and_fake(module)
    real = digits(16)
    partners = torch.roll(real, shifts=1, dims=3)
    torch.manual_seed(2)
    losses = module.discriminator_step(real, fake, latent, partners)
    assert teacher.training  # read as the evaluation reads it, then left as it was
    with torch.no_grad():
        taught = teacher.eval().encode(real).categorical_logits
    teacher.train()
    live = module.model.encode(real).categorical_logits
    logits_of = lambda images: module.model.encode(images).categorical_logits  # noqa: E731
    radius = torch.full((16,), 0.25 * float((real[0] - partners[0]).norm()))
    torch.manual_seed(2)  # replay T's draws, then the virtual adversarial search's
    moved = logits_of(nuisance(partners, config))
    consistency = categorical_consistency(taught, moved, (10,))
    vat = categorical_virtual_adversarial(logits_of, real, taught, (10,), radius)
    assert torch.allclose(losses["improved/real_consistency"], consistency, rtol=1e-4)
    assert torch.allclose(losses["improved/real_vat"], vat, rtol=1e-4)
    assert not torch.allclose(consistency, categorical_consistency(live, moved, (10,)), rtol=1e-2)
    # the entropies stay the live Q's own
    assert torch.allclose(losses["improved/real_entropy"], categorical_entropies(live, (10,))[0], rtol=1e-4)


def test_a_fit_with_a_teacher_reads_the_moving_average():
    module = improved_module(only(real_consistency=1.0, real_teacher=True, ema_decay=0.9))
    average, read = WeightAverage(0.9), []
    teacher_logits = module.teacher_logits

    def spied(real: torch.Tensor) -> torch.Tensor:
        read.append(module.teacher() is module.model)
        return teacher_logits(real)

    module.teacher_logits = spied
    fit = trainer(callbacks=[average])
    fit.fit(module, datamodule=DeviceImages(random_images(), 64, batches_per_epoch=3, seed=0))
    # the live networks until the average's first update (after the first iteration), then the average's
    assert read == [True, False, False]
    assert module.teacher() is average.averaged_module().model
    assert torch.isfinite(fit.callback_metrics["improved/real_consistency_epoch"])


def test_a_teacher_takes_over_only_after_its_start():
    config = only(real_consistency=1.0, real_teacher=True, real_teacher_start=2, ema_decay=0.9)
    module = improved_module(config)
    teacher_logits, read = module.teacher_logits, []

    def spied(real: torch.Tensor) -> torch.Tensor:
        read.append(module.iteration)
        return teacher_logits(real)

    module.teacher_logits = spied
    fit = trainer(callbacks=[WeightAverage(0.9)])
    fit.fit(module, datamodule=DeviceImages(random_images(), 64, batches_per_epoch=3, seed=0))
    assert read == [3]  # the live Q's targets on iterations 1 and 2, the average's from then on


def test_the_history_holds_each_improved_terms_epoch_mean_and_the_progress_line_leaves_them_out():
    module = improved_module(only(real_consistency=1.0, real_entropy=0.1))
    evaluation, printed = EpochEvaluation(None, None), io.StringIO()
    fit = trainer(callbacks=[evaluation, ProgressLines(evaluation, 64, stream=printed)])
    fit.fit(module, datamodule=DeviceImages(random_images(), 64, batches_per_epoch=2, seed=0))
    (row,) = evaluation.history
    assert {"improved/real_consistency", "improved/real_entropy"} <= set(row)
    assert row["improved/real_entropy"] == pytest.approx(float(fit.callback_metrics["improved/real_entropy_epoch"]))
    assert 0 < row["improved/real_entropy"] <= math.log(10)  # H(c|x) of Q's ten classes, unweighted
    assert "loss/d" in printed.getvalue() and "improved/" not in printed.getvalue()


def test_the_virtual_adversarial_term_starts_only_after_its_start(monkeypatch):
    module = improved_module(only(real_vat=1.0, real_vat_start=2, neighbours=5))
    term, read = training_module.categorical_virtual_adversarial, []

    def spied(*args, **kwargs) -> torch.Tensor:
        read.append(module.iteration)
        return term(*args, **kwargs)

    monkeypatch.setattr(training_module, "categorical_virtual_adversarial", spied)
    logged = []

    def log(losses: Losses, last: bool) -> None:
        logged.append(float(losses.values[losses.keys.index("improved/real_vat")]))

    monkeypatch.setattr(module, "_log_losses", log)
    data = DeviceImages(random_images(), 64, batches_per_epoch=3, seed=0, neighbours=5)
    trainer().fit(module, datamodule=data)
    assert read == [3]  # 0 on iterations 1 and 2, the term from then on
    assert logged[:2] == [0.0, 0.0] and logged[2] > 0  # logged on every iteration


def test_a_virtual_adversarial_start_needs_the_term():
    with pytest.raises(InfoGANError, match="real_vat_start needs real_vat"):
        only(real_vat_start=100)


def test_a_teacher_start_needs_a_teacher():
    with pytest.raises(InfoGANError, match="real_teacher_start needs real_teacher"):
        only(real_consistency=1.0, real_teacher_start=100, ema_decay=0.9)


def test_a_teacher_needs_the_moving_average():
    with pytest.raises(InfoGANError, match="real_teacher needs ema_decay > 0"):
        only(real_consistency=1.0, real_teacher=True, ema_decay=0.0)


def test_continuous_dependence_is_zero_for_independent_codes_and_not_for_a_shear_or_a_rotation():
    torch.manual_seed(0)
    codes = torch.rand(100_000, 2) * 2 - 1  # the uniform prior's codes: independent
    assert float(continuous_dependence(codes)) == pytest.approx(0.0, abs=1e-3)
    # one code's factor leaks into the other's: their values correlate
    sheared = torch.stack([codes[:, 0] + 0.5 * codes[:, 1], codes[:, 1]], 1)
    assert float(continuous_dependence(sheared)) > 0.15
    # a 45-degree rotation of two uniform codes: uncorrelated, and a correlation alone would score it 0, but
    # not independent: the squares correlate (cor(a^2, b^2) = -3/7 for the rotated square, squared 9/49)
    angle = math.pi / 4
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    rotated = codes @ rotation
    centred = rotated - rotated.mean(0)
    assert float(torch.corrcoef(centred.t())[0, 1]) == pytest.approx(0.0, abs=0.01)
    assert float(continuous_dependence(rotated)) == pytest.approx(9 / 49, abs=0.01)
    # three codes: the mean over the three pairs, one of them (c2, c3) the same code twice (1 each moment)
    three = torch.cat([codes[:, :1], codes[:, :1], codes[:, 1:]], 1)
    assert float(continuous_dependence(three)) == pytest.approx(2 / 3, abs=0.01)
    assert float(continuous_dependence(codes[:, :1])) == 0.0  # one code: nothing to be dependent on


def test_continuous_dependence_enters_ds_step_with_its_weight_on_q_of_the_real_batch():
    with_term, without = improved_module(only(real_continuous_dependence=0.5)), improved_module(only())
    real = to_model_range(random_images(16))  # unlike the bar digits, images Q reads differently
    latent, fake = latent_and_fake(with_term)
    losses, paper = (module.discriminator_step(real, fake, latent) for module in (with_term, without))
    term = losses["improved/real_continuous_dependence"]
    assert torch.allclose(losses["total"], paper["total"] + 0.5 * term, rtol=1e-5)
    assert not {"improved/real_consistency", "improved/real_entropy"} & set(losses)
    direct = continuous_dependence(with_term.model.encode(real).continuous_mean)
    assert torch.allclose(term, direct, rtol=1e-4) and direct > 0
    # it is a term of D's step only: G's has none of it
    assert "improved/real_continuous_dependence" not in with_term.generator_step(fake, latent)


def test_class_dependence_singles_out_the_axes_whose_spreads_differ_by_class_where_the_pooled_one_cannot():
    """Two independent uniform factors, the first spread 4 times the second in class 0 and the second 4
    times the first in class 1: over both classes each factor spreads alike, so a 45-degree rotation's
    correlation is 0 there, while within each class it is (16 - 1) / (16 + 1). Within classes the axes
    score the least."""
    torch.manual_seed(0)
    n = 20_000
    classes = torch.arange(2 * n) // n
    spread = torch.tensor([[4.0, 1.0], [1.0, 4.0]])[classes]
    factors = (torch.rand(2 * n, 2) * 2 - 1) * spread
    angle = math.pi / 4
    rotation = torch.tensor([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    rotated = factors @ rotation
    assert float(torch.corrcoef(rotated.t())[0, 1]) == pytest.approx(0.0, abs=0.02)  # pooled: uncorrelated
    within_axes = float(continuous_class_dependence(factors, classes, 2))
    within_rotated = float(continuous_class_dependence(rotated, classes, 2))
    assert within_axes == pytest.approx(0.0, abs=1e-3)
    assert within_rotated > (15 / 17) ** 2  # the values' squared correlation alone, plus the squares' part
    # each class's value weighted by its count; a class of fewer than 3 rows is left out
    unequal = torch.cat((classes[: n // 2], classes[n:]))
    rows = torch.cat((rotated[: n // 2], rotated[n:]))
    expected = (continuous_dependence(rows[: n // 2]) * (n // 2) + continuous_dependence(rows[n // 2 :]) * n) / (
        n + n // 2
    )
    assert float(continuous_class_dependence(rows, unequal, 3)) == pytest.approx(float(expected), rel=1e-5)
    few = torch.cat((rows[:2], rows[n // 2 :]))
    assert float(continuous_class_dependence(few, torch.cat((unequal[:2], unequal[n // 2 :])), 2)) == pytest.approx(
        float(continuous_dependence(rows[n // 2 :])), rel=1e-5
    )


def test_class_dependence_enters_ds_step_with_its_weight_within_qs_own_classes_of_the_real_batch():
    with_term, without = improved_module(only(real_continuous_class_dependence=0.5)), improved_module(only())
    real = to_model_range(random_images(64))
    latent, fake = latent_and_fake(with_term)
    losses, plain = (module.discriminator_step(real, fake, latent) for module in (with_term, without))
    term = losses["improved/real_continuous_class_dependence"]
    assert torch.allclose(losses["total"], plain["total"] + 0.5 * term, rtol=1e-5)
    assert "improved/real_continuous_dependence" not in losses
    q = with_term.model.encode(real)
    classes = q.categorical_logits[:, :10].argmax(dim=1)
    direct = continuous_class_dependence(q.continuous_mean, classes, 10)
    assert torch.allclose(term, direct, rtol=1e-4) and direct > 0
    assert "improved/real_continuous_class_dependence" not in with_term.generator_step(fake, latent)


def test_continuous_marginal_distance_is_zero_for_the_prior_and_a_third_for_an_idle_uniform_code():
    torch.manual_seed(0)
    uniform, gaussian = torch.rand(100_000, 2) * 2 - 1, torch.randn(100_000, 2)
    assert float(continuous_marginal_distance(uniform, "uniform")) == pytest.approx(0.0, abs=1e-3)
    assert float(continuous_marginal_distance(gaussian, "gaussian")) == pytest.approx(0.0, abs=1e-3)
    # a code read as 0 on every image: E[c^2] of the prior, 1/3 for U(-1, 1) and 1 for N(0, 1)
    assert float(continuous_marginal_distance(torch.zeros(1000, 2), "uniform")) == pytest.approx(1 / 3, abs=1e-3)
    assert float(continuous_marginal_distance(torch.zeros(1000, 2), "gaussian")) == pytest.approx(1.0, abs=0.01)
    # one code of two at half its range: E[(c/2)^2] / 2 codes = (1/12) / 2
    halved = torch.stack([uniform[:, 0] / 2, uniform[:, 1]], 1)
    assert float(continuous_marginal_distance(halved, "uniform")) == pytest.approx(1 / 24, abs=1e-3)
    # each code is read alone: reordering one code's values across the images (which changes how the
    # codes pair up, not how either spreads) leaves the distance as it was
    reordered = torch.stack([halved[torch.randperm(len(halved)), 0], halved[:, 1]], 1)
    assert torch.equal(
        continuous_marginal_distance(reordered, "uniform"), continuous_marginal_distance(halved, "uniform")
    )


def test_continuous_marginal_enters_ds_step_with_its_weight_on_q_of_the_real_batch():
    with_term, without = improved_module(only(real_continuous_marginal=0.5)), improved_module(only())
    real = to_model_range(random_images(16))
    latent, fake = latent_and_fake(with_term)
    losses, paper = (module.discriminator_step(real, fake, latent) for module in (with_term, without))
    term = losses["improved/real_continuous_marginal"]
    assert torch.allclose(losses["total"], paper["total"] + 0.5 * term, rtol=1e-5)
    assert "improved/real_continuous_dependence" not in losses
    direct = continuous_marginal_distance(with_term.model.encode(real).continuous_mean, "uniform")
    assert torch.allclose(term, direct, rtol=1e-4) and direct > 0
    # Q, not G, is asked: G's step has none of it
    assert "improved/real_continuous_marginal" not in with_term.generator_step(fake, latent)


def test_continuous_dependence_is_not_computed_with_one_continuous_code():
    torch.manual_seed(0)
    module = InfoGANTraining(
        shipped_model(continuous=1), shipped_train(recipe="improved"), only(real_continuous_dependence=1.0)
    ).train()
    latent, fake = latent_and_fake(module)
    assert "improved/real_continuous_dependence" not in module.discriminator_step(digits(16), fake, latent)


def test_without_real_terms_q_never_sees_the_real_batch():
    """With every real-image weight at 0, Q's head is not run on the real batch, so its batch-norm
    running statistics are those of the fakes alone, as in the paper recipe."""
    config = only()
    improved, paper = improved_module(config), improved_module(config, recipe="paper")
    for module in (improved, paper):
        latent, fake = latent_and_fake(module)
        module.discriminator_step(digits(16), fake, latent)
    assert torch.equal(improved.model.q_head.hidden[1].running_mean, paper.model.q_head.hidden[1].running_mean)


def test_improved_generator_step_puts_the_augmented_term_on_g():
    with_term = improved_module(only(augmented_information=1.0))
    without = improved_module(only())
    grads = []
    for module in (with_term, without):
        latent, fake = latent_and_fake(module)
        torch.manual_seed(3)
        module.generator_step(fake, latent)["total"].backward()
        grads.append(torch.cat([p.grad.flatten() for p in module.model.generator.parameters()]))
    assert not torch.allclose(grads[0], grads[1])


def test_a_zero_weight_term_is_not_computed():
    module = improved_module(only(real_consistency=1.0))
    latent, fake = latent_and_fake(module)
    losses = module.discriminator_step(digits(16), fake, latent)
    assert "improved/augmented_information" not in losses and "improved/real_consistency" in losses


def test_improved_config_survives_a_checkpoint(tmp_path):
    import pytorch_lightning as pl

    config = shipped_improved(real_consistency=0.5, rotation_deg=10.0)
    module = improved_module(config)
    trainer = pl.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    reloaded = InfoGANTraining.load_from_checkpoint(tmp_path / "m.ckpt", weights_only=False)
    assert reloaded.improved == config and reloaded.config.train.recipe == "improved"


@pytest.mark.parametrize("std", ["learned", "fixed"])
def test_q_continuous_std(std):
    module = InfoGANTraining(shipped_model(q_continuous_std=std), shipped_train(recipe="paper")).train()
    q = module.model.encode(digits(4))
    assert q.continuous_mean.shape == q.continuous_log_scale.shape == (4, 2)
    assert module.model.q_head.out.out_features == 10 + 2 * (2 if std == "learned" else 1)
    if std == "fixed":  # std 1 for every image
        assert torch.equal(q.continuous_log_scale, torch.zeros(4, 2))
    else:
        assert q.continuous_log_scale.abs().sum() > 0


def test_fake_class_weight_scales_only_the_categorical_terms_that_teach_q():
    config = only(augmented_information=0.7)
    totals = {}
    for weight in (0.0, 0.5, 1.0):
        module = improved_module(config)
        latent, fake = latent_and_fake(module)
        torch.manual_seed(2)
        losses = module.discriminator_step(digits(16), fake, latent, fake_class_weight=weight)
        optim = module.config.train
        expected = (
            losses["loss/d"]
            + optim.lambda_cont * losses["info/continuous"]
            + weight * (optim.lambda_cat * losses["info/categorical"] + 0.7 * losses["improved/augmented_information"])
        )
        assert torch.allclose(losses["total"], expected, rtol=1e-5)
        totals[weight] = losses["total"]
    assert totals[0.0] < totals[0.5] < totals[1.0]  # the information terms are positive losses


@pytest.mark.parametrize(
    ("warmup", "iteration", "weight"), [(0, 1, 1.0), (4, 1, 0.0), (4, 3, 0.5), (4, 5, 1.0), (4, 9, 1.0)]
)
def test_fake_class_weight_rises_over_the_warmup(monkeypatch, warmup, iteration, weight):
    module = improved_module(shipped_improved(fake_class_warmup=warmup))
    monkeypatch.setattr(InfoGANTraining, "iteration", property(lambda self: iteration))
    assert module.fake_class_weight() == weight


def test_the_paper_recipe_has_no_warmup(monkeypatch):
    module = improved_module(shipped_improved(fake_class_warmup=100), recipe="paper")
    monkeypatch.setattr(InfoGANTraining, "iteration", property(lambda self: 1))
    assert module.fake_class_weight() == 1.0


class CodeProduct(torch.nn.Module):
    """A stand-in generator: a fixed pattern scaled by f(c2, c3), the last two latent columns."""

    def __init__(self, f):
        super().__init__()
        self.f = f
        self.pattern = torch.linspace(-1, 1, 28 * 28).view(1, 1, 28, 28)

    def forward(self, vector: torch.Tensor) -> torch.Tensor:
        return self.f(vector[:, -2], vector[:, -1]).view(-1, 1, 1, 1) * self.pattern


def test_mixed_derivatives_are_zero_for_codes_that_act_apart_and_exact_for_a_product():
    vector = torch.rand(8, 74) * 2 - 1
    apart = CodeProduct(lambda a, b: torch.sin(2 * a) + b**3)  # each code alone: no mixed derivative
    assert float(continuous_mixed_derivatives(code_effects(apart, vector, 2))) == pytest.approx(0.0, abs=1e-6)
    product = CodeProduct(lambda a, b: a * b)  # d2/(da db) = 1 everywhere: the pattern itself
    expected = float(product.pattern.square().mean())
    assert float(continuous_mixed_derivatives(code_effects(product, vector.double(), 2))) == pytest.approx(
        expected, rel=1e-6
    )
    mixed = CodeProduct(lambda a, b: torch.tanh(2 * (a + b)))  # one factor turned by both codes
    assert float(continuous_mixed_derivatives(code_effects(mixed, vector, 2))) > 0.1


class ThirdsWithAProduct(torch.nn.Module):
    """A stand-in generator: c2 = a darkens the left third, c3 = b the middle third scaled by `scale`,
    and their product a * b the right third scaled by `scale`: a second code weakened as a whole."""

    def __init__(self, scale: float):
        super().__init__()
        self.scale = scale

    def forward(self, vector: torch.Tensor) -> torch.Tensor:
        a, b = vector[:, -2].view(-1, 1, 1, 1), vector[:, -1].view(-1, 1, 1, 1)
        images = vector.new_zeros(vector.shape[0], 1, 28, 27)
        images[..., :9], images[..., 9:18], images[..., 18:] = a, self.scale * b, self.scale * a * b
        return images


def test_relative_mixed_derivatives_are_zero_for_codes_apart_and_not_lowered_by_a_weaker_code():
    vector = (torch.rand(8, 74) * 2 - 1).double()
    apart = CodeProduct(lambda a, b: torch.sin(2 * a) + b**3)
    assert float(continuous_mixed_derivatives(code_effects(apart, vector, 2), relative=True)) == pytest.approx(
        0.0, abs=1e-6
    )
    a2, b2 = float(vector[:, -2].square().mean()), float(vector[:, -1].square().mean())
    plain, relative = {}, {}
    for scale in (1.0, 0.1):
        generator = ThirdsWithAProduct(scale)
        plain[scale] = float(continuous_mixed_derivatives(code_effects(generator, vector, 2)))
        relative[scale] = float(
            continuous_mixed_derivatives(code_effects(generator, vector, 2), relative=True, floor=0.0)
        )
        # each third is a third of the pixels: mixed = s on the right; d/da = 1 left, s b right;
        # d/db = s middle, s a right
        expected = (scale**2 / 3) / ((1 + scale**2 * b2) / 3 * (scale**2 + scale**2 * a2) / 3)
        assert relative[scale] == pytest.approx(expected, rel=1e-6)
    assert plain[0.1] == pytest.approx(plain[1.0] / 100, rel=1e-6)  # the plain term is paid by a weaker code
    assert relative[0.1] > relative[1.0]  # this one is not
    floored = float(continuous_mixed_derivatives(code_effects(ThirdsWithAProduct(0.1), vector, 2), relative=True))
    assert floored == pytest.approx(plain[0.1] / ((1 + 0.01 * b2) / 3 + 1e-3) / (0.01 * (1 + a2) / 3 + 1e-3), rel=1e-6)
    nothing = CodeProduct(lambda a, b: 0 * a * b)  # codes that do nothing: 0, not 0 / 0
    assert float(continuous_mixed_derivatives(code_effects(nothing, vector, 2), relative=True)) == 0.0


class TwoPatterns(torch.nn.Module):
    """A stand-in generator: c2 scales one pattern and c3 another, the last two latent columns."""

    def __init__(self, first: torch.Tensor, second: torch.Tensor):
        super().__init__()
        self.first, self.second = first.view(1, 1, 28, 28), second.view(1, 1, 28, 28)

    def forward(self, vector: torch.Tensor) -> torch.Tensor:
        c2, c3 = vector[:, -2].view(-1, 1, 1, 1), vector[:, -1].view(-1, 1, 1, 1)
        return torch.tanh(c2) * self.first + c3**3 * self.second


def test_effect_overlap_is_zero_for_codes_that_move_different_pixels_and_one_for_the_same_change():
    vector = torch.rand(8, 74, dtype=torch.float64) * 2 - 1
    left, right = torch.zeros(28, 28, dtype=torch.float64), torch.zeros(28, 28, dtype=torch.float64)
    left[:, :14], right[:, 14:] = 1.0, 1.0
    assert float(continuous_effect_overlap(code_effects(TwoPatterns(left, right), vector, 2))) == pytest.approx(
        0.0, abs=1e-12
    )
    # the same change, in opposite directions and by different amounts: cos^2 is 1 whatever the sign or size
    assert float(continuous_effect_overlap(code_effects(TwoPatterns(left, -3 * left), vector, 2))) == pytest.approx(
        1.0, rel=1e-5
    )
    # half shared: 18 columns each, 9 of them the same, meet at cos 1/2
    first, second = torch.zeros(28, 28, dtype=torch.float64), torch.zeros(28, 28, dtype=torch.float64)
    first[:, :18], second[:, 9:27] = 1.0, 1.0
    assert float(continuous_effect_overlap(code_effects(TwoPatterns(first, second), vector, 2))) == pytest.approx(
        0.25, rel=1e-5
    )


class GatedSecond(torch.nn.Module):
    """A stand-in generator: c2 lights the left half, and the right half by c2 * c3, so that c2's change
    depends on c3 everywhere but at c3 = 0, where it is TwoPatterns(left, right)'s."""

    def __init__(self, left: torch.Tensor, right: torch.Tensor):
        super().__init__()
        self.left, self.right = left.view(1, 1, 28, 28), right.view(1, 1, 28, 28)

    def forward(self, vector: torch.Tensor) -> torch.Tensor:
        c2, c3 = vector[:, -2].view(-1, 1, 1, 1), vector[:, -1].view(-1, 1, 1, 1)
        return c2 * self.left + c2 * c3 * self.right


def test_effect_drift_asks_nothing_of_a_codes_size_and_counts_how_far_its_change_turned():
    vector = torch.rand(8, 74, dtype=torch.float64) * 2 - 1
    left, right = torch.zeros(28, 28, dtype=torch.float64), torch.zeros(28, 28, dtype=torch.float64)
    left[:, :12], right[:, 16:] = 1.0, 1.0  # three 4-pixel blocks a row each, apart
    held = TwoPatterns(left, right)
    # c2 makes the same change three times as large, and c3 another: c2 has not turned
    assert float(continuous_effect_drift(TwoPatterns(3 * left, -right), held, vector, 2, 1, 4)) == pytest.approx(
        0.0,
        abs=1e-6,  # the changes are taken in float
    )
    # half of c2's change moved to the other half of the image: 1 - cos 45 degrees
    turned = TwoPatterns(left + right, right)
    assert float(continuous_effect_drift(turned, held, vector, 2, 1, 4)) == pytest.approx(1 - 0.5**0.5, rel=1e-6)
    # with both codes held, c3's change reversed adds 1 - cos 180 degrees = 2 to the mean: (0.29 + 2) / 2
    both = float(continuous_effect_drift(TwoPatterns(left + right, -right), held, vector, 2, 2, 4))
    assert both == pytest.approx((1 - 0.5**0.5 + 2) / 2, rel=1e-6)
    assert float(continuous_effect_drift(turned, held, vector, 2, 0, 4)) == 0.0  # no code held yet


def test_effect_drift_reads_the_held_codes_with_the_later_ones_at_0_as_the_copy_trained():
    """The copy was taken before c3 started: it never learned c3, so c2's changes are compared at c3 = 0."""
    vector = torch.rand(8, 74, dtype=torch.float64) * 2 - 1
    vector[:, -1] = 1.0  # c3 drawn far from 0: G's change of c2 there is both halves
    left, right = torch.zeros(28, 28, dtype=torch.float64), torch.zeros(28, 28, dtype=torch.float64)
    left[:, :14], right[:, 14:] = 1.0, 1.0
    drift = continuous_effect_drift(GatedSecond(left, right), TwoPatterns(left, right), vector, 2, 1, 4)
    assert float(drift) == pytest.approx(0.0, abs=1e-6)


class SharedChange(torch.nn.Module):
    """A stand-in generator: c2 lights the image's left half and c3 its right half plus `share` of c2's
    change, the same way at every latent, or with `turning` that share's sign following the first noise
    variable. The two codes' changes meet at cos share / sqrt(1 + share^2) wherever the share is made."""

    def __init__(self, share: float, turning: bool = False) -> None:
        super().__init__()
        self.share, self.turning = share, turning
        self.left, self.right = (
            torch.zeros(1, 1, 28, 28, dtype=torch.float64),
            torch.zeros(1, 1, 28, 28, dtype=torch.float64),
        )
        self.left[..., :14], self.right[..., 14:] = 1.0, 1.0

    def forward(self, vector: torch.Tensor) -> torch.Tensor:
        sign = torch.sign(vector[:, :1]) if self.turning else torch.ones_like(vector[:, :1])
        c2, c3 = vector[:, -2:-1], vector[:, -1:]
        return (c2 + self.share * sign * c3).view(-1, 1, 1, 1) * self.left + c3.view(-1, 1, 1, 1) * self.right


def test_a_shared_effect_counts_an_overlap_made_the_same_way_and_not_one_that_turns_from_latent_to_latent():
    """c3 makes a quarter of c2's change beside its own: the same way at every latent, the term is the
    cosine itself (where cos^2 is its square); with the quarter's sign following a noise variable, the
    overlaps cancel and the term falls, while cos^2 stays."""
    torch.manual_seed(0)
    vector = torch.rand(64, 74, dtype=torch.float64) * 2 - 1
    cos = 0.25 / math.sqrt(1 + 0.25**2)
    steady, turning = SharedChange(0.25), SharedChange(0.25, turning=True)
    assert float(continuous_shared_effect(code_effects(steady, vector, 2))) == pytest.approx(cos, rel=1e-5)
    assert float(continuous_effect_overlap(code_effects(steady, vector, 2))) == pytest.approx(cos**2, rel=1e-5)
    signs = torch.sign(vector[:, 0])
    assert float(continuous_shared_effect(code_effects(turning, vector, 2))) == pytest.approx(
        cos * float(signs.mean().abs()), rel=1e-5
    )
    assert float(continuous_effect_overlap(code_effects(turning, vector, 2))) == pytest.approx(cos**2, rel=1e-5)
    assert float(continuous_shared_effect(code_effects(steady, vector, 2, started=1))) == 0.0  # one code: no pair


def test_effect_overlap_averages_over_every_pair_of_three_codes():
    class Three(torch.nn.Module):
        def forward(self, vector: torch.Tensor) -> torch.Tensor:
            images = torch.zeros(vector.shape[0], 1, 28, 28, dtype=vector.dtype)
            images[:, 0, :, :14] = (vector[:, -3] + vector[:, -2]).view(-1, 1, 1)  # c2 and c3: the same change
            images[:, 0, :, 14:] = vector[:, -1].view(-1, 1, 1)  # c4 alone
            return images

    vector = torch.rand(4, 75, dtype=torch.float64) * 2 - 1
    # pairs (c2, c3), (c2, c4), (c3, c4): cos^2 1, 0, 0
    assert float(continuous_effect_overlap(code_effects(Three(), vector, 3))) == pytest.approx(1 / 3, rel=1e-5)


def test_the_terms_between_codes_compare_only_the_codes_started():
    """With a stagger, a code not started is held at 0: its effect is not kept apart from the others'."""
    vector = torch.rand(4, 75, dtype=torch.float64) * 2 - 1

    class Three(torch.nn.Module):
        def forward(self, vector: torch.Tensor) -> torch.Tensor:
            images = torch.zeros(vector.shape[0], 1, 28, 28, dtype=vector.dtype)
            images[:, 0, :, :14] = (vector[:, -3] + vector[:, -1]).view(-1, 1, 1)  # c2 and c4: the same change
            images[:, 0, :, 14:] = (vector[:, -2] * vector[:, -1]).view(-1, 1, 1)  # c3 times c4: mixed
            return images

    for term in (continuous_effect_overlap, continuous_mixed_derivatives):
        assert float(term(code_effects(Three(), vector, 3, started=1))) == 0.0  # one code: no pair
        kept_apart = term(code_effects(Three(), vector, 3, started=2))
        assert float(kept_apart) == pytest.approx(0.0, abs=1e-9)  # c2, c3 kept apart
        assert float(term(code_effects(Three(), vector, 3))) > 0.1  # c4 shares c2's change and mixes with c3


class ClassTurned(torch.nn.Module):
    """A stand-in generator: c2 moves ink from the image's left half to its right half; for the classes
    in `turned` it moves it the other way turned by `angle` (radians) toward moving it from the top
    half to the bottom (pi / 2: across, not opposite). c3 darkens the top half for every class."""

    def __init__(self, turned: tuple[int, ...], angle: float = 0.0):
        super().__init__()
        self.turned, self.angle = torch.tensor(turned, dtype=torch.long), torch.nn.Parameter(torch.tensor(angle))

    def forward(self, vector: torch.Tensor) -> torch.Tensor:
        classes = vector[:, 62:72].argmax(dim=1)
        turned = torch.isin(classes, self.turned).view(-1, 1, 1, 1)
        c2 = vector[:, -2].view(-1, 1, 1, 1)
        columns = torch.cat((-torch.ones(14), torch.ones(14))).to(vector.dtype)
        sideways, downwards = columns.view(1, 1, 1, 28), columns.view(1, 1, 28, 1)
        angle = self.angle.to(vector.dtype)
        pattern = torch.where(turned, -torch.cos(angle) * sideways + torch.sin(angle) * downwards, sideways)
        images = (c2 * pattern).expand(-1, 1, 28, 28).clone()
        images[:, 0, :14, :] += vector[:, -1].view(-1, 1, 1) ** 3
        return images


def test_class_disagreement_is_zero_for_a_code_shared_by_every_class_and_one_where_it_reverses():
    codes = improved_module(only()).model.codes
    torch.manual_seed(4)
    latent = codes.sample(200)
    other = codes.other_class(latent)
    vector, moved = latent.vector.double(), other.vector.double()
    agreeing = continuous_class_disagreement(code_effects(ClassTurned(()), torch.stack((vector, moved)), 2))
    assert float(agreeing) == pytest.approx(0.0, abs=1e-9)
    # c2 turns the 1s the other way: a row counts 1 (of c2's and c3's two) where exactly one of its two classes is a 1
    one_side = (latent.categorical[:, 0] == 1) ^ (other.categorical[:, 0] == 1)
    reversed_ones = continuous_class_disagreement(code_effects(ClassTurned((1,)), torch.stack((vector, moved)), 2))
    assert float(reversed_ones) == pytest.approx(float(one_side.double().mean()) / 2, rel=1e-6)
    assert 0 < float(one_side.double().mean()) < 0.4
    # a code that moves the 1s' ink another way, but not the opposite way, costs nothing
    across = continuous_class_disagreement(
        code_effects(ClassTurned((1,), angle=math.pi / 2), torch.stack((vector, moved)), 2)
    )
    assert float(across) == pytest.approx(0.0, abs=1e-6)
    # partly opposite: G learns to turn the 1s' effect away from the others' opposite
    generator = ClassTurned((1,), angle=0.3)
    partly = continuous_class_disagreement(code_effects(generator, torch.stack((vector, moved)), 2))
    assert 0 < float(partly) < float(reversed_ones)
    partly.backward()
    assert float(generator.angle.grad) < 0


def test_another_class_moves_every_categorical_code_and_keeps_z_and_the_continuous_codes():
    codes = improved_module(only()).model.codes
    torch.manual_seed(5)
    latent = codes.sample(500)
    other = codes.other_class(latent)
    assert (other.categorical != latent.categorical).all()
    assert set(((other.categorical - latent.categorical) % 10).flatten().tolist()) == set(range(1, 10))
    assert torch.equal(other.vector[:, : codes.noise_dim], latent.vector[:, : codes.noise_dim])
    assert torch.equal(other.continuous, latent.continuous)
    rebuilt = codes.assemble(latent.vector[:, : codes.noise_dim], other.categorical, latent.continuous)
    assert torch.equal(rebuilt.vector, other.vector)


def test_the_generator_step_pays_class_agreement_only_when_asked():
    off = improved_module(only())
    latent, fake = latent_and_fake(off)
    assert "improved/continuous_class_agreement" not in off.generator_step(fake, latent)
    on = improved_module(only(continuous_class_agreement=2.0))
    latent, fake = latent_and_fake(on)
    plain = improved_module(only()).generator_step(fake.detach(), latent)
    on.model.generator = ClassTurned((1,))  # the term's own passes: a G that turns the 1s the other way
    losses = on.generator_step(fake, latent)
    value = float(losses["improved/continuous_class_agreement"].detach())
    assert 0 < value <= 0.5  # c2 opposes on the rows with a 1 on one side, c3 nowhere
    # the block size reaches the term: over 28x28 blocks c2's left-to-right move averages away
    whole = improved_module(only(continuous_class_agreement=2.0, continuous_class_agreement_pool=28))
    whole.model.generator = ClassTurned((1,))
    torch.manual_seed(7)  # the other classes are drawn alike for the step and for the direct call
    stepped = float(whole.generator_step(fake, latent)["improved/continuous_class_agreement"])
    torch.manual_seed(7)
    other = whole.model.codes.other_class(latent)
    direct = continuous_class_disagreement(
        code_effects(whole.model.generator, torch.stack((latent.vector, other.vector)), 2), pool=28
    )
    assert stepped == pytest.approx(float(direct), rel=1e-6)
    assert stepped < value / 10
    assert float(losses["total"].detach()) == pytest.approx(float(plain["total"].detach()) + 2.0 * value, rel=1e-4)


def test_a_staggered_generator_step_pays_the_terms_between_codes_only_once_two_have_started():
    keys = ("continuous_orthogonal", "continuous_hessian", "continuous_hessian_relative", "continuous_shared_effect")
    module = improved_module(only(continuous_stagger=500, **dict.fromkeys(keys, 1.0)))
    latent, fake = latent_and_fake(module)
    module.continuous_started = 1
    early = module.generator_step(fake, latent)
    assert all(float(early[f"improved/{key}"]) == 0.0 for key in keys)  # logged, so every iteration has its keys
    module.continuous_started = 2
    later = module.generator_step(fake, latent)
    assert all(float(later[f"improved/{key}"].detach()) > 0 for key in keys)


def test_the_terms_on_the_codes_effects_share_one_generator_pass():
    """The Hessian penalty, the orthogonal term and the class term read one generator call: the four
    corners of the one pair of codes, at the first `improved.continuous_rows` latents (12 here, not
    the shipped 32) and at them drawn as another class; with one code started, its two steps; with
    none, no call."""
    keys = ("continuous_hessian_relative", "continuous_orthogonal", "continuous_class_agreement")
    rows = 12
    module = improved_module(only(continuous_stagger=500, continuous_rows=rows, **dict.fromkeys(keys, 1.0)))
    latent = module.model.codes.sample(rows + 8)
    calls = []
    module.model.generator.register_forward_hook(lambda _, inputs, __: calls.append(inputs[0].shape[0]))
    for started, passes in ((2, 4), (1, 2)):
        calls.clear()
        module.continuous_started = started
        terms = module.code_effect_terms(latent)
        assert set(terms) == set(keys)
        assert calls == [2 * passes * rows]
    calls.clear()
    module.continuous_started = 0
    assert all(float(value) == 0.0 for _, value in module.code_effect_terms(latent).values())
    assert calls == []


def test_a_slope_is_the_mean_over_the_pairs_its_code_is_in():
    """Each pair's corners give both its codes' slopes; with three codes each code is in two pairs."""

    class Curved(torch.nn.Module):  # c2 * c3 on the left half, c4 ** 2 on the right: slopes c3, c2 and 2 c4
        def forward(self, vector: torch.Tensor) -> torch.Tensor:
            images = torch.zeros(vector.shape[0], 1, 28, 28, dtype=vector.dtype)
            images[:, 0, :, :14] = (vector[:, -3] * vector[:, -2]).view(-1, 1, 1)
            images[:, 0, :, 14:] = vector[:, -1].square().view(-1, 1, 1)
            return images

    vector = torch.rand(4, 75, dtype=torch.float64) * 2 - 1
    effects = code_effects(Curved(), vector, 3)
    assert effects.pairs == [(0, 1), (0, 2), (1, 2)]
    assert effects.slopes.shape == (1, 3, 4, 1, 28, 28)
    left, right = slice(None, 14), slice(14, None)
    for code, (slope, half) in enumerate(((vector[:, -2], left), (vector[:, -3], left), (2 * vector[:, -1], right))):
        expected = slope.view(-1, 1, 1).expand(-1, 28, 14)
        assert torch.allclose(effects.slopes[0, code, :, 0, :, half], expected, atol=1e-9)
    assert torch.allclose(effects.mixed[0, 0, :, 0, :, :14], torch.ones(4, 28, 14, dtype=torch.float64))
    assert float(effects.mixed[0, 1:].abs().max()) == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("key", "largest"),
    [
        ("continuous_hessian", math.inf),
        ("continuous_hessian_relative", math.inf),
        ("continuous_orthogonal", 1.0),
        ("continuous_shared_effect", 1.0),
    ],
)
def test_the_generator_step_adds_a_weighted_term_between_continuous_codes_only_when_asked(key, largest):
    off = improved_module(only())
    latent, fake = latent_and_fake(off)
    assert f"improved/{key}" not in off.generator_step(fake, latent)
    on = improved_module(only(**{key: 0.5}))
    latent, fake = latent_and_fake(on)
    losses = on.generator_step(fake, latent)
    measured = float(losses[f"improved/{key}"].detach())
    assert 0 < measured <= largest
    plain = improved_module(only()).generator_step(fake, latent)["total"]
    assert float(losses["total"].detach()) == pytest.approx(float(plain) + 0.5 * measured, rel=1e-5)
    losses["total"].backward()  # the term reaches G's weights
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in on.model.generator.parameters())


def test_read_noise_replaces_the_continuous_information_g_is_paid_with_q_reading_noisy_fakes():
    lambda_cont = shipped_train().lambda_cont
    off, on = improved_module(only()), improved_module(only(continuous_read_noise=0.5))
    latent, fake = latent_and_fake(on)
    assert "improved/continuous_read_noise_g" not in off.generator_step(fake, latent)
    clean = on.information_loss(on.model.encode(fake), latent).continuous
    torch.manual_seed(5)
    losses = on.generator_step(fake, latent)
    torch.manual_seed(5)  # the same noise, drawn here by hand
    noisy_fake = fake + 0.5 * torch.randn_like(fake)
    by_hand = on.information_loss(on.model.encode(noisy_fake), latent).continuous
    noisy = losses["improved/continuous_read_noise_g"]
    assert torch.allclose(noisy, by_hand, rtol=1e-5) and not torch.allclose(noisy, clean, rtol=1e-3)
    # the clean reading is gone from G's total, the noisy one in its place
    plain = off.generator_step(fake, latent)["total"]
    expected = float(plain.detach()) + lambda_cont * float((noisy - clean).detach())
    assert float(losses["total"].detach()) == pytest.approx(expected, rel=1e-5)
    losses["total"].backward()  # the noisy reading reaches G's weights
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in on.model.generator.parameters())


def test_read_noise_near_zero_reads_the_clean_fakes():
    on = improved_module(only(continuous_read_noise=1e-6))
    latent, fake = latent_and_fake(on)
    clean = on.information_loss(on.model.encode(fake), latent).continuous
    assert torch.allclose(on.generator_step(fake, latent)["improved/continuous_read_noise_g"], clean, rtol=1e-4)


def test_read_noise_adds_q_reading_noisy_fakes_to_ds_step_beside_the_clean_one():
    lambda_cont = shipped_train().lambda_cont
    off, on = improved_module(only()), improved_module(only(continuous_read_noise=0.5))
    real = to_model_range(random_images(16))
    latent, fake = latent_and_fake(on)
    losses, plain = on.discriminator_step(real, fake, latent), off.discriminator_step(real, fake, latent)
    noisy = losses["improved/continuous_read_noise_d"]
    assert "improved/continuous_read_noise_d" not in plain
    # the clean term stays (Q still learns to read clean fakes) and the noisy one is added
    assert torch.allclose(losses["info/continuous"], plain["info/continuous"])
    assert torch.allclose(losses["total"], plain["total"] + lambda_cont * noisy, rtol=1e-5)
    losses["total"].backward()  # it teaches Q, through the trunk and Q's head, and never G (its fakes are detached)
    assert on.model.q_head.out.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in on.model.generator.parameters())


def test_a_redrawn_latent_keeps_z_the_class_and_one_started_code_and_draws_the_other_started_codes_anew():
    codes = improved_module(only()).model.codes
    torch.manual_seed(3)
    latent = codes.sample(400)
    moved, kept = codes.redraw_other_continuous(latent, started=2)
    assert codes.n_continuous == 2 and set(kept.tolist()) == {0, 1}
    assert torch.equal(moved.vector[:, : codes.noise_dim], latent.vector[:, : codes.noise_dim])
    assert torch.equal(moved.categorical, latent.categorical)
    same = moved.continuous == latent.continuous  # (B, 2)
    assert same[kept == 0, 0].all() and same[kept == 1, 1].all()
    assert not same[kept == 0, 1].any() and not same[kept == 1, 0].any()
    rebuilt = codes.assemble(moved.vector[:, : codes.noise_dim], moved.categorical, moved.continuous)
    assert torch.equal(rebuilt.vector, moved.vector)
    # with a stagger, a code not started yet stays held at 0
    held = codes.hold_continuous(latent, 1)
    moved, kept = codes.redraw_other_continuous(held, started=1)
    assert (kept == 0).all() and torch.equal(moved.vector, held.vector)


def test_the_cross_reading_is_zero_for_readers_of_each_code_alone_and_sees_a_code_read_through_another():
    codes = improved_module(only()).model.codes  # the uniform prior: each code's variance 1/3
    torch.manual_seed(4)
    latent = codes.sample(20_000)
    moved, kept = codes.redraw_other_continuous(latent, started=2)
    assert continuous_cross_reading(latent.continuous, moved.continuous, kept) == 0
    # a reader of c3 that adds 0.3 of c2: rows that keep c3 move by 0.3 times c2's change (variance 2/3)
    share = torch.tensor([[1.0, 0.0], [0.3, 1.0]])
    read, read_moved = latent.continuous @ share.t(), moved.continuous @ share.t()
    expected = 0.5 * 0.3**2 * 2 / 3  # half the rows keep c3
    assert float(continuous_cross_reading(read, read_moved, kept)) == pytest.approx(expected, rel=0.05)


def test_the_cross_reading_teaches_q_in_ds_step_once_two_codes_have_started_and_never_g():
    off, on = improved_module(only()), improved_module(only(continuous_cross_reading=2.0))
    real = to_model_range(random_images(16))
    latent, fake = latent_and_fake(on)
    assert "improved/continuous_cross_reading" not in off.discriminator_step(real, fake, latent)
    on.continuous_started = 1  # c3 held: no other code to move, so nothing to read apart
    assert float(on.discriminator_step(real, fake, latent)["improved/continuous_cross_reading"]) == 0
    on.continuous_started = off.continuous_started = 2
    torch.manual_seed(6)
    losses = on.discriminator_step(real, fake, latent)
    torch.manual_seed(6)
    plain = off.discriminator_step(real, fake, latent)
    cross = losses["improved/continuous_cross_reading"]
    assert float(cross.detach()) > 0
    assert float(losses["total"].detach()) == pytest.approx(
        float(plain["total"].detach()) + 2.0 * float(cross.detach()), rel=1e-5
    )
    losses["total"].backward()
    assert on.model.q_head.out.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in on.model.generator.parameters())
    assert "improved/continuous_cross_reading" not in on.generator_step(fake, latent)


def test_a_partner_keeps_exactly_one_code_and_draws_z_and_the_others_anew():
    codes = improved_module(only()).model.codes
    torch.manual_seed(3)
    latent = codes.sample(400)
    partner, kept = codes.share_one_code(latent)
    assert codes.n_codes == 3 and set(kept.tolist()) == {0, 1, 2}  # c1 (categorical), c2, c3
    same_class = partner.categorical[:, 0] == latent.categorical[:, 0]
    same_values = partner.continuous == latent.continuous  # (B, 2)
    assert same_class[kept == 0].all() and same_values[kept == 1, 0].all() and same_values[kept == 2, 1].all()
    assert (
        not same_values[kept == 0].any() and not same_values[kept == 1, 1].any() and not same_values[kept == 2, 0].any()
    )
    assert same_class[kept != 0].float().mean() < 0.2  # a new class, which is the old one a tenth of the time
    assert not (partner.vector[:, : codes.noise_dim] == latent.vector[:, : codes.noise_dim]).any()
    rebuilt = codes.assemble(partner.vector[:, : codes.noise_dim], partner.categorical, partner.continuous)
    assert torch.equal(rebuilt.vector, partner.vector)


def test_a_continuous_only_partner_keeps_one_continuous_code_and_never_the_class():
    codes = improved_module(only()).model.codes
    torch.manual_seed(3)
    latent = codes.sample(400)
    partner, kept = codes.share_one_code(latent, continuous_only=True)
    assert set(kept.tolist()) == {0, 1}  # c2, c3: indices among the continuous codes
    same_values = partner.continuous == latent.continuous  # (B, 2)
    assert same_values[kept == 0, 0].all() and same_values[kept == 1, 1].all()
    assert not same_values[kept == 0, 1].any() and not same_values[kept == 1, 0].any()
    same_class = partner.categorical[:, 0] == latent.categorical[:, 0]
    assert 0.05 < same_class.float().mean() < 0.2  # the class drawn anew: the old one about a tenth of the time


def test_the_pair_head_has_one_logit_per_code_a_pair_may_share():
    every = improved_module(only(contrastive=0.5))
    continuous = improved_module(only(contrastive=0.5, contrastive_codes="continuous"))
    assert every.pair_head.linear.out_features == 3 and continuous.pair_head.linear.out_features == 2
    latent, fake = latent_and_fake(continuous, batch=80)
    partners, kept = continuous.contrastive_pairs(latent)
    assert set(kept.tolist()) == {0, 1} and torch.isfinite(continuous.contrastive_loss(fake, partners, kept))


def test_the_contrastive_term_is_built_only_when_asked_and_leaves_the_model_as_it_was():
    off, on = improved_module(only()), improved_module(only(contrastive=0.5))
    for (name, a), b in zip(off.model.state_dict().items(), on.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), name  # the same initial weights: the pair head is built after the model
    assert not any(key.startswith("pair_head") for key in off.state_dict())
    assert on.pair_head is not None and any(key.startswith("pair_head") for key in on.state_dict())
    assert off.pair_head is None and off.contrastive_pairs(latent_and_fake(off)[0]) is None


def test_both_steps_add_the_weighted_pair_heads_cross_entropy():
    module = improved_module(only(contrastive=0.5))
    latent, fake = latent_and_fake(module, batch=80)
    torch.manual_seed(4)
    pairs = module.contrastive_pairs(latent)
    partners, kept = pairs
    assert partners.shape == (64, 1, 28, 28) and kept.shape == (64,)  # CONTRASTIVE_ROWS of the 80
    logits = module.pair_head(fake[:64], partners)
    expected = F.cross_entropy(logits, kept)
    d_plain = module.discriminator_step(digits(80), fake, latent)
    d_losses = module.discriminator_step(digits(80), fake, latent, pairs=pairs)
    assert float(d_losses["improved/contrastive_d"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    d_total = float(d_plain["total"].detach()) + 0.5 * float(expected.detach())
    assert float(d_losses["total"].detach()) == pytest.approx(d_total, rel=1e-5)
    g_plain = module.generator_step(fake, latent)
    g_losses = module.generator_step(fake, latent, pairs)
    assert float(g_losses["improved/contrastive_g"].detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    g_total = float(g_plain["total"].detach()) + 0.5 * float(expected.detach())
    assert float(g_losses["total"].detach()) == pytest.approx(g_total, rel=1e-5)
    module.zero_grad()
    g_losses["improved/contrastive_g"].backward()  # in G's step the term reaches G through both images
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in module.model.generator.parameters())


def test_before_contrastive_start_g_is_not_paid_the_term_but_it_is_logged():
    module = improved_module(only(contrastive=0.5, contrastive_start=300))
    assert [module.pays_contrastive(i) for i in (1, 300, 301)] == [False, False, True]
    assert not improved_module(only(contrastive=0.0, contrastive_start=300)).pays_contrastive(301)  # no term
    latent, fake = latent_and_fake(module, batch=80)
    pairs = module.contrastive_pairs(latent)
    unpaid = module.generator_step(fake, latent, pairs, contrastive_paid=False)
    paid = module.generator_step(fake, latent, pairs)
    plain = module.generator_step(fake, latent)
    expected = F.cross_entropy(module.pair_head(fake[:64], pairs[0]), pairs[1])
    assert float(unpaid["improved/contrastive_g"]) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert not unpaid["improved/contrastive_g"].requires_grad
    assert float(unpaid["total"].detach()) == pytest.approx(float(plain["total"].detach()), rel=1e-6)
    paid_total = float(plain["total"].detach()) + 0.5 * float(expected.detach())
    assert float(paid["total"].detach()) == pytest.approx(paid_total, rel=1e-5)


def test_the_pair_head_learns_with_ds_optimizer_and_a_fit_with_the_term_stays_finite():
    module = improved_module(only(contrastive=1.0, augmented_information=1.0, real_consistency=1.0))
    opt_d, _ = module.configure_optimizers()
    in_d = {id(p) for group in opt_d.param_groups for p in group["params"]}
    assert all(id(p) in in_d for p in module.pair_head.parameters())
    before = [p.detach().clone() for p in module.pair_head.parameters()]
    fit = trainer()  # test_module's: one epoch, quiet
    fit.fit(module, datamodule=DeviceImages(random_images(), 64, batches_per_epoch=2, seed=0))
    assert any(not torch.equal(a, b) for a, b in zip(before, module.pair_head.parameters(), strict=True))
    for key in ("improved/contrastive_d_epoch", "improved/contrastive_g_epoch"):
        assert torch.isfinite(fit.callback_metrics[key]), key


def test_a_weight_ratio_weighs_each_continuous_codes_information_by_its_power_in_both_steps():
    """c2's term weighs lambda_cont, c3's lambda_cont * ratio; ratio 1 is the plain sum."""
    plain = improved_module(only())
    latent, fake = latent_and_fake(plain)
    lambda_cont = plain.config.train.lambda_cont
    ratio = improved_module(only(continuous_weight_ratio=0.25))
    assert plain.continuous_weights is None and ratio.continuous_weights.tolist() == [1.0, 0.25]
    with torch.no_grad():
        info = plain.information_loss(plain.model.q_head(plain.model.trunk(fake)), latent)
    c2, c3 = info.continuous_each.tolist()
    assert float(info.continuous) == pytest.approx(c2 + c3, rel=1e-6)
    assert c3 != pytest.approx(c2, rel=1e-3)  # so that a weight on the wrong code would show
    shift = lambda_cont * (0.25 - 1) * c3  # what the ratio takes off c3's term
    for step in ("generator_step", "discriminator_step"):
        args = (fake, latent) if step == "generator_step" else (digits(16), fake, latent)
        expected = float(getattr(plain, step)(*args)["total"].detach()) + shift
        assert float(getattr(ratio, step)(*args)["total"].detach()) == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert "continuous_weights" not in ratio.state_dict()  # a hyperparameter: checkpoints stay as they were


@pytest.mark.parametrize(
    ("stagger", "iteration", "started"), [(0, 1, 2), (300, 1, 1), (300, 300, 1), (300, 301, 2), (300, 10_000, 2)]
)
def test_a_stagger_starts_each_continuous_code_after_its_share_of_iterations(stagger, iteration, started):
    assert improved_module(only(continuous_stagger=stagger)).started_continuous(iteration) == started


@pytest.mark.parametrize(
    ("start", "stagger", "iteration", "started"),
    [(200, 0, 200, 0), (200, 0, 201, 2), (200, 300, 1, 0), (200, 300, 201, 1), (200, 300, 500, 1), (200, 300, 501, 2)],
)
def test_a_start_holds_every_continuous_code_until_it_and_the_stagger_counts_from_it(
    start, stagger, iteration, started
):
    module = improved_module(only(continuous_start=start, continuous_stagger=stagger))
    assert module.started_continuous(iteration) == started


def test_with_no_code_started_no_continuous_term_is_paid_and_every_logged_term_is_finite():
    """Before `continuous_start`, the steps' totals are those of a model with no continuous code
    information: the plain totals less every code's term, and the terms on real digits read nothing."""
    terms = {"real_continuous_dependence": 1.0, "real_continuous_marginal": 1.0, "continuous_orthogonal": 1.0}
    module = improved_module(only(continuous_start=500, **terms))
    latent, fake = latent_and_fake(module)
    latent = module.model.codes.hold_continuous(latent, 0)
    fake = module.model.generator(latent.vector).detach()
    real = to_model_range(random_images(16))
    lambda_cont = module.config.train.lambda_cont
    with torch.no_grad():
        info = module.information_loss(module.model.q_head(module.model.trunk(fake)), latent)
    paid = lambda_cont * float(info.continuous_each.sum())
    assert paid > 0  # so that leaving it out shows
    both = {
        "generator_step": float(module.generator_step(fake, latent)["total"].detach()),
        "discriminator_step": float(module.discriminator_step(real, fake, latent)["total"].detach()),
    }
    marginal = float(module.discriminator_step(real, fake, latent)["improved/real_continuous_marginal"].detach())
    assert marginal > 0
    module.continuous_started = 0
    d_losses = module.discriminator_step(real, fake, latent)
    assert all(torch.isfinite(value).all() for value in d_losses.values())
    assert float(d_losses["improved/real_continuous_marginal"]) == 0.0
    dependence = float(
        improved_module(only(**terms))
        .discriminator_step(real, fake, latent)["improved/real_continuous_dependence"]
        .detach()
    )
    expected_d = both["discriminator_step"] - paid - dependence - marginal
    assert float(d_losses["total"].detach()) == pytest.approx(expected_d, rel=1e-5, abs=1e-5)
    g_losses = module.generator_step(fake, latent)
    assert all(torch.isfinite(value).all() for value in g_losses.values())
    assert float(g_losses["total"].detach()) < both["generator_step"]  # the codes' information and overlap left out


def record_continuous_inputs(module: InfoGANTraining, monkeypatch) -> list[torch.Tensor]:
    """A list that gets the two continuous codes' generator inputs at every generator call of `module`."""
    drawn: list[torch.Tensor] = []
    generate = module.model.generator.forward

    def recording(vector: torch.Tensor) -> torch.Tensor:
        drawn.append(vector[:, -2:].detach().clone())
        return generate(vector)

    monkeypatch.setattr(module.model.generator, "forward", recording)
    return drawn


def record_takes(module: InfoGANTraining, name: str) -> list[int]:
    """The iterations at which `module` calls its copy-taking method `name` (take_anchor, take_hold),
    recorded as it runs; the copy is still taken."""
    taken: list[int] = []
    take = getattr(module, name)
    setattr(module, name, lambda: (taken.append(module.iteration), take())[1])
    return taken


def frozen_and_plain(**term: float) -> tuple[InfoGANTraining, InfoGANTraining, Latent, torch.Tensor]:
    """A module with the stagger and `term` (a frozen copy's weight), the same module without it (the
    same initial networks), and a latent batch with its fakes; only c2 started in both."""
    module = improved_module(only(continuous_stagger=500, **term))
    plain = improved_module(only(continuous_stagger=500))
    latent, fake = latent_and_fake(module)
    module.continuous_started = plain.continuous_started = 1
    return module, plain, latent, fake


def test_a_fit_with_a_start_holds_both_codes_then_draws_the_first_and_takes_the_anchor_only_beside_it(monkeypatch):
    module = improved_module(only(continuous_start=1, continuous_stagger=2, continuous_anchor=1.0))
    drawn = record_continuous_inputs(module, monkeypatch)
    taken = record_takes(module, "take_anchor")
    fit = trainer()  # test_module's: one epoch, quiet
    fit.fit(module, datamodule=DeviceImages(random_images(), 32, batches_per_epoch=4, seed=0))
    assert len(drawn) == 4 and module.continuous_started == 2
    assert torch.all(drawn[0] == 0)  # iteration 1: both held
    for solo in drawn[1:3]:  # iterations 2 and 3: c2 alone
        assert torch.all(solo[:, 1] == 0) and solo[:, 0].abs().min() > 0
    assert drawn[3].abs().min() > 0
    assert taken == [4]  # c3's first iteration; not c2's, which starts beside no other code
    assert torch.isfinite(fit.callback_metrics["improved/continuous_anchor_epoch"])


def test_holding_a_code_zeroes_its_value_and_its_generator_input_and_nothing_else():
    codes = improved_module(only()).model.codes
    torch.manual_seed(3)
    latent = codes.sample(8)
    held = codes.hold_continuous(latent, 1)
    assert torch.equal(held.continuous[:, 1], torch.zeros(8)) and torch.equal(
        held.continuous[:, 0], latent.continuous[:, 0]
    )
    assert torch.equal(held.vector[:, -1], torch.zeros(8)) and torch.equal(held.vector[:, :-1], latent.vector[:, :-1])
    assert torch.equal(held.categorical, latent.categorical)
    assert latent.continuous[:, 1].abs().min() > 0  # the original is left as it was
    assert codes.hold_continuous(latent, 2) is latent  # every code started: nothing held


def test_a_code_not_started_is_unpaid_in_both_steps_and_not_read_from_real_digits():
    """With one code of two started, the steps' totals are the plain ones less c3's information term,
    and the independence term over the codes read from real digits (one code: nothing to depend on) is 0."""
    module = improved_module(only(continuous_stagger=500, real_continuous_dependence=1.0))
    latent, fake = latent_and_fake(module)
    real = to_model_range(random_images(16))
    lambda_cont = module.config.train.lambda_cont
    with torch.no_grad():
        info = module.information_loss(module.model.q_head(module.model.trunk(fake)), latent)
    c3 = float(info.continuous_each[1])
    both = {
        "generator_step": float(module.generator_step(fake, latent)["total"].detach()),
        "discriminator_step": float(module.discriminator_step(real, fake, latent)["total"].detach()),
    }
    module.continuous_started = 1
    d_losses = module.discriminator_step(real, fake, latent)
    assert float(d_losses["improved/real_continuous_dependence"]) == 0.0  # logged, so every iteration has its keys
    dependence = float(
        improved_module(only(real_continuous_dependence=1.0))
        .discriminator_step(real, fake, latent)["improved/real_continuous_dependence"]
        .detach()
    )
    expected_d = both["discriminator_step"] - lambda_cont * c3 - dependence
    assert float(d_losses["total"].detach()) == pytest.approx(expected_d, rel=1e-5, abs=1e-6)
    g_total = float(module.generator_step(fake, latent)["total"].detach())
    assert g_total == pytest.approx(both["generator_step"] - lambda_cont * c3, rel=1e-5, abs=1e-6)


def test_a_fit_holds_the_second_code_at_zero_until_its_start_and_draws_it_after(monkeypatch):
    module = improved_module(only(continuous_stagger=2, real_continuous_dependence=0.3))
    drawn = record_continuous_inputs(module, monkeypatch)
    fit = trainer()  # test_module's: one epoch, quiet
    fit.fit(module, datamodule=DeviceImages(random_images(), 32, batches_per_epoch=4, seed=0))
    assert len(drawn) == 4 and module.continuous_started == 2
    for first in drawn[:2]:  # iterations 1 and 2: c3 held, c2 drawn
        assert torch.all(first[:, 1] == 0) and first[:, 0].abs().min() > 0
    for later in drawn[2:]:
        assert later.abs().min() > 0


def test_the_hold_pays_g_for_the_earlier_codes_turned_change_against_the_frozen_copy_and_nothing_else():
    module, plain, latent, fake = frozen_and_plain(continuous_hold=2.0)
    assert all(not p.requires_grad for p in module.held_generator.parameters()) and plain.held_generator is None
    assert float(module.generator_step(fake, latent)["improved/continuous_hold"]) == 0.0
    module.continuous_started = plain.continuous_started = 2  # c3 starts: G is copied, then G moves on
    module.take_hold()
    assert float(module.generator_step(fake, latent)["improved/continuous_hold"].detach()) == pytest.approx(
        0.0, abs=1e-6
    )
    with torch.no_grad():
        for moved in (module.model.generator, plain.model.generator):
            for p in moved.parameters():
                p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    losses = module.generator_step(fake, latent)
    rows = latent.vector[: module.improved.continuous_rows]
    direct = continuous_effect_drift(module.model.generator, module.held_generator, rows, 2, 1, 4)
    assert float(losses["improved/continuous_hold"]) == pytest.approx(float(direct), rel=1e-5) and float(direct) > 0
    expected = float(plain.generator_step(fake, latent)["total"].detach()) + 2.0 * float(direct)
    assert float(losses["total"].detach()) == pytest.approx(expected, rel=1e-5)
    module.zero_grad()
    losses["improved/continuous_hold"].backward()
    assert all(p.grad is None for p in module.held_generator.parameters())  # frozen: it only makes the changes
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.model.generator.parameters())


def test_a_fit_takes_the_held_generator_when_the_second_code_starts_and_a_checkpoint_keeps_it(tmp_path):
    module = improved_module(only(continuous_start=1, continuous_stagger=2, continuous_hold=1.0))
    taken = record_takes(module, "take_hold")
    fit = trainer()  # test_module's: one epoch, quiet
    fit.fit(module, datamodule=DeviceImages(random_images(), 32, batches_per_epoch=5, seed=0))
    assert taken == [4]  # c3's first iteration; not c2's, which starts beside no other code
    assert torch.isfinite(fit.callback_metrics["improved/continuous_hold_epoch"])
    generator = dict(module.model.generator.state_dict())
    held = module.held_generator.state_dict()
    assert any(not torch.equal(held[key], generator[key]) for key in generator)  # the copy stayed where it was taken
    path = tmp_path / "held.ckpt"
    fit.save_checkpoint(path)
    again = InfoGANTraining.load_from_checkpoint(path)
    for key, value in held.items():
        assert torch.equal(again.held_generator.state_dict()[key], value), key


def test_a_run_resumed_just_before_the_second_code_starts_takes_the_anchor_and_the_hold_there(tmp_path):
    """A resumed module starts with every code counted as started; the copies are still taken at c3's
    first iteration, not left as the checkpoint had them (the initial weights, for a checkpoint written
    before it)."""
    config = only(continuous_stagger=2, continuous_anchor=1.0, continuous_hold=1.0)
    path = tmp_path / "before_c3.ckpt"
    data = DeviceImages(random_images(), 32, batches_per_epoch=4, seed=0)
    trainer(callbacks=[SaveAt(path, 2)]).fit(improved_module(config), datamodule=data)
    resumed = improved_module(config)
    anchors, holds = record_takes(resumed, "take_anchor"), record_takes(resumed, "take_hold")
    trainer().fit(resumed, datamodule=DeviceImages(random_images(), 32, batches_per_epoch=4, seed=0), ckpt_path=path)
    assert anchors == [3] and holds == [3]  # iteration 3 is c3's first, the first after the checkpoint


def test_a_hold_without_a_stagger_or_beside_turns_is_refused_with_the_reason():
    with pytest.raises(InfoGANError, match="continuous_hold needs continuous_stagger > 0"):
        only(continuous_hold=1.0)
    with pytest.raises(InfoGANError, match="continuous_hold and continuous_turn_every cannot be combined"):
        only(continuous_stagger=2, continuous_hold=1.0, continuous_turn_every=10)


def test_an_anchor_without_a_stagger_is_refused_with_the_reason():
    with pytest.raises(InfoGANError, match="continuous_anchor needs continuous_stagger > 0"):
        only(continuous_anchor=1.0)


def test_the_anchor_pays_g_for_the_earlier_code_as_the_frozen_copy_reads_it_and_nothing_else():
    module, plain, latent, fake = frozen_and_plain(continuous_anchor=2.0)
    assert all(not p.requires_grad for p in module.anchor.parameters()) and plain.anchor is None
    before = module.generator_step(fake, latent)
    assert float(before["improved/continuous_anchor"]) == 0.0
    assert float(before["total"].detach()) == pytest.approx(float(plain.generator_step(fake, latent)["total"].detach()))
    # c3 starts: the copy is taken, and then Q moves on while the copy stays
    module.continuous_started = plain.continuous_started = 2
    module.take_anchor()
    with torch.no_grad():
        for p in module.model.q_head.parameters():
            p.add_(0.1)
    q = module.anchor["q_head"](module.anchor["trunk"](fake))
    nll = gaussian_nll(q.continuous_mean[:, :1], q.continuous_log_scale[:, :1], latent.continuous[:, :1])
    direct = float(nll.sum().detach())
    losses = module.generator_step(fake, latent)
    assert float(losses["improved/continuous_anchor"]) == pytest.approx(direct, rel=1e-5)
    with torch.no_grad():
        for p in plain.model.q_head.parameters():
            p.add_(0.1)
    lambda_cont = module.config.train.lambda_cont
    expected = float(plain.generator_step(fake, latent)["total"].detach()) + 2.0 * lambda_cont * direct
    assert float(losses["total"].detach()) == pytest.approx(expected, rel=1e-5)
    module.zero_grad()
    losses["improved/continuous_anchor"].backward()
    assert all(p.grad is None for p in module.anchor.parameters())  # frozen: it only reads
    assert all(p.grad is None for p in module.model.q_head.parameters())  # nor Q: it is G's term


def test_a_fit_takes_the_anchor_when_the_second_code_starts_and_a_checkpoint_keeps_it(tmp_path):
    module = improved_module(only(continuous_stagger=2, continuous_anchor=1.0))
    taken = record_takes(module, "take_anchor")
    fit = trainer()  # test_module's: one epoch, quiet
    fit.fit(module, datamodule=DeviceImages(random_images(), 32, batches_per_epoch=4, seed=0))
    assert taken == [3]  # iteration 3 is c3's first
    assert torch.isfinite(fit.callback_metrics["improved/continuous_anchor_epoch"])
    trunk = dict(module.model.trunk.state_dict())
    anchor = module.anchor["trunk"].state_dict()
    assert any(not torch.equal(anchor[key], trunk[key]) for key in trunk)  # the copy stayed where it was taken
    path = tmp_path / "anchored.ckpt"
    fit.save_checkpoint(path)
    again = InfoGANTraining.load_from_checkpoint(path)
    for key, value in anchor.items():
        assert torch.equal(again.anchor["trunk"].state_dict()[key], value), key


def test_a_retaken_anchor_is_taken_again_at_its_iteration_and_then_reads_every_code():
    module = improved_module(only(continuous_stagger=2, continuous_anchor=1.0, continuous_anchor_retake=4))
    taken = record_takes(module, "take_anchor")
    fit = trainer()  # test_module's: one epoch, quiet
    fit.fit(module, datamodule=DeviceImages(random_images(), 32, batches_per_epoch=4, seed=0))
    assert taken == [3, 4]  # c3's first iteration, then the retake
    assert module.anchor_retaken and module.continuous_started == 2
    latent, fake = latent_and_fake(module)
    q = module.anchor["q_head"](module.anchor["trunk"](fake))
    both = gaussian_nll(q.continuous_mean, q.continuous_log_scale, latent.continuous).sum()
    assert float(module.anchored_information(fake, latent)) == pytest.approx(float(both), rel=1e-5)
    with pytest.raises(InfoGANError, match="continuous_anchor_retake needs continuous_anchor > 0"):
        only(continuous_stagger=2, continuous_anchor_retake=4)


def test_after_the_retake_an_anchor_alone_pays_g_the_continuous_codes_and_the_live_q_does_not():
    shared = {"continuous_stagger": 2, "continuous_anchor": 1.0, "continuous_anchor_retake": 4}
    both, alone = (improved_module(only(**shared, continuous_anchor_alone=flag)) for flag in (False, True))
    for module in (both, alone):
        module.continuous_started, module.anchor_retaken = 2, True
        module.take_anchor()
    latent, fake = latent_and_fake(both)
    info = both.information_loss(both.model.q_head(both.model.trunk(fake)), latent)
    paid = {name: m.generator_step(fake, latent)["total"] for name, m in (("both", both), ("alone", alone))}
    live = both.config.train.lambda_cont * both.continuous_sum(info.continuous_each)
    assert float(live) != 0
    assert float(paid["both"] - paid["alone"]) == pytest.approx(float(live), rel=1e-4)
    both.anchor_retaken = alone.anchor_retaken = False  # before the retake, the live Q pays as before
    before = [float(m.generator_step(fake, latent)["total"]) for m in (both, alone)]
    assert before[1] == pytest.approx(before[0], rel=1e-6)
    with pytest.raises(InfoGANError, match="continuous_anchor_alone needs continuous_anchor_retake > 0"):
        only(continuous_stagger=2, continuous_anchor=1.0, continuous_anchor_alone=True)


def test_a_contrastive_partner_holds_the_codes_not_started_as_its_first_does():
    module = improved_module(only(contrastive=1.0, contrastive_codes="continuous", continuous_stagger=100))
    module.continuous_started = 1
    torch.manual_seed(4)
    latent = module.model.codes.hold_continuous(module.model.codes.sample(64), 1)
    torch.manual_seed(5)
    partners, _ = module.contrastive_pairs(latent)
    torch.manual_seed(5)
    first = latent.first(64)
    drawn, _ = module.model.codes.share_one_code(first, continuous_only=True)
    assert drawn.continuous[:, 1].abs().max() > 0  # drawn anew, as a started code would be
    held = module.model.codes.hold_continuous(drawn, 1)
    assert torch.allclose(partners, module.model.generator(held.vector))


def test_a_fit_turns_the_codes_after_every_n_iterations_once_all_have_started_everywhere_they_are_kept():
    """With a stagger of 2 and a turn every 3, the codes turn at iteration 4 (3 done, c3 started at 3)
    and not at 1 to 3 or 5 to 6. Each turn leaves the live G drawing from the turned codes what it drew
    from the old, and the same for the moving average's G; the anchor and the live Q read them turned;
    Adam's first moments of G's code columns turn with them."""
    module = improved_module(only(continuous_stagger=2, continuous_anchor=1.0, continuous_turn_every=3))
    average = WeightAverage(0.9)
    turns: list[tuple[int, list[float]]] = []
    checked: list[bool] = []
    turn_codes = module.turn_codes
    latent = module.model.codes.sample(8, generator=torch.Generator().manual_seed(1))
    real = to_model_range(random_images(8, seed=3))

    def moments() -> torch.Tensor:
        state = module.optimizers()[1].optimizer.state[module.model.generator.fc[0].weight]
        return state["exp_avg"][:, -2:].clone()

    def spied() -> list[float]:
        averaged = average.averaged_module()
        with torch.no_grad():
            module.eval(), averaged.eval()
            images, average_images = module.model(latent.vector), averaged.model(latent.vector)
            anchor = module.anchor["q_head"](module.anchor["trunk"](real)).continuous_mean
            first = moments()
            angles = turn_codes()
            turn = plane_turn(2, 0, 1, angles[0])
            turned = module.model.codes.assemble(latent.vector[:, :62], latent.categorical, latent.continuous @ turn.T)
            checked.append(
                torch.allclose(module.model(turned.vector), images, atol=1e-4)
                and torch.allclose(averaged.model(turned.vector), average_images, atol=1e-4)
                and torch.allclose(
                    module.anchor["q_head"](module.anchor["trunk"](real)).continuous_mean, anchor @ turn.T, atol=1e-4
                )
                and torch.allclose(moments(), first @ turn.T, atol=1e-6)
            )
            module.train(), averaged.train()
        turns.append((module.iteration, angles))
        return angles

    module.turn_codes = spied
    fit = trainer(callbacks=[average])
    fit.fit(module, datamodule=DeviceImages(random_images(), 32, batches_per_epoch=6, seed=0))
    assert [iteration for iteration, _ in turns] == [4]
    assert len(turns[0][1]) == 1 and -45 <= turns[0][1][0] < 45
    assert turns[0][1][0] != 0  # a turn that moved the codes, so that the checks could fail
    assert checked == [True]


class LearningRates(pl.Callback):
    """Each optimizer's learning rate as each iteration's steps took it."""

    def __init__(self):
        self.rates: list[float] = []  # D's, then G's, iteration by iteration

    def on_train_batch_end(self, trainer, pl_module, *args) -> None:
        self.rates += [opt.param_groups[0]["lr"] for opt in trainer.optimizers]


def test_learning_rates_fall_linearly_after_the_decay_start_and_a_resumed_run_takes_the_same(tmp_path):
    train = shipped_train()
    full = (train.lr_d, train.lr_g)
    expected = [*full, *full, *(rate * s for s in (2 / 3, 1 / 3) for rate in full)]  # N 1 of T 4
    seen, path = LearningRates(), tmp_path / "half.ckpt"
    data = DeviceImages(random_images(), 32, batches_per_epoch=4, seed=0)
    trainer(callbacks=[seen, SaveAt(path, 2)]).fit(improved_module(only(lr_decay_start=1)), datamodule=data)
    assert seen.rates == pytest.approx(expected)
    again = LearningRates()
    data = DeviceImages(random_images(), 32, batches_per_epoch=4, seed=0)
    trainer(callbacks=[again]).fit(improved_module(only(lr_decay_start=1)), datamodule=data, ckpt_path=path)
    assert again.rates == pytest.approx(expected[4:])


@pytest.mark.parametrize(("start", "recipe"), [(0, "improved"), (4, "improved"), (1, "paper")])
def test_learning_rates_stay_constant_when_off_past_the_end_or_under_the_paper_recipe(start, recipe):
    seen, train = LearningRates(), shipped_train()
    data = DeviceImages(random_images(), 32, batches_per_epoch=4, seed=0)
    trainer(callbacks=[seen]).fit(improved_module(only(lr_decay_start=start), recipe), datamodule=data)
    assert seen.rates == pytest.approx([train.lr_d, train.lr_g] * 4)


@pytest.mark.parametrize("mixed_by", [7.0, -11.5])
def test_the_least_mixed_turn_undoes_a_turn_of_two_factors_that_each_act_alone(mixed_by):
    """Two pixels, each a square of one factor; the codes are the factors turned by `mixed_by` degrees.
    Only the turn back leaves each pixel to one code (mixed derivative 0)."""
    mixing = plane_turn(2, 0, 1, mixed_by)

    def generator(v: torch.Tensor) -> torch.Tensor:
        factors = v[:, -2:] @ mixing  # row form: the factors are mixing.T @ codes
        return factors.square()[:, :, None, None]

    vector = torch.cat([torch.zeros(64, 3), torch.randn(64, 2, generator=torch.Generator().manual_seed(0))], dim=1)
    turn, angles = least_mixed_turn(generator, vector, 2)
    assert angles == [-mixed_by]
    assert torch.allclose(turn @ mixing, torch.eye(2), atol=1e-6)

    def turned(v: torch.Tensor) -> torch.Tensor:  # G with its codes turned as the result says
        return generator(torch.cat([v[:, :3], v[:, 3:] @ turn], dim=1))

    mixed_before, mixed_after = (
        float(continuous_mixed_derivatives(code_effects(g, vector, 2, epsilon=1.0))) for g in (generator, turned)
    )
    assert mixed_before > 0.01 and mixed_after < 1e-9, (mixed_before, mixed_after)


class Networks(pl.Callback):
    """A copy of the module's networks at the end of training, before the module's own on_train_end."""

    def on_train_end(self, trainer, pl_module) -> None:
        self.model = copy.deepcopy(pl_module.model)


def test_the_final_turn_turns_the_saved_average_so_it_draws_the_same_images_from_turned_codes(monkeypatch):
    monkeypatch.setattr(training_module, "FINAL_TURN_LATENTS", 64)  # the test's speed; the search is the same
    config = only(continuous_final_turn=True, ema_decay=0.5)
    module = InfoGANTraining(shipped_model(continuous_prior="gaussian"), shipped_train(), config)
    before, average = Networks(), WeightAverage(0.5)
    data = DeviceImages(random_images(), 32, batches_per_epoch=3, seed=0)
    trainer(callbacks=[average, before]).fit(module, datamodule=data)  # the copy after the average is put in place
    old = before.model.eval()
    draw = torch.Generator().manual_seed(0)
    vector = old.codes.sample(64, generator=draw).vector
    turn, angles = least_mixed_turn(old.generator, vector, 2)
    assert angles[0] != 0  # a turn to find: the test would not see one left out
    turned = copy.deepcopy(old)
    turned.turn_continuous(turn)
    saved = {k: v for k, v in module.model.state_dict().items()}
    assert all(torch.equal(saved[k], v) for k, v in turned.state_dict().items())
    new_codes = vector.clone()
    new_codes[:, -2:] = vector[:, -2:] @ turn.T  # the same latents, their codes as the turned model reads them
    with torch.no_grad():
        assert torch.allclose(module.model.eval().generator(new_codes), old.generator(vector), atol=1e-5)


def test_a_final_turn_under_a_uniform_prior_is_refused_with_the_reason():
    with pytest.raises(InfoGANError, match=r"continuous_final_turn needs model\.<dataset>\.continuous_prior: gaussian"):
        InfoGANTraining(shipped_model(), shipped_train(), only(continuous_final_turn=True))


def trunk_batches(module: InfoGANTraining) -> list[int]:
    """The batch sizes D's trunk is called on from now on (the list fills as it runs)."""
    sizes: list[int] = []
    module.model.trunk.register_forward_hook(lambda _, inputs, __: sizes.append(len(inputs[0])))
    return sizes


def test_the_augmented_term_reads_only_its_rows_in_both_steps_and_as_on_those_rows_alone():
    """With `augmented_information_rows` k, T(fake) is drawn and read on the first k fakes only: D's
    trunk runs on k images for it in both steps, and the term is what the whole-batch term gives on
    those k (the same draws of T)."""
    rows = 8
    module = improved_module(only(augmented_information=1.0, augmented_information_rows=rows))
    whole = improved_module(only(augmented_information=1.0))
    latent, fake = latent_and_fake(module)
    sizes = trunk_batches(module)
    module.discriminator_step(digits(len(fake)), fake, latent)
    module.generator_step(fake, latent)
    assert len(fake) == 16 and sizes == [16, 16, rows, 16, rows]  # D: real, fake, T(fake); G: fake, T(fake)
    torch.manual_seed(5)
    part = module.augmented_information(fake, latent)
    torch.manual_seed(5)
    assert part.item() == pytest.approx(whole.augmented_information(fake[:rows], latent.first(rows)).item())
    torch.manual_seed(5)
    assert part.item() != pytest.approx(whole.augmented_information(fake, latent).item())


def test_the_anchor_reads_only_its_rows_and_as_on_those_rows_alone():
    rows = 8
    module, _, latent, fake = frozen_and_plain(continuous_anchor=1.0, continuous_anchor_rows=rows)
    whole, _, _, _ = frozen_and_plain(continuous_anchor=1.0)
    for each in (module, whole):
        each.continuous_started = 2
        each.take_anchor()
    sizes = []
    module.anchor["trunk"].register_forward_hook(lambda _, inputs, __: sizes.append(len(inputs[0])))
    part = module.anchored_information(fake, latent)
    assert sizes == [rows] and part.item() > 0
    assert part.item() == pytest.approx(whole.anchored_information(fake[:rows], latent.first(rows)).item(), rel=1e-6)
    assert part.item() != pytest.approx(whole.anchored_information(fake, latent).item(), rel=1e-6)
