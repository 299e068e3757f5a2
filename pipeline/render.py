"""Stage `render@<dataset>`: traversal GIFs and contact sheets, and metrics.json, into the training run.

    python -m pipeline.render --dataset mnist --model models/mnist --data data/prepared/mnist \
        --media media/mnist --metrics reports/mnist/metrics.json \
        --history reports/mnist/train_history.csv

Reads `render` from params.yaml. Writes to --media one GIF and one PNG sheet per code
(categorical_<i>; continuous_<j>, or the property it controls, e.g. slant), and --metrics with each
code's MI lower bound and information loss and the final training losses; then, by what the
prepared data holds: for digits, the first categorical code's accuracy on the test split, and which
digit each of its classes draws, read by a small CNN trained on the real training split
(infogan/digit_classifier.py: generated/purity_*, generated/distinct_digits); for grey digits, the
Spearman correlation of each continuous code with slant and stroke thickness (infogan/factors.py);
for CelebA, the attribute each categorical code tells most about. Everything is also logged to the
MLflow run that trained the checkpoint (its id is in <model>/run.json), at the training's last
iteration, so that render's values are the run's latest. A store without that run (the model came
with `dvc pull` from a training tracked elsewhere) gets a new run in the dataset's experiment
instead, with the training's params (<model>/config.json) and a `training_run_id` tag.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from infogan.atomic import write_json
from infogan.checkpoint import load_infogan
from infogan.config import RenderConfig
from infogan.data import load_split
from infogan.digit_classifier import classifier_accuracy, generated_digit_purity, train_digit_classifier
from infogan.errors import InfoGANError
from infogan.factors import PROPERTIES, factor_correlations, factor_names
from infogan.history import final_losses, last_iteration, read_history
from infogan.metrics import attribute_information, code_matching
from infogan.module import InfoGAN
from infogan.traversal import categorical_traversal, continuous_traversal, render_contact_sheet, render_traversal_gif
from pipeline import tracking
from pipeline.params import load_params, render_config
from pipeline.stage import check_dataset, entry_point, parser, prepared_manifest

# File stems render writes into --media; anything else there is the user's and is left alone
OWN_MEDIA = re.compile(r"^(categorical_\d+|continuous_\d+|" + "|".join(PROPERTIES) + r")\.(gif|png)$")


def render_traversals(
    module: InfoGAN, config: RenderConfig, media: Path, matching: dict[int, int], names: dict[int, str]
) -> list[Path]:
    """One GIF + PNG per code; returns the written paths.

    The first categorical code's frames (and every traversal's columns) follow the matched labels,
    0 to 9 for MNIST; continuous code j is written as <names[j]>.gif when it has a name, else
    continuous_<j>.gif. Files of ours from an earlier render that this one did not write are removed.
    """
    written = []
    traversals = [
        (f"categorical_{i}", categorical_traversal(module, i, config.samples_per_row, config.seed, matching))
        for i in range(len(module.codes.categorical_sizes))
    ]
    values = np.linspace(*config.continuous_range, config.continuous_frames).tolist()
    traversals += [
        (
            names.get(j, f"continuous_{j}"),
            continuous_traversal(module, j, values, config.samples_per_row, config.seed, matching, names.get(j)),
        )
        for j in range(module.codes.n_continuous)
    ]
    for name, frames in traversals:
        render_traversal_gif(frames, media / f"{name}.gif", config.scale, config.frame_ms)
        render_contact_sheet(frames, media / f"{name}.png", config.scale)
        written += [media / f"{name}.gif", media / f"{name}.png"]
    for stale in media.iterdir():
        if OWN_MEDIA.match(stale.name) and stale not in written:
            stale.unlink()
    return written


def generated_digits(
    module: InfoGAN, data: Path, test_images: torch.Tensor, test_labels: torch.Tensor, config: RenderConfig
) -> tuple[dict[str, float], dict[int, int]]:
    """Which digit each class of the first categorical code draws: a classifier trained on the real
    training split reads `config.purity_samples` generated images per class. Returns the purity
    metrics with the classifier's test accuracy (`generated/classifier_test_accuracy`), and
    {class: the digit it draws most}."""
    train_images, train_labels = load_split(data / "train.pt")
    count = config.classifier_images
    classifier = train_digit_classifier(
        train_images[:count], train_labels[:count], config.seed, config.classifier_epochs, config.classifier_batch_size
    )
    metrics, class_digits = generated_digit_purity(
        module, classifier, config.purity_samples, config.seed, config.eval_batch_size
    )
    accuracy = classifier_accuracy(classifier, test_images, test_labels, config.eval_batch_size)
    return {"generated/classifier_test_accuracy": accuracy, **metrics}, class_digits


def load_attributes(path: Path, split: str, count: int) -> torch.Tensor:
    """The binary attributes of `split`, (count, n_attributes), from the prepare stage's attributes.pt."""
    try:
        attributes = torch.load(path, map_location="cpu", weights_only=True)[split]
    except (OSError, RuntimeError, KeyError, TypeError) as err:
        raise InfoGANError(f"{path} holds no {split} attributes ({type(err).__name__}); rerun prepare") from err
    if not isinstance(attributes, torch.Tensor) or attributes.dim() != 2 or len(attributes) != count:
        raise InfoGANError(f"{path} does not hold one row of attributes per {split} image; rerun prepare")
    return attributes


