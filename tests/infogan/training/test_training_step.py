"""The lean training step against a straightforward reference, and logging that stays off the hot path.

The reference is written the way most InfoGAN code is: G runs once for D's loss and again for G's
loss, and every term is spelled out with torch.nn.functional. On a fixed batch and latent, our
`training_step` (one G forward, shared) must give the same losses and the same parameter updates.
"""

from __future__ import annotations

import copy
import math

import pytest
import pytorch_lightning as pl
import torch
import torch.nn.functional as F
from pytorch_lightning.loggers import Logger

from infogan.training.datamodule import DeviceImages
from infogan.training.module import InfoGANTraining
from pipeline.params import shipped_model, shipped_train

BATCH = 16
OPTIM = shipped_train(recipe="paper", lambda_cat=1.0, lambda_cont=0.5)
MODEL = shipped_model(categorical=(10, 4), continuous=2, continuous_prior="gaussian", noise_prior="gaussian")


class CapturingLogger(Logger):
    """Keeps what Lightning and the module send to a logger, in order."""

    def __init__(self):
        super().__init__()
        self.records: list[tuple[int, dict[str, float]]] = []

    @property
    def name(self) -> str:
        return "capture"

    @property
    def version(self) -> str:
        return "0"

    def log_hyperparams(self, params, *args, **kwargs) -> None:
        pass

    def log_metrics(self, metrics, step=None) -> None:
        self.records.append((step, dict(metrics)))


def fit(
    module: InfoGANTraining,
    images: torch.Tensor,
    iterations: int,
    batches_per_epoch: int,
    log_every: int = 10,
    logger: Logger | bool = False,
    callbacks=(),
) -> pl.Trainer:
    trainer = pl.Trainer(
        accelerator="cpu",
        max_epochs=-(-iterations // batches_per_epoch),
        max_steps=2 * iterations,
        logger=logger,
        log_every_n_steps=log_every,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=list(callbacks),
    )
    trainer.fit(module, datamodule=DeviceImages(images, BATCH, batches_per_epoch, seed=0))
    return trainer


def real_images(n: int = BATCH) -> torch.Tensor:
    return torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(3))


# ---------------------------------------------------------------- the straightforward reference


def reference_information(q, latent, sizes) -> tuple[torch.Tensor, torch.Tensor]:
    logits = q.categorical_logits.split(list(sizes), dim=1)
    categorical = sum(F.cross_entropy(chunk, latent.categorical[:, i]) for i, chunk in enumerate(logits))
    std = q.continuous_log_scale.exp()
    nll = (
        0.5 * ((latent.continuous - q.continuous_mean) / std) ** 2
        + q.continuous_log_scale
        + 0.5 * math.log(2 * math.pi)
    )
    return categorical, nll.mean(0).sum()


def reference_iteration(module: InfoGANTraining, real_uint8: torch.Tensor, latent) -> dict[str, torch.Tensor]:
    """One InfoGAN iteration as typical code writes it, on copies of `module`'s networks."""
    g, trunk, d_head, q_head = (
        copy.deepcopy(part)
        for part in (module.model.generator, module.model.trunk, module.model.d_head, module.model.q_head)
    )
    o = module.config.train
    opt_d = torch.optim.Adam(
        [*trunk.parameters(), *d_head.parameters(), *q_head.parameters()], lr=o.lr_d, betas=(o.beta1, o.beta2)
    )
    opt_g = torch.optim.Adam(g.parameters(), lr=o.lr_g, betas=(o.beta1, o.beta2))
    sizes = module.model.codes.categorical_sizes
    real = real_uint8.float() / 255 * 2 - 1

    fake = g(latent.vector).detach()  # first G forward, for D
    real_logit, fake_features = d_head(trunk(real)), trunk(fake)
    fake_logit = d_head(fake_features)
    d_adv = F.binary_cross_entropy_with_logits(
        real_logit, torch.ones_like(real_logit)
    ) + F.binary_cross_entropy_with_logits(fake_logit, torch.zeros_like(fake_logit))
    d_cat, d_cont = reference_information(q_head(fake_features), latent, sizes)
    opt_d.zero_grad()
    (d_adv + o.lambda_cat * d_cat + o.lambda_cont * d_cont).backward()
    d_grads = {
        f"{name}.{key}": p.grad.clone()
        for name, part in (("trunk", trunk), ("d_head", d_head), ("q_head", q_head))
        for key, p in part.named_parameters()
    }
    opt_d.step()

    fake = g(latent.vector)  # second G forward, for G, through the updated D and Q
    features = trunk(fake)
    fake_logit = d_head(features)
    g_adv = F.binary_cross_entropy_with_logits(fake_logit, torch.ones_like(fake_logit))
    g_cat, g_cont = reference_information(q_head(features), latent, sizes)
    opt_g.zero_grad()
    (g_adv + o.lambda_cat * g_cat + o.lambda_cont * g_cont).backward()
    opt_g.step()

    # G's gradients from G's step; D's (trunk, D head, Q) from D's step, copied before G's backward
    grads = {f"generator.{key}": p.grad.clone() for key, p in g.named_parameters()}
    grads.update(d_grads)
    losses = {"loss/d": d_adv, "loss/g": g_adv, "info/categorical": d_cat, "info/continuous": d_cont}
    return {"losses": {k: v.detach() for k, v in losses.items()}, "grads": grads}


