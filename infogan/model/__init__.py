"""The model, in pure torch: latent codes, networks, losses, export and loading; no Lightning."""
