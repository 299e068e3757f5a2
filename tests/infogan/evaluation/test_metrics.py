"""Tests for infogan.evaluation.metrics: Hungarian-matched accuracy, NMI, and the metrics computed on a module."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from infogan.evaluation.metrics import (
    attribute_information,
    categorical_code_matching,
    confusion_matrix,
    continuous_readings_and_classes,
    hungarian_accuracy,
    information_lower_bounds,
    mutual_information,
    normalized_mutual_information,
    predict_categorical,
    predict_continuous,
)
from infogan.model.infogan import InfoGAN
from pipeline.params import shipped_model

BIJECTION = {0: 3, 1: 7, 2: 0, 3: 9, 4: 1, 5: 5, 6: 2, 7: 8, 8: 4, 9: 6}


@pytest.fixture(scope="module")
def module():
    torch.manual_seed(0)
    return InfoGAN(shipped_model(categorical=(10, 3)))


@pytest.fixture(scope="module")
def labelled():
    g = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (200, 1, 28, 28), dtype=torch.uint8, generator=g)
    labels = torch.randint(0, 10, (200,), generator=g)
    return images, labels


def test_confusion_matrix_counts():
    counts = confusion_matrix(np.array([0, 0, 1, 2]), np.array([1, 1, 0, 1]))
    assert counts.tolist() == [[0, 2], [1, 0], [0, 1]]


def test_permuted_labels_give_full_accuracy_and_the_bijection():
    rng = np.random.default_rng(0)
    pred = np.concatenate([np.arange(10), rng.integers(0, 10, 490)])  # every value occurs
    labels = np.array([BIJECTION[p] for p in pred])
    accuracy, mapping = hungarian_accuracy(pred, labels)
    assert accuracy == 1.0
    assert mapping == BIJECTION


def test_hungarian_accuracy_on_a_known_confusion():
    # code 0 -> label 1 (3 of 4), code 1 -> label 0 (2 of 3), code 2 -> label 2 (2 of 3).
    pred = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
    labels = np.array([1, 1, 1, 0, 0, 0, 2, 2, 2, 1])
    accuracy, mapping = hungarian_accuracy(pred, labels)
    assert accuracy == pytest.approx(7 / 10)
    assert mapping == {0: 1, 1: 0, 2: 2}


def test_hungarian_matching_is_one_to_one():
    """Greedy per-code majority would map both codes to label 0 (4/4); one-to-one allows only 3/4."""
    pred = np.array([0, 0, 1, 1])
    labels = np.array([0, 0, 0, 1])
    accuracy, mapping = hungarian_accuracy(pred, labels)
    assert accuracy == pytest.approx(3 / 4)
    assert mapping == {0: 0, 1: 1}


def test_nmi_of_identical_labels_is_one():
    labels = np.random.default_rng(0).integers(0, 10, 1000)
    assert normalized_mutual_information(labels, labels) == pytest.approx(1.0)


def test_nmi_is_invariant_to_relabelling():
    pred = np.random.default_rng(1).integers(0, 10, 1000)
    labels = np.array([BIJECTION[p] for p in pred])
    assert normalized_mutual_information(pred, labels) == pytest.approx(1.0)


def test_nmi_of_independent_labels_is_near_zero():
    rng = np.random.default_rng(2)
    nmi = normalized_mutual_information(rng.integers(0, 10, 200_000), rng.integers(0, 10, 200_000))
    assert 0 <= nmi < 0.01


def test_nmi_of_a_known_joint():
    # pred determines the label's half: I = ln 2, H(pred) = ln 4, H(label) = ln 2 -> NMI = ln2 / (1.5 ln 2) = 2/3
    pred = np.array([0, 1, 2, 3] * 25)
    labels = pred // 2
    assert normalized_mutual_information(pred, labels) == pytest.approx(2 / 3)


def test_nmi_of_constant_labels_is_zero():
    assert normalized_mutual_information(np.zeros(10, dtype=int), np.zeros(10, dtype=int)) == 0.0


def test_mutual_information_of_a_known_joint():
    # a label that is a function of the code has I = H(label) = ln 2; independent ones give 0
    pred = np.array([0, 1, 2, 3] * 25)
    assert mutual_information(pred, pred // 2) == pytest.approx(math.log(2))
    assert mutual_information(pred, pred % 2) == pytest.approx(math.log(2))
    assert mutual_information(np.array([0, 0, 1, 1] * 25), np.array([0, 1, 0, 1] * 25)) == pytest.approx(0.0, abs=1e-12)


def test_attribute_information_finds_the_attribute_a_code_predicts(module, labelled):
    images, _ = labelled
    pred = predict_categorical(module, images)  # (N, 2): codes of 10 and 3 classes
    attributes = torch.stack(
        [
            torch.randint(0, 2, (len(images),), generator=torch.Generator().manual_seed(1)),  # noise
            (pred[:, 0] >= 5).long(),  # a function of code 0
            (pred[:, 1] == 0).long(),  # a function of code 1
        ],
        dim=1,
    ).to(torch.int8)
    metrics, table = attribute_information(module, images, attributes, ["Noise", "Big", "First"])
    assert table.shape == (2, 3)
    # a deterministic binary function of the code carries all of its own entropy
    for code, column in ((0, 1), (1, 2)):
        p = attributes[:, column].float().mean().item()
        entropy = -(p * math.log(p) + (1 - p) * math.log(1 - p))
        assert table[code, column] == pytest.approx(entropy)
    assert set(metrics) == {"attribute/categorical_0/Big", "attribute/categorical_1/First"}
    assert metrics["attribute/categorical_0/Big"] == pytest.approx(table[0, 1])


def test_predict_categorical_shape_and_batching(module, labelled):
    images, _ = labelled
    whole = predict_categorical(module, images, batch_size=200)
    assert whole.shape == (200, 2)
    assert whole[:, 0].max() < 10 and whole[:, 1].max() < 3 and whole.min() >= 0
    # eval mode: the result does not depend on how the images are batched
    assert torch.equal(predict_categorical(module, images, batch_size=64), whole)


@pytest.mark.parametrize("training", [True, False], ids=["from-train", "from-eval"])
def test_categorical_code_matching_keys_range_and_mode(module, labelled, training):
    images, labels = labelled
    module.train(training)
    metrics, matching = categorical_code_matching(module, images, labels, batch_size=100)
    assert set(metrics) == {"eval/categorical_accuracy", "eval/categorical_nmi"}
    # the matching is one-to-one, and reading the predictions through it gives the accuracy
    assert set(matching) <= set(range(10)) and len(set(matching.values())) == len(matching)
    pred = predict_categorical(module, images, batch_size=100)[:, 0].tolist()
    hits = sum(matching.get(p) == y for p, y in zip(pred, labels.tolist(), strict=True))
    assert hits / len(labels) == pytest.approx(metrics["eval/categorical_accuracy"])
    for value in metrics.values():
        assert isinstance(value, float) and 0 <= value <= 1
    # at least chance level: the Hungarian matching can always get the largest class right
    assert metrics["eval/categorical_accuracy"] >= np.bincount(labels.numpy()).max() / len(labels)
    assert module.training is training
    assert all(m.training is training for m in module.modules())


@pytest.mark.parametrize("training", [True, False], ids=["from-train", "from-eval"])
def test_information_lower_bounds_of_an_untrained_model(training):
    torch.manual_seed(0)
    module = InfoGAN(shipped_model()).train(training)
    bounds = information_lower_bounds(module, n_samples=500, batch_size=250, seed=0)
    assert set(bounds) == {
        f"info_{kind}/{code}"
        for kind in ("bound", "loss")
        for code in ("categorical_0", "continuous_0", "continuous_1")
    }
    # the bound is H(c) minus the information loss
    assert bounds["info_bound/categorical_0"] == pytest.approx(math.log(10) - bounds["info_loss/categorical_0"])
    assert all(isinstance(v, float) and math.isfinite(v) for v in bounds.values())
    # an untrained Q knows nothing about c: the bound is ~0, and it can never exceed H(c) = ln 10
    assert abs(bounds["info_bound/categorical_0"]) < 0.1
    assert bounds["info_bound/categorical_0"] <= math.log(10)
    assert module.training is training


def test_information_lower_bounds_are_reproducible_and_name_every_code(module):
    a = information_lower_bounds(module, n_samples=300, batch_size=300, seed=5)
    b = information_lower_bounds(module, n_samples=300, batch_size=300, seed=5)
    assert a == b
    assert set(a) == {
        f"info_{kind}/{code}"
        for kind in ("bound", "loss")
        for code in ("categorical_0", "categorical_1", "continuous_0", "continuous_1")
    }
    assert a["info_bound/categorical_0"] <= math.log(10) and a["info_bound/categorical_1"] <= math.log(3)


def test_a_perfect_q_reaches_ln_k():
    """With Q's categorical logits overwritten by the true code, the bound is H(c) = ln K."""
    torch.manual_seed(0)
    module = InfoGAN(shipped_model())
    latents = []
    module.generator.register_forward_pre_hook(lambda m, args: latents.append(args[0]))

    def oracle(m, args, q):
        onehot = latents[-1][:, 62:72]
        q.categorical_logits = onehot * 60 - 30
        return q

    module.q_head.register_forward_hook(oracle)
    bounds = information_lower_bounds(module, n_samples=200, batch_size=100)
    assert bounds["info_bound/categorical_0"] == pytest.approx(math.log(10), abs=1e-6)


def test_continuous_readings_and_classes_are_q_s_means_and_first_classes_from_one_pass():
    torch.manual_seed(0)
    model = InfoGAN(shipped_model(g_fc=(16,), g_base_channels=8, g_upconv=(4,), d_conv=(4, 8), d_fc=(8,), q_hidden=8))
    images = torch.randint(0, 256, (50, 1, 28, 28), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    readings, classes = continuous_readings_and_classes(model, images, batch_size=16)
    assert torch.equal(readings, predict_continuous(model, images, batch_size=16))
    assert torch.equal(classes, predict_categorical(model, images, batch_size=16)[:, 0])
    no_classes = InfoGAN(
        shipped_model(
            categorical=(), g_fc=(16,), g_base_channels=8, g_upconv=(4,), d_conv=(4, 8), d_fc=(8,), q_hidden=8
        )
    )
    _, classes = continuous_readings_and_classes(no_classes, images)
    assert torch.equal(classes, torch.zeros(50, dtype=torch.long))