@pytest.fixture(scope="module")
def one_iteration():
    """Our step and the reference, from the same initial weights, batch and latent."""
    torch.manual_seed(0)
    module = InfoGANTraining(MODEL, OPTIM)
    latent = module.model.codes.sample(BATCH, torch.Generator().manual_seed(1))
    module.model.codes.sample = lambda n, generator=None, device=None: latent  # the latent this iteration draws
    images = real_images()
    expected = reference_iteration(module, images, latent)
    trainer = fit(module, images, iterations=1, batches_per_epoch=1)
    return module, trainer, expected


def test_step_computes_the_reference_losses(one_iteration):
    _, trainer, expected = one_iteration
    for key, value in expected["losses"].items():
        torch.testing.assert_close(trainer.callback_metrics[f"{key}_epoch"], value, rtol=1e-5, atol=1e-6)


def test_step_computes_the_reference_gradients(one_iteration):
    """Gradients, not updated weights: Adam's first step is lr * sign(grad), which float noise in a
    near-zero gradient can flip, so the weights are not a fair comparison."""
    module, _, expected = one_iteration
    ours = {name: p.grad for name, p in module.model.named_parameters()}
    assert ours.keys() == expected["grads"].keys()
    for name, value in expected["grads"].items():
        torch.testing.assert_close(ours[name], value, rtol=1e-4, atol=1e-6, msg=name)


@pytest.mark.parametrize("part", ["generator", "trunk", "q_head", "d_head"])
def test_step_leaves_nonzero_gradients_on_every_network(one_iteration, part):
    """G's gradients are from its own step; the trunk's, D head's and Q's from D's step."""
    module, _, _ = one_iteration
    for name, p in getattr(module.model, part).named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


# ---------------------------------------------------------------- logging


def losses_logged(log_every: int, iterations: int = 12, batches_per_epoch: int = 6):
    torch.manual_seed(0)
    logger = CapturingLogger()
    trainer = fit(
        InfoGANTraining(shipped_model(), OPTIM), real_images(64), iterations, batches_per_epoch, log_every, logger
    )
    windows = [(step, m) for step, m in logger.records if "loss/d" in m]
    epochs = [m for _, m in logger.records if "loss/d_epoch" in m]
    return windows, epochs, trainer


def test_window_means_are_logged_every_n_iterations():
    per_step, epochs_1, _ = losses_logged(log_every=1)
    windows, epochs_3, _ = losses_logged(log_every=3)
    assert [step for step, _ in per_step] == list(range(1, 13))
    assert [step for step, _ in windows] == [3, 6, 9, 12]
    for (_, window), start in zip(windows, range(0, 12, 3), strict=True):
        for key in ("loss/d", "loss/g", "info/categorical", "info/continuous"):
            mean = sum(m[key] for _, m in per_step[start : start + 3]) / 3
            assert window[key] == pytest.approx(mean, rel=1e-5)
    # the epoch means are means over each epoch's 6 iterations, whatever the window
    assert len(epochs_1) == len(epochs_3) == 2
    for epoch, logged in enumerate(epochs_1):
        mean = sum(m["loss/g"] for _, m in per_step[6 * epoch : 6 * epoch + 6]) / 6
        assert logged["loss/g_epoch"] == pytest.approx(mean, rel=1e-5)
        assert epochs_3[epoch]["loss/g_epoch"] == pytest.approx(mean, rel=1e-5)


HOST_READS = ("item", "tolist", "__float__", "__int__", "__bool__", "__index__", "numpy", "cpu")


class HostReadCounter(pl.Callback):
    """Counts Tensor methods that would wait for the device (item, tolist, float(), bool(), ...) per batch."""

    def __init__(self, monkeypatch):
        self.per_batch: list[int] = []
        self.active = False
        for name in HOST_READS:
            original = getattr(torch.Tensor, name)

            def counted(tensor, *args, _original=original, **kwargs):
                if self.active:
                    self.per_batch[-1] += 1
                return _original(tensor, *args, **kwargs)

            monkeypatch.setattr(torch.Tensor, name, counted)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.per_batch.append(0)
        self.active = True

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.active = False


def test_iterations_read_nothing_back_from_the_device_except_when_logging(monkeypatch):
    torch.manual_seed(0)
    counter = HostReadCounter(monkeypatch)
    fit(
        InfoGANTraining(shipped_model(), OPTIM),
        real_images(64),
        iterations=10,
        batches_per_epoch=10,
        log_every=5,
        logger=CapturingLogger(),
        callbacks=[counter],
    )
    assert len(counter.per_batch) == 10
    logging = {4, 9}  # iterations 5 and 10 log their window; 10 also ends the epoch
    assert all(count == 0 for i, count in enumerate(counter.per_batch) if i not in logging), counter.per_batch
    assert all(count > 0 for i, count in enumerate(counter.per_batch) if i in logging), counter.per_batch


# ---------------------------------------------------------------- torch.compile


def test_compiled_networks_train_like_eager_ones_and_keep_their_names():
    images = real_images(32)
    results = {}
    for compiled in (False, True):
        torch.manual_seed(0)
        module = InfoGANTraining(MODEL, OPTIM, compile_networks=compiled)
        trainer = fit(module, images, iterations=2, batches_per_epoch=2)
        results[compiled] = (module, trainer.callback_metrics)
    eager, compiled = results[False][0], results[True][0]
    assert eager.state_dict().keys() == compiled.state_dict().keys()  # checkpoints load either way
    for key in ("loss/d_epoch", "loss/g_epoch", "info/categorical_epoch"):
        torch.testing.assert_close(results[True][1][key], results[False][1][key], rtol=1e-3, atol=1e-4)
    reloaded = InfoGANTraining(MODEL, OPTIM)
    reloaded.load_state_dict(compiled.state_dict())
    torch.testing.assert_close(reloaded.model.generator.fc[0].weight, compiled.model.generator.fc[0].weight)
