"""Tests for infogan.evaluation.digit_classifier: the CNN learns real digits, and the purity of generated digits
is right on stand-in generators whose every class draws a known digit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from infogan.data.images import to_model_range
from infogan.data.mnist import load_mnist_split
from infogan.errors import InfoGANError
from infogan.evaluation.digit_classifier import (
    DigitClassifier,
    classifier_accuracy,
    generated_digit_purity,
    predict_digits,
    train_digit_classifier,
)
from infogan.model.codes import LatentCodes
from infogan.model.infogan import InfoGAN
from pipeline.params import shipped_model

TRAIN_IMAGES = 5000
TEST_IMAGES = 2000


@pytest.fixture(scope="module")
def digits(mnist_fixture_dir):
    """A few thousand real MNIST training images and held-out test images, (N, 1, 28, 28) uint8."""
    train_images, train_labels = load_mnist_split(mnist_fixture_dir, "train")
    test_images, test_labels = load_mnist_split(mnist_fixture_dir, "test")
    return (
        train_images[:TRAIN_IMAGES],
        train_labels[:TRAIN_IMAGES],
        test_images[:TEST_IMAGES],
        test_labels[:TEST_IMAGES],
    )


@pytest.fixture(scope="module")
def classifier(digits):
    train_images, train_labels, _, _ = digits
    return train_digit_classifier(train_images, train_labels, seed=0, epochs=3, batch_size=32, progress=False)


class RealDigits(nn.Module):
    """A stand-in generator: for class k of c1 it returns a real test image of digit `digit_of[k]`,
    picked by the first noise variable, so the classifier's reading of it is known in advance.
    It records the mode and grad state of every call, and each batch's size."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, digit_of: list[int]):
        super().__init__()
        self.codes = LatentCodes(shipped_model(noise_prior="uniform"))  # z ~ U(-1, 1), c1 of 10 classes
        self.device = torch.device("cpu")
        self.pools = [to_model_range(images[labels == digit]) for digit in digit_of]  # [-1, 1], as G's tanh
        self.calls: list[tuple[bool, bool, int]] = []

    def forward(self, vector: torch.Tensor) -> torch.Tensor:
        self.calls.append((self.training, torch.is_grad_enabled(), len(vector)))
        start = self.codes.noise_dim
        classes = vector[:, start : start + 10].argmax(1)  # c1's one-hot
        position = (vector[:, 0] + 1) / 2  # z_0 in [0, 1]
        return torch.stack(
            [
                self.pools[k][int(p * (len(self.pools[k]) - 1))]
                for k, p in zip(classes.tolist(), position.tolist(), strict=True)
            ]
        )


def test_the_classifier_learns_real_digits(digits, classifier):
    """Trained on 5,000 real digits for three epochs (about 9 s on one thread), it reads 2,000 held-out
    test digits at 95% or more (96.4% measured)."""
    _, _, test_images, test_labels = digits
    assert sum(p.numel() for p in classifier.parameters()) < 300_000
    assert not classifier.training
    assert classifier_accuracy(classifier, test_images, test_labels) >= 0.95


def test_training_is_reproducible_and_leaves_the_global_seed_alone(digits):
    train_images, train_labels, test_images, _ = digits
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first = train_digit_classifier(train_images[:300], train_labels[:300], 7, 1, 32, progress=False)
    assert torch.equal(torch.get_rng_state(), before)
    second = train_digit_classifier(train_images[:300], train_labels[:300], 7, 1, 32, progress=False)
    other = train_digit_classifier(train_images[:300], train_labels[:300], 8, 1, 32, progress=False)
    for name, weight in first.state_dict().items():
        assert torch.equal(weight, second.state_dict()[name])
    assert not torch.equal(first.head[-1].weight, other.head[-1].weight)
    # eval mode: the prediction does not depend on the batching
    assert torch.equal(predict_digits(first, test_images, 1000), predict_digits(first, test_images, 77))


