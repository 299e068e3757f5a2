"""Training with Lightning: the LightningModule, its data module, callbacks, bookkeeping, the Trainer, resume."""
