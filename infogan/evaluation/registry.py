"""The metrics render computes, by name: each dataset lists those that apply to it (its `DATASET`'s
`metrics`, in infogan/data/), and render is a loop over them (`evaluate`).

A metric is a function of an `Evaluation` (the trained networks, the render params, the prepared
data, the training's history) that returns its values as a dict of namespaced keys. What a metric
finds that render uses beyond its numbers is kept on the `Evaluation`: the matching of the first
categorical code's classes to labels (which orders the traversal GIFs), the factor each continuous
code was found to control (which names them), and tables for the MLflow run.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import torch

from infogan.config import RenderConfig
from infogan.data.celeba import load_attributes
from infogan.data.images import load_split
from infogan.evaluation import history
from infogan.evaluation.digit_classifier import (
    DigitClassifier,
    classifier_accuracy,
    generated_digit_purity,
    train_digit_classifier,
)
from infogan.evaluation.factors import factor_effects, factor_names
from infogan.evaluation.metrics import attribute_information, categorical_code_matching, information_lower_bounds
from infogan.model.infogan import InfoGAN


@dataclass
class Evaluation:
    """What the metrics read, and what they leave for render besides their values."""

    model: InfoGAN
    config: RenderConfig
    data: Path  # the prepared dataset folder
    manifest: dict[str, Any]  # its manifest.json
    test_images: torch.Tensor
    test_labels: torch.Tensor | None  # None when the labels are no classes to match a code to
    history: pd.DataFrame  # the training's per-epoch history
    matching: dict[int, int] = field(default_factory=dict)  # first categorical code's class -> label
    class_digits: dict[int, int] = field(default_factory=dict)  # its class -> the digit it draws most
    factor_names: dict[int, str] = field(default_factory=dict)  # continuous code -> what it controls
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)  # file name -> table, for the run
    lines: list[str] = field(default_factory=list)  # what render prints about it


Metric = Callable[[Evaluation], dict[str, float]]
METRICS: dict[str, Metric] = {}


def register_metric(metric: Metric) -> Metric:
    METRICS[metric.__name__] = metric
    return metric


def evaluate(evaluation: Evaluation, names: tuple[str, ...]) -> dict[str, float]:
    """Every metric of `names` in turn; their values, in that order."""
    values: dict[str, float] = {}
    for name in names:
        values.update(METRICS[name](evaluation))
    return values


@register_metric
def information(ev: Evaluation) -> dict[str, float]:
    """Each code's MI lower bound and information loss on fresh samples (infogan/evaluation/metrics.py)."""
    config = ev.config
    return information_lower_bounds(ev.model, config.mi_samples, config.eval_batch_size, config.seed)


@register_metric
def categorical_code(ev: Evaluation) -> dict[str, float]:
    """The first categorical code's Hungarian-matched accuracy and NMI against the test labels; keeps the matching."""
    if not ev.model.codes.categorical_sizes or ev.test_labels is None:
        return {}
    values, ev.matching = categorical_code_matching(ev.model, ev.test_images, ev.test_labels, ev.config.eval_batch_size)
    return values


@register_metric
def final_losses(ev: Evaluation) -> dict[str, float]:
    """The training's last epoch's mean losses."""
    return history.final_losses(ev.history)


def render_digit_classifier(config: RenderConfig, train_split: Path) -> DigitClassifier:
    """The digit classifier render reads generated digits with: trained on the first
    `config.classifier_images` images of the prepared labelled split `train_split`, as `config` says."""
    images, labels = load_split(train_split)
    count = config.classifier_images
    return train_digit_classifier(
        images[:count], labels[:count], config.seed, config.classifier_epochs, config.classifier_batch_size
    )


@register_metric
def generated_digits(ev: Evaluation) -> dict[str, float]:
    """Which digit each class of the first categorical code draws: a small CNN trained on the real
    training split reads `purity_samples` generated images per class (infogan/evaluation/digit_classifier.py).
    Also that classifier's accuracy on the test split."""
    model, config = ev.model, ev.config
    if not model.codes.categorical_sizes:
        return {}
    classifier = render_digit_classifier(config, ev.data / "train.pt")
    purity, class_digits = generated_digit_purity(
        model, classifier, config.purity_samples, config.seed, config.eval_batch_size
    )
    accuracy = classifier_accuracy(classifier, ev.test_images, ev.test_labels, config.eval_batch_size)
    ev.class_digits = class_digits
    drawn = " ".join(f"{class_}:{digit}" for class_, digit in class_digits.items())
    ev.lines.append(
        f"digit classifier: {accuracy:.2%} on the test split; generated digits: purity "
        f"{purity['generated/purity_mean']:.3f}, {purity['generated/distinct_digits']:.0f} distinct digits "
        f"({model.codes.categorical_name(0)} class:digit {drawn})"
    )
    return {"generated/classifier_test_accuracy": accuracy, **purity}


@register_metric
def attributes(ev: Evaluation) -> dict[str, float]:
    """For each categorical code, the binary attribute of the test images it tells most about (CelebA's
    40); the whole table of mutual informations goes to the run as attribute_information.csv."""
    if not ev.model.codes.categorical_sizes:
        return {}
    names = ev.manifest["attributes"]
    test_attributes = load_attributes(ev.data / "attributes.pt", "test", len(ev.test_images))
    values, table = attribute_information(ev.model, ev.test_images, test_attributes, names, ev.config.eval_batch_size)
    ev.tables["attribute_information.csv"] = pd.DataFrame(
        table, columns=names, index=[f"categorical_{i}" for i in range(len(table))]
    )
    return values


@register_metric
def factors(ev: Evaluation) -> dict[str, float]:
    """How steadily (Spearman) and how far each continuous code moves the slant, width and stroke
    thickness of grey digits (infogan/evaluation/factors.py); names each code that clearly controls
    one alone."""
    config = ev.config
    effects = factor_effects(ev.model, config.factor_samples, config.seed)
    ev.factor_names = factor_names(
        effects, ev.model.codes.n_continuous, config.factor_name_min_rho, config.factor_name_max_other_rho
    )
    # a property no sweep moves at all has no rank correlation (NaN): left out, not reported as 0
    return {key: value for key, value in effects.items() if math.isfinite(value)}
