"""Metrics of trained InfoGAN networks; each returns a dict of namespaced keys, used by the training's
per-epoch evaluation and by render (infogan/evaluation/registry.py).

- `categorical_code_matching`: Q's argmax for the first categorical code on real labelled images,
  matched one-to-one to the labels by the Hungarian algorithm: the accuracy, the normalized mutual
  information between code and label, and the matching itself.
- `attribute_information`: for each categorical code, the mutual information between Q's argmax on
  real images and each binary attribute (CelebA's 40), and the attribute each code tells most about.
- `information_lower_bounds`: the per-code variational lower bound on I(c; G(z, c)), in nats,
  H(c) - E[-log Q(c | G(z, c))]; for a K-class code it approaches ln K. Also each code's
  information loss, E[-log Q(c | G(z, c))], the term the training minimises.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from infogan.data.images import to_model_range
from infogan.model.codes import LatentCodes
from infogan.model.infogan import InfoGAN
from infogan.model.losses import categorical_nll, gaussian_nll
from infogan.model.networks import CodeParams


def confusion_matrix(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """counts[i, j] = number of samples with code value i and label j."""
    counts = np.zeros((int(pred.max()) + 1, int(labels.max()) + 1), dtype=np.int64)
    np.add.at(counts, (pred, labels), 1)
    return counts


def hungarian_accuracy(pred: np.ndarray, labels: np.ndarray) -> tuple[float, dict[int, int]]:
    """Best one-to-one matching of code values to labels; returns (accuracy, {code value: label})."""
    counts = confusion_matrix(pred, labels)
    rows, cols = linear_sum_assignment(counts, maximize=True)
    return float(counts[rows, cols].sum() / len(labels)), {int(r): int(c) for r, c in zip(rows, cols, strict=True)}


def _entropy(p: np.ndarray) -> float:
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


def mutual_information(pred: np.ndarray, labels: np.ndarray) -> float:
    """I(pred; labels) in nats, from the empirical joint distribution."""
    joint = confusion_matrix(pred, labels) / len(labels)
    nz = joint > 0
    outer = np.outer(joint.sum(1), joint.sum(0))
    return max(0.0, float((joint[nz] * np.log(joint[nz] / outer[nz])).sum()))  # max: round-off below 0


def normalized_mutual_information(pred: np.ndarray, labels: np.ndarray) -> float:
    """I(pred; labels) / mean(H(pred), H(labels)), in [0, 1]."""
    joint = confusion_matrix(pred, labels) / len(labels)
    denominator = (_entropy(joint.sum(1)) + _entropy(joint.sum(0))) / 2
    return mutual_information(pred, labels) / denominator if denominator > 0 else 0.0


@torch.no_grad()
def read_codes(
    model: InfoGAN, images: torch.Tensor, read: Callable[[CodeParams], torch.Tensor], batch_size: int = 1000
) -> torch.Tensor:
    """`read` of Q's posterior for uint8 `images`, batch by batch in eval mode, concatenated on the CPU."""
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        batch = to_model_range(images[start : start + batch_size].to(model.device))
        out.append(read(model.encode(batch)).cpu())
    model.train(was_training)
    return torch.cat(out)


