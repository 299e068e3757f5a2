"""Every `model.<dataset>` section of the shipped params.yaml builds the paper's networks for its images."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infogan.config import ModelConfig, build
from infogan.training.module import InfoGANTraining
from pipeline.params import shipped_train

ROOT = Path(__file__).resolve().parents[2]
PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text())
# The 64x64 CelebA model params.yaml describes next to model.celeba: one more layer each side.
CELEBA_64 = {
    **PARAMS["model"]["celeba"],
    "image_size": 64,
    "g_upconv": [512, 256, 128, 64],
    "d_conv": [64, 128, 256, 512],
}


@pytest.mark.parametrize("name, section", [*PARAMS["model"].items(), ("celeba at 64x64", CELEBA_64)])
def test_model_section_builds_networks_for_its_images(name, section):
    config = build(ModelConfig, section, f"model.{name}")
    module = InfoGANTraining(config, shipped_train(recipe="paper"))
    latent = module.model.codes.sample(4)
    images = module(latent.vector)
    assert images.shape == (4, config.image_channels, config.image_size, config.image_size)
    q = module.model.encode(images)
    assert q.categorical_logits.shape == (4, sum(config.categorical))
    assert q.continuous_mean.shape == (4, config.continuous)


def test_paper_latent_layouts():
    """Appendix C: SVHN 124 noise + four 10-way codes + 4 continuous; CelebA 128 noise + ten 10-way codes."""
    svhn, celeba = PARAMS["model"]["svhn"], PARAMS["model"]["celeba"]
    assert (svhn["noise_dim"], svhn["categorical"], svhn["continuous"]) == (124, [10] * 4, 4)
    assert (celeba["noise_dim"], celeba["categorical"], celeba["continuous"]) == (128, [10] * 10, 0)
    assert celeba["d_conv"] == [64, 128, 256] and celeba["g_base_channels"] * celeba["g_base_size"] ** 2 == 2 * 2 * 448