def test_one_digit_per_class_gives_full_purity_and_ten_digits(digits, classifier):
    _, _, test_images, test_labels = digits
    permutation = [3, 7, 0, 9, 1, 5, 2, 8, 4, 6]  # class k draws digit permutation[k]
    generator = RealDigits(test_images, test_labels, permutation).train()
    metrics, class_digits = generated_digit_purity(generator, classifier, samples_per_class=150, seed=0, batch_size=64)
    assert class_digits == dict(enumerate(permutation))
    assert metrics["generated/distinct_digits"] == 10
    # each class is as pure as the classifier reads real digits: about its accuracy, never below 85%
    for k in range(10):
        assert 0.85 <= metrics[f"generated/purity/class_{k}"] <= 1.0
    purities = [metrics[f"generated/purity/class_{k}"] for k in range(10)]
    assert metrics["generated/purity_mean"] == pytest.approx(sum(purities) / 10)
    accuracy = classifier_accuracy(classifier, test_images, test_labels)
    assert metrics["generated/purity_mean"] == pytest.approx(accuracy, abs=0.03)
    assert set(metrics) == {f"generated/purity/class_{k}" for k in range(10)} | {
        "generated/purity_mean",
        "generated/distinct_digits",
    }
    # in eval mode and without gradients, in batches of at most 64 (150 = 64 + 64 + 22 per class);
    # the generator's own mode is restored afterwards
    assert {(training, grad) for training, grad, _ in generator.calls} == {(False, False)}
    assert [size for _, _, size in generator.calls] == [64, 64, 22] * 10
    assert generator.training


def test_the_same_digit_for_every_class_is_one_distinct_digit(digits, classifier):
    _, _, test_images, test_labels = digits
    generator = RealDigits(test_images, test_labels, [4] * 10)
    metrics, class_digits = generated_digit_purity(generator, classifier, samples_per_class=100, seed=1)
    assert class_digits == {k: 4 for k in range(10)}
    assert metrics["generated/distinct_digits"] == 1
    assert metrics["generated/purity_mean"] >= 0.85  # each class alone is pure: all draw the same digit


def test_purity_is_reproducible_for_a_seed(digits, classifier):
    _, _, test_images, test_labels = digits
    generator = RealDigits(test_images, test_labels, list(range(10)))
    a = generated_digit_purity(generator, classifier, samples_per_class=50, seed=3)
    assert generated_digit_purity(generator, classifier, samples_per_class=50, seed=3) == a


@pytest.mark.parametrize(
    "images, labels, message",
    [
        (torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.tensor([0, 1, 2, 10]), "digit labels must be 0..9"),
        (torch.zeros(4, 1, 28, 28), torch.tensor([0, 1, 2, 3]), "uint8"),
        (torch.zeros(4, 1, 28, 28, dtype=torch.uint8), torch.tensor([0, 1]), "one label per image"),
    ],
    ids=["label-10", "float-images", "too-few-labels"],
)
def test_bad_training_data_is_named(images, labels, message):
    with pytest.raises(InfoGANError, match=message):
        train_digit_classifier(images, labels, 0, 1, 2, progress=False)


def test_the_classifier_reads_colour_digits_of_another_size():
    """SVHN's digits are (3, 32, 32): the same network, sized for them."""
    logits = DigitClassifier(channels=3, size=32)(torch.zeros(5, 3, 32, 32))
    assert logits.shape == (5, 10)


def test_an_infogan_with_several_categorical_codes_is_read_through_its_first(classifier):
    """A real (untrained) InfoGAN: c1 has 10 classes and c2 has 3, drawn from its prior."""
    torch.manual_seed(0)
    module = InfoGAN(shipped_model(categorical=(10, 3)))
    metrics, class_digits = generated_digit_purity(module, classifier, samples_per_class=20, seed=0)
    assert sorted(class_digits) == list(range(10)) and set(class_digits.values()) <= set(range(10))
    assert 1 <= metrics["generated/distinct_digits"] <= 10
    assert all(0.0 < metrics[f"generated/purity/class_{k}"] <= 1.0 for k in range(10))
    assert module.training