@entry_point
def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="train stage output folder")
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--media", type=Path, required=True, help="folder for the GIFs and PNG sheets")
    p.add_argument("--metrics", type=Path, required=True, help="metrics.json to write")
    p.add_argument("--history", type=Path, required=True, help="the train stage's history CSV")
    args = p.parse_args()

    params = load_params(args.params)
    check_dataset(args.dataset, params)
    config = render_config(params)
    checkpoint, run_file, trained = args.model / "model.ckpt", args.model / "run.json", args.model / "config.json"
    for path in (checkpoint, run_file, args.history):
        if not path.is_file():
            raise InfoGANError(f"{path} does not exist; run the train stage first (dvc repro train@{args.dataset})")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    module = load_infogan(checkpoint, device)  # a bad checkpoint is named before MLflow is asked anything
    run = json.loads(run_file.read_text())
    uri = tracking.tracking_uri(params)
    tracking.check_reachable(uri)  # before the rendering, as is whether the training's run is there
    into_training_run = tracking.has_run(uri, run["run_id"])
    if not into_training_run and not trained.is_file():  # a run of render's own carries the training's params
        raise InfoGANError(f"{trained} does not exist; run the train stage first (dvc repro train@{args.dataset})")
    test_images, test_labels = load_split(args.data / "test.pt")
    manifest = prepared_manifest(args.data)
    digits = manifest["labels"] == "digits"
    metrics, matching = code_matching(module, test_images, test_labels if digits else None, config)
    history = read_history(args.history)
    metrics.update(final_losses(history))
    if digits and module.codes.categorical_sizes:
        found, class_digits = generated_digits(module, args.data, test_images, test_labels, config)
        metrics.update(found)
        drawn = " ".join(f"{class_}:{digit}" for class_, digit in class_digits.items())
        print(
            f"digit classifier: {found['generated/classifier_test_accuracy']:.2%} on the test split; "
            f"generated digits: purity {found['generated/purity_mean']:.3f}, "
            f"{found['generated/distinct_digits']:.0f} distinct digits "
            f"({module.codes.categorical_name(0)} class:digit {drawn})"
        )
    attribute_table = None
    if "attributes" in manifest and module.codes.categorical_sizes:
        attributes = load_attributes(args.data / "attributes.pt", "test", len(test_images))
        found, attribute_table = attribute_information(
            module, test_images, attributes, manifest["attributes"], config.eval_batch_size
        )
        metrics.update(found)
    names: dict[int, str] = {}
    if module.model_config.image_channels == 1:  # slant and thickness are measured on grey digits
        # a property no sweep moves at all has no rank correlation (NaN): left out, not reported as 0
        correlations = factor_correlations(module, config.factor_samples, config.seed)
        metrics.update({key: value for key, value in correlations.items() if math.isfinite(value)})
        names = factor_names(correlations, module.codes.n_continuous, config.factor_name_min_rho)
    args.media.mkdir(parents=True, exist_ok=True)
    written = render_traversals(module, config, args.media, matching, names)
    write_json(metrics, args.metrics)

    # the training's run, whose id train passed on in run.json, or one of render's own in a store without it
    if into_training_run:
        run_id = run["run_id"]
    else:
        config = json.loads(trained.read_text())
        sha256 = tracking.file_sha256(args.data / "manifest.json")
        run_id = tracking.open_render_run(params, args.dataset, run, config, sha256)
        print(f"{uri} has no run {run['run_id']}, which trained the model: logging into a new run {run_id}")
    client = tracking.client_for(uri)
    tracking.log_metrics(client, run_id, metrics, step=last_iteration(history))
    for code in range(module.codes.n_continuous):  # what each continuous code was found to control
        client.set_tag(run_id, f"factor/continuous_{code}", names.get(code, "unclear"))
    if attribute_table is not None:  # every code against every attribute, for the UI
        table = pd.DataFrame(
            attribute_table,
            columns=manifest["attributes"],
            index=[f"categorical_{i}" for i in range(len(attribute_table))],
        )
        client.log_text(run_id, table.round(5).to_csv(), "attribute_information.csv")
    for path in written:
        client.log_artifact(run_id, str(path), "media")
    client.log_artifact(run_id, str(args.metrics))
    if not into_training_run:
        client.set_terminated(run_id, "FINISHED")
    found = ", ".join(f"{module.codes.continuous_name(j)} {name}" for j, name in names.items()) or "none"
    print(
        f"rendered {len(written)} files into {args.media} (named continuous codes: {found}); "
        + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    )


if __name__ == "__main__":
    main()
