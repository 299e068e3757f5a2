"""Render's metrics by name: each dataset's list names registered metrics, and each metric reads an
`Evaluation` and returns its values under the keys metrics.json and MLflow get."""

from __future__ import annotations

import pandas as pd
import torch

from infogan.data.images import save_split
from infogan.data.mnist import load_mnist_split
from infogan.data.registry import DATASETS
from infogan.evaluation.registry import METRICS, Evaluation, evaluate
from infogan.model.infogan import InfoGAN
from pipeline.params import shipped_model, shipped_render


def module() -> InfoGAN:
    torch.manual_seed(0)
    return InfoGAN(shipped_model()).eval()


def evaluation(data, images, labels, config, **fields) -> Evaluation:
    history = pd.DataFrame([{"epoch": 0, "iteration": 10, "loss/d": 1.0, "loss/g": 2.0}])
    return Evaluation(module(), config, data, {}, images, labels, history, **fields)


def test_every_dataset_lists_registered_metrics_each_once():
    for dataset in DATASETS.values():
        assert set(dataset.metrics) <= set(METRICS), dataset.name
        assert len(set(dataset.metrics)) == len(dataset.metrics)
    assert "factors" in DATASETS["mnist"].metrics and "attributes" in DATASETS["celeba"].metrics
    assert "categorical_code" not in DATASETS["celeba"].metrics  # its labels are identities, no classes


def test_evaluate_runs_the_metrics_in_order_and_keeps_what_render_uses(mnist_fixture_dir, tmp_path):
    images, labels = load_mnist_split(mnist_fixture_dir, "test")
    config = shipped_render(mi_samples=200, eval_batch_size=100)
    ev = evaluation(tmp_path, images[:300], labels[:300], config)
    values = evaluate(ev, ("categorical_code", "final_losses", "information"))
    keys = list(values)
    assert keys[:2] == ["eval/categorical_accuracy", "eval/categorical_nmi"]
    assert keys[2:4] == ["final/loss/d", "final/loss/g"]
    assert keys[4] == "info_bound/categorical_0"
    assert sorted(ev.matching) and set(ev.matching.values()) <= set(range(10))


def test_without_class_labels_the_categorical_code_is_not_scored(tmp_path):
    ev = evaluation(tmp_path, torch.zeros(4, 1, 28, 28, dtype=torch.uint8), None, shipped_render())
    assert evaluate(ev, ("categorical_code",)) == {} and ev.matching == {}


def test_generated_digits_train_on_the_train_split_and_score_on_the_test_split(tmp_path, mnist_fixture_dir):
    """Render's digit metrics: a classifier from <data>/train.pt, its accuracy on the test images it is
    given, and the purity of each class of c1, under the keys metrics.json and MLflow get."""
    images, labels = load_mnist_split(mnist_fixture_dir, "test")
    save_split(images[:1000], labels[:1000], tmp_path / "train.pt")
    config = shipped_render(classifier_epochs=2, classifier_batch_size=32, purity_samples=30)
    ev = evaluation(tmp_path, images[1000:1500], labels[1000:1500], config)
    metrics = evaluate(ev, ("generated_digits",))
    class_digits = ev.class_digits
    assert set(metrics) == {f"generated/purity/class_{k}" for k in range(10)} | {
        "generated/purity_mean",
        "generated/distinct_digits",
        "generated/classifier_test_accuracy",
    }
    assert metrics["generated/classifier_test_accuracy"] > 0.7  # learned from 1,000 digits: far above chance
    assert sorted(class_digits) == list(range(10))
    assert metrics["generated/distinct_digits"] == len(set(class_digits.values()))
    assert ev.lines and ev.lines[0].startswith("digit classifier: ")
