"""The InfoGAN LightningModule: optimizers and the named steps of one training iteration.

One iteration draws a latent batch, runs G once, then
  1. discriminator step: D's adversarial loss on real and detached fake images, plus the
     information loss on the fakes, updates the shared trunk, the D head and the Q head;
  2. generator step: G's adversarial loss plus the same information loss, through the updated
     D/Q (frozen by `toggled_optimizer`), updates G.
So the information term reaches G, Q and the shared trunk, as in the paper's min-max of
V(D, G) - lambda * L_I(G, Q).
"""

from __future__ import annotations

from typing import Any

import pytorch_lightning as pl
import torch

from infogan.codes import Latent, LatentCodes
from infogan.config import ModelConfig, OptimConfig, from_mapping, to_dict
from infogan.data import to_model_range
from infogan.losses import InfoLoss, discriminator_loss, generator_loss, information_loss
from infogan.networks import AdversarialHead, CodeParams, DiscriminatorTrunk, Generator, QHead


class InfoGAN(pl.LightningModule):
    def __init__(self, model: ModelConfig | dict[str, Any], optim: OptimConfig | dict[str, Any]):
        super().__init__()
        if not isinstance(model, ModelConfig):
            model = from_mapping(ModelConfig, model, "model")
        if not isinstance(optim, OptimConfig):
            optim = from_mapping(OptimConfig, optim, "optim")
        # plain dicts, so a checkpoint reloads with `InfoGAN.load_from_checkpoint(path)`
        self.save_hyperparameters({"model": to_dict(model), "optim": to_dict(optim)})
        self.automatic_optimization = False
        self.model_config = model
        self.optim_config = optim
        self.codes = LatentCodes(model)
        self.generator = Generator(model)
        self.trunk = DiscriminatorTrunk(model)
        self.d_head = AdversarialHead(model, self.trunk.out_features)
        self.q_head = QHead(model, self.trunk.out_features)

    def configure_optimizers(self):
        betas = (self.optim_config.beta1, self.optim_config.beta2)
        d_params = [*self.trunk.parameters(), *self.d_head.parameters(), *self.q_head.parameters()]
        opt_d = torch.optim.Adam(d_params, lr=self.optim_config.lr_d, betas=betas)
        opt_g = torch.optim.Adam(self.generator.parameters(), lr=self.optim_config.lr_g, betas=betas)
        return opt_d, opt_g

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Generate images (B, C, H, W) in [-1, 1] from latent vectors (B, latent_dim)."""
        return self.generator(latent)

    def encode(self, images: torch.Tensor) -> CodeParams:
        """Q's posterior over the code for images in [-1, 1]."""
        return self.q_head(self.trunk(images))

    def information_loss(self, q: CodeParams, latent: Latent) -> InfoLoss:
        return information_loss(q, latent.categorical, latent.continuous, self.codes.categorical_sizes)

    def weighted_information(self, info: InfoLoss) -> torch.Tensor:
        return self.optim_config.lambda_cat * info.categorical + self.optim_config.lambda_cont * info.continuous

    def discriminator_step(self, real: torch.Tensor, fake: torch.Tensor, latent: Latent) -> dict[str, torch.Tensor]:
        real_logits = self.d_head(self.trunk(real))
        fake_features = self.trunk(fake.detach())
        adversarial = discriminator_loss(real_logits, self.d_head(fake_features), self.optim_config.adversarial_loss)
        info = self.information_loss(self.q_head(fake_features), latent)
        return {
            "total": adversarial + self.weighted_information(info),
            "loss/d": adversarial,
            "info/categorical": info.categorical,
            "info/continuous": info.continuous,
        }

    def generator_step(self, fake: torch.Tensor, latent: Latent) -> dict[str, torch.Tensor]:
        features = self.trunk(fake)
        adversarial = generator_loss(self.d_head(features), self.optim_config.adversarial_loss)
        info = self.information_loss(self.q_head(features), latent)
        return {"total": adversarial + self.weighted_information(info), "loss/g": adversarial}

    def training_step(self, batch, batch_idx: int) -> None:
        real = to_model_range(batch[0])
        opt_d, opt_g = self.optimizers()
        latent = self.codes.sample(real.shape[0], device=self.device)
        fake = self.generator(latent.vector)  # the one G forward of this iteration

        with self.toggled_optimizer(opt_d):
            d_losses = self.discriminator_step(real, fake, latent)
            opt_d.zero_grad(set_to_none=True)
            self.manual_backward(d_losses.pop("total"))
            opt_d.step()

        with self.toggled_optimizer(opt_g):
            g_losses = self.generator_step(fake, latent)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_losses.pop("total"))
            opt_g.step()

        logged = {key: value.detach() for key, value in {**d_losses, **g_losses}.items()}
        self.log_dict(logged, on_step=True, on_epoch=True, prog_bar=False)