def predict_categorical(model: InfoGAN, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Q's most likely class for each categorical code, (N, n_categorical), in eval mode."""
    sizes = list(model.codes.categorical_sizes)

    def classes(q: CodeParams) -> torch.Tensor:
        return torch.stack([chunk.argmax(1) for chunk in q.categorical_logits.split(sizes, dim=1)], dim=1)

    return read_codes(model, images, classes, batch_size)


def predict_continuous(model: InfoGAN, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Q's mean reading of each continuous code, (N, n_continuous), in eval mode."""
    return read_codes(model, images, lambda q: q.continuous_mean, batch_size)


def continuous_readings_and_classes(
    model: InfoGAN, images: torch.Tensor, batch_size: int = 1000
) -> tuple[torch.Tensor, torch.Tensor]:
    """Q's mean reading of each continuous code, (N, n_continuous), and its most likely class of the
    first categorical code, (N,) (0 for every image where there is none), from one pass in eval mode."""
    n_continuous, sizes = model.codes.n_continuous, model.codes.categorical_sizes

    def read(q: CodeParams) -> torch.Tensor:
        classes = (
            q.categorical_logits[:, : sizes[0]].argmax(1)
            if sizes
            else q.continuous_mean.new_zeros(len(q.continuous_mean))
        )
        return torch.cat([q.continuous_mean.float(), classes[:, None].float()], dim=1)

    read_back = read_codes(model, images, read, batch_size)
    return read_back[:, :n_continuous], read_back[:, n_continuous].long()


def categorical_code_matching(
    model: InfoGAN, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000
) -> tuple[dict[str, float], dict[int, int]]:
    """Hungarian-matched accuracy and NMI of the first categorical code against `labels`, and the
    matching itself, {code value: label} (values left unmatched are absent)."""
    pred = predict_categorical(model, images, batch_size)[:, 0].numpy()
    truth = labels.numpy()
    accuracy, matching = hungarian_accuracy(pred, truth)
    metrics = {
        "eval/categorical_accuracy": accuracy,
        "eval/categorical_nmi": normalized_mutual_information(pred, truth),
    }
    return metrics, matching


def attribute_information(
    model: InfoGAN, images: torch.Tensor, attributes: torch.Tensor, names: list[str], batch_size: int = 1000
) -> tuple[dict[str, float], np.ndarray]:
    """What each categorical code tells about each binary attribute of real images.

    Returns the metrics, for each code i the attribute it tells most about as
    `attribute/categorical_<i>/<name>` = I(code; attribute) in nats (at most ln 2), and the whole
    table, float (n_categorical, n_attributes), of those mutual informations.
    """
    pred = predict_categorical(model, images, batch_size).numpy()  # (N, n_categorical)
    truth = attributes.numpy().astype(np.int64)  # (N, n_attributes) of 0/1
    table = np.array(
        [[mutual_information(pred[:, i], truth[:, a]) for a in range(truth.shape[1])] for i in range(pred.shape[1])]
    )
    best = table.argmax(1) if table.size else []
    metrics = {f"attribute/categorical_{i}/{names[a]}": float(table[i, a]) for i, a in enumerate(best)}
    return metrics, table


@torch.no_grad()
def information_lower_bounds(
    model: InfoGAN, n_samples: int = 10000, batch_size: int = 1000, seed: int = 0
) -> dict[str, float]:
    """Monte-Carlo estimate of each code's MI lower bound on fresh samples, in eval mode."""
    was_training = model.training
    model.eval()
    codes: LatentCodes = model.codes
    generator = torch.Generator(device=model.device).manual_seed(seed)
    cat_nll = torch.zeros(len(codes.categorical_sizes))
    cont_nll = torch.zeros(codes.n_continuous)
    n_batches = 0
    for start in range(0, n_samples, batch_size):
        latent = codes.sample(min(batch_size, n_samples - start), generator=generator, device=model.device)
        q = model.encode(model(latent.vector))
        if codes.categorical_sizes:
            cat_nll += categorical_nll(q.categorical_logits, latent.categorical, codes.categorical_sizes).cpu()
        if codes.n_continuous:
            cont_nll += gaussian_nll(q.continuous_mean, q.continuous_log_scale, latent.continuous).cpu()
        n_batches += 1
    model.train(was_training)
    bounds = {}
    for i, (h, nll) in enumerate(zip(codes.categorical_entropy(), cat_nll / n_batches, strict=True)):
        bounds[f"info_bound/categorical_{i}"] = h - float(nll)
        bounds[f"info_loss/categorical_{i}"] = float(nll)
    for i, nll in enumerate(cont_nll / n_batches):
        bounds[f"info_bound/continuous_{i}"] = codes.continuous_entropy() - float(nll)
        bounds[f"info_loss/continuous_{i}"] = float(nll)
    return bounds
