"""Which digits the generator draws: a small CNN trained on real labelled digits reads generated ones.

`categorical_code_matching` (infogan/evaluation/metrics.py) scores Q on *real* images; the traversal GIFs show
*generated* ones. `generated_digit_purity` measures the generated side: it fixes each class of the
first categorical code, draws the noise and the other codes from their priors, and asks a
`DigitClassifier`, trained on the real training split, which digit came out. The labels serve this
evaluation only; the GAN never sees them.

- `train_digit_classifier`: the classifier, trained on the CPU, deterministic for a seed (and a
  number of torch threads, which orders the float sums).
- `classifier_accuracy`: its accuracy on labelled images, e.g. the test split.
- `generated_digit_purity`: per class of the first code, the share of its samples in its most common
  digit; their mean; and how many different digits are some class's most common one.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from infogan.data.images import to_model_range, to_uint8
from infogan.errors import InfoGANError
from infogan.model.infogan import InfoGAN
from infogan.progress import Progress

N_DIGITS = 10
LEARNING_RATE = 2e-3  # Adam's, decayed linearly to 0 over the training


class DigitClassifier(nn.Module):
    """Two 3x3 conv + 2x2 max-pool blocks and two FC layers: uint8-range images scaled to [-1, 1],
    (B, C, S, S) -> digit logits (B, 10). About 210K parameters for 28x28 grey digits."""

    def __init__(self, channels: int = 1, size: int = 28):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, 16, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 16, S/2, S/2)
            nn.Conv2d(16, 32, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),  # (B, 32, S/4, S/4)
        )
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * (size // 4) ** 2, 128),
            nn.ReLU(),
            nn.Linear(128, N_DIGITS),
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images))


def _check_digits(images: torch.Tensor, labels: torch.Tensor) -> None:
    if images.dtype != torch.uint8 or images.dim() != 4 or images.shape[2] != images.shape[3]:
        raise InfoGANError(f"the digit classifier reads square uint8 images (N, C, S, S), got {tuple(images.shape)}")
    if len(images) == 0 or labels.shape != images.shape[:1]:
        raise InfoGANError(f"need one label per image and at least one image, got {len(images)} and {len(labels)}")
    if labels.min() < 0 or labels.max() >= N_DIGITS:
        raise InfoGANError(f"digit labels must be 0..9, got {int(labels.min())}..{int(labels.max())}")


def train_digit_classifier(
    images: torch.Tensor, labels: torch.Tensor, seed: int, epochs: int, batch_size: int, progress: bool = True
) -> DigitClassifier:
    """Train a `DigitClassifier` on uint8 images (N, C, S, S) and their digits (N,), on the CPU with
    Adam; returns it in eval mode. The initial weights and the batch order come from `seed` alone:
    the global random state is left as it was."""
    _check_digits(images, labels)
    if epochs <= 0 or batch_size <= 0:
        raise InfoGANError(f"the digit classifier needs positive epochs and batch size, got {epochs} and {batch_size}")
    images, labels = images.cpu(), labels.cpu().long()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        classifier = DigitClassifier(images.shape[1], images.shape[2]).train()
    optimizer = torch.optim.Adam(classifier.parameters(), lr=LEARNING_RATE)
    order_generator = torch.Generator().manual_seed(seed)
    steps_per_epoch = math.ceil(len(images) / batch_size)
    # a linear decay to 0: the last steps settle the weights, worth about half a point after one epoch
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1 - step / (epochs * steps_per_epoch))
    with Progress(epochs * steps_per_epoch, "digit classifier", "batch", enabled=progress) as bar:
        for _ in range(epochs):
            order = torch.randperm(len(images), generator=order_generator)
            for start in range(0, len(images), batch_size):
                batch = order[start : start + batch_size]
                loss = F.cross_entropy(classifier(to_model_range(images[batch])), labels[batch])
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                bar.update()
                if bar.done % 100 == 0:
                    bar.note(loss=f"{loss.item():.3f}")
    return classifier.eval()


@torch.no_grad()
def predict_digits(classifier: nn.Module, images: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The classifier's digit for each uint8 image, (N,) long on the CPU, in eval mode."""
    was_training = classifier.training
    classifier.eval()
    device = next(classifier.parameters()).device
    digits = [
        classifier(to_model_range(images[start : start + batch_size].to(device))).argmax(1).cpu()
        for start in range(0, len(images), batch_size)
    ]
    classifier.train(was_training)
    return torch.cat(digits) if digits else torch.zeros(0, dtype=torch.long)


def classifier_accuracy(
    classifier: nn.Module, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 1000
) -> float:
    """The share of uint8 `images` whose predicted digit is their label."""
    _check_digits(images, labels)
    return float((predict_digits(classifier, images, batch_size) == labels.cpu()).float().mean())


@torch.no_grad()
def generated_digit_purity(
    model: InfoGAN, classifier: nn.Module, samples_per_class: int, seed: int = 0, batch_size: int = 1000
) -> tuple[dict[str, float], dict[int, int]]:
    """How cleanly each class of the first categorical code draws one digit, read by `classifier`.

    For each class k, `samples_per_class` images are generated with c1 = k and the noise, the other
    categorical codes and the continuous codes drawn from their priors (reproducible from `seed`).
    Returns the metrics, `generated/purity/class_<k>` (the share of class k's samples in its most
    common digit), `generated/purity_mean` and `generated/distinct_digits` (how many different digits
    are the most common digit of some class; 10 when every class draws its own), and {k: that digit}.
    """
    codes = model.codes
    if not codes.categorical_sizes:
        raise InfoGANError("the model has no categorical code, so no class draws a digit")
    if samples_per_class <= 0:
        raise InfoGANError(f"samples_per_class must be positive, got {samples_per_class}")
    was_training = model.training
    model.eval()
    device = model.device
    generator = torch.Generator(device=device).manual_seed(seed)
    metrics: dict[str, float] = {}
    class_digits: dict[int, int] = {}
    for k in range(codes.categorical_sizes[0]):
        counts = torch.zeros(N_DIGITS, dtype=torch.long)
        for start in range(0, samples_per_class, batch_size):
            n = min(batch_size, samples_per_class - start)
            noise = codes.sample_noise(n, generator, device)
            categorical = codes.sample_categorical(n, generator, device)
            categorical[:, 0] = k
            continuous = codes.sample_continuous(n, generator, device)
            images = to_uint8(model(codes.assemble(noise, categorical, continuous).vector))  # (n, C, H, W)
            counts += torch.bincount(predict_digits(classifier, images, batch_size), minlength=N_DIGITS)
        class_digits[k] = int(counts.argmax())
        metrics[f"generated/purity/class_{k}"] = float(counts.max()) / samples_per_class
    model.train(was_training)
    metrics["generated/purity_mean"] = sum(metrics.values()) / len(class_digits)
    metrics["generated/distinct_digits"] = float(len(set(class_digits.values())))
    return metrics, class_digits
