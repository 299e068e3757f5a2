"""Reading a checkpoint this project wrote, and the InfoGAN networks in it, from its model section alone.

A checkpoint is Lightning's: `hyper_parameters` holds the params sections the training read
(`model`, `train`, `improved`; checkpoints written before the configuration became one tree hold
`optim` in place of `train`) and `state_dict` the weights, under `model.` (or, in those older
checkpoints, at the top). Rebuilding G and Q needs `model` alone, so a setting only training
reads, added or renamed since, never stops an older model from loading.

Checkpoints are read with `torch.load(weights_only=True)`: tensors and plain values only, so a
foreign file cannot run code when it is loaded.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

import torch

from infogan.config import ModelConfig, build
from infogan.errors import InfoGANError
from infogan.model.infogan import InfoGAN

RENDER_ADVICE = "pass the model.ckpt the train stage wrote, or rerun the train stage to write it again"
WEIGHTS_PREFIX = "model."  # where the training module keeps the networks' weights


def read_checkpoint(path: Path, advice: str = RENDER_ADVICE) -> dict[str, Any]:
    """A checkpoint this project wrote, loaded on the CPU with `weights_only=True`, or an
    `InfoGANError` that says what the file is instead, then `advice`."""
    path = Path(path)
    if not path.is_file():
        raise InfoGANError(f"checkpoint {path} does not exist")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        if "invalid load key" in str(err) or not zipfile.is_zipfile(path):
            raise InfoGANError(f"{path} is not a PyTorch checkpoint (it cannot be unpickled); {advice}") from None
        raise InfoGANError(
            f"{path} was not written by this project: it holds Python objects other than tensors and plain "
            f"values, and those are not unpickled (that could run code); {advice}"
        ) from None
    except (RuntimeError, EOFError, OSError, ValueError) as err:
        reason = str(err).splitlines()[0] if str(err) else err.__class__.__name__
        raise InfoGANError(f"{path} is not a readable checkpoint (truncated or damaged: {reason}); {advice}") from None
    hyper = data.get("hyper_parameters") if isinstance(data, dict) else None
    if not (isinstance(hyper, dict) and "model" in hyper and isinstance(data.get("state_dict"), dict)):
        raise InfoGANError(
            f"{path} is a PyTorch file but not an InfoGAN checkpoint (no InfoGAN hyperparameters and weights); {advice}"
        )
    return data


def network_weights(state_dict: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The networks' weights of a checkpoint's state dict, keyed as `InfoGAN`'s own."""
    if any(key.startswith(WEIGHTS_PREFIX) for key in state_dict):
        return {k[len(WEIGHTS_PREFIX) :]: v for k, v in state_dict.items() if k.startswith(WEIGHTS_PREFIX)}
    return state_dict


def load_model(path: Path, map_location: str | torch.device = "cpu", trained: bool = False) -> InfoGAN:
    """The InfoGAN networks saved in `path`, in eval mode, with clear errors for a bad file. With
    `trained`, a training checkpoint's networks as trained (`current_model_state`, which Lightning keeps
    beside the moving average of `improved.ema_decay` that the checkpoint's state dict holds), where it
    holds them."""
    data = read_checkpoint(path)
    try:
        config = build(ModelConfig, data["hyper_parameters"]["model"], "model")
    except InfoGANError as err:
        raise InfoGANError(
            f"{path}: its hyperparameters do not describe a model this version can build ({err})"
        ) from None
    model = InfoGAN(config)
    weights = data.get("current_model_state", data["state_dict"]) if trained else data["state_dict"]
    try:
        model.load_state_dict(network_weights(weights))
    except RuntimeError as err:
        raise InfoGANError(
            f"{path}: its weights do not match the model its hyperparameters describe ({str(err).splitlines()[0]})"
        ) from None
    return model.to(map_location).eval()
