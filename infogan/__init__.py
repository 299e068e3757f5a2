"""InfoGAN library: networks, latent codes, losses, the LightningModule, data, metrics, rendering."""
