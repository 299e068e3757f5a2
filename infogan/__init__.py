"""The InfoGAN library, in layers; each imports only those before it:

    data/        each dataset's source, verification and preparation (one module per dataset,
                 registered in data/registry.py), and the prepared tensors
    model/       pure torch: the latent codes, G, the D trunk, the heads, the losses, the
                 generator as a model of its own, and loading the networks from a checkpoint
    evaluation/  metrics, traversals, factors, the digit classifier; render's metric registry
    training/    Lightning: the LightningModule, callbacks, bookkeeping, the Trainer and resume

Beneath them all: config.py (each params section as a typed pydantic model), errors.py and
atomic.py. The library knows nothing of DVC or of where files live; pipeline/ holds the stages.
"""
