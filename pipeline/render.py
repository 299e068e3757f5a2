"""Stage `render@<dataset>`: traversal GIFs and contact sheets, and metrics.json, into the training run.

    python -m pipeline.render --dataset mnist --model models/mnist --data data/prepared/mnist \
        --media media/mnist --metrics reports/mnist/metrics.json \
        --history reports/mnist/train_history.csv

Reads `render` and `tracking` from params.yaml, and the generator and Q from the checkpoint's model
section alone (infogan/model/load.py). Computes the metrics that apply to the dataset, in the order
its module lists them (infogan/data/<dataset>.py, `DATASET.metrics`; each is defined in
infogan/evaluation/registry.py), and writes them to --metrics. Writes to --media one GIF and one PNG
sheet per code (categorical_<i>; continuous_<j>, or the property it controls, e.g. slant).
Everything is also logged to the MLflow run that trained the checkpoint (its id is in
<model>/run.json), at the training's last iteration, so that render's values are the run's latest.
A store without that run (the model came with `dvc pull` from a training tracked elsewhere) gets a
new run in the dataset's experiment instead, with the training's params (<model>/config.json) and a
`training_run_id` tag.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import torch

from infogan.atomic import write_json
from infogan.config import RenderConfig
from infogan.data.images import load_split
from infogan.data.registry import find_dataset
from infogan.errors import InfoGANError
from infogan.evaluation.factors import PROPERTIES
from infogan.evaluation.history import last_iteration, read_history
from infogan.evaluation.registry import Evaluation, evaluate
from infogan.evaluation.traversal import (
    categorical_traversal,
    continuous_traversal,
    render_contact_sheet,
    render_traversal_gif,
)
from infogan.model.infogan import InfoGAN
from infogan.model.load import load_model
from pipeline import tracking
from pipeline.params import load_params
from pipeline.stage import entry_point, parser, prepared_manifest

# File stems render writes into --media; anything else there is the user's and is left alone
OWN_MEDIA = re.compile(r"^(categorical_\d+|continuous_\d+|" + "|".join(PROPERTIES) + r")\.(gif|png)$")


def render_traversals(
    model: InfoGAN, config: RenderConfig, media: Path, matching: dict[int, int], names: dict[int, str]
) -> list[Path]:
    """One GIF + PNG per code; returns the written paths.

    The first categorical code's frames (and every traversal's columns) follow the matched labels,
    0 to 9 for MNIST; continuous code j is written as <names[j]>.gif when it has a name, else
    continuous_<j>.gif. Files of ours from an earlier render that this one did not write are removed.
    """
    written = []
    traversals = [
        (f"categorical_{i}", categorical_traversal(model, i, config.samples_per_row, config.seed, matching))
        for i in range(len(model.codes.categorical_sizes))
    ]
    values = np.linspace(*config.continuous_range, config.continuous_frames).tolist()
    traversals += [
        (
            names.get(j, f"continuous_{j}"),
            continuous_traversal(model, j, values, config.samples_per_row, config.seed, matching, names.get(j)),
        )
        for j in range(model.codes.n_continuous)
    ]
    for name, frames in traversals:
        render_traversal_gif(frames, media / f"{name}.gif", config.scale, config.frame_ms)
        render_contact_sheet(frames, media / f"{name}.png", config.scale)
        written += [media / f"{name}.gif", media / f"{name}.png"]
    for stale in media.iterdir():
        if OWN_MEDIA.match(stale.name) and stale not in written:
            stale.unlink()
    return written


@entry_point
def main() -> None:
    p = parser(__doc__.splitlines()[0])
    p.add_argument("--model", type=Path, required=True, help="train stage output folder")
    p.add_argument("--data", type=Path, required=True, help="prepared dataset folder")
    p.add_argument("--media", type=Path, required=True, help="folder for the GIFs and PNG sheets")
    p.add_argument("--metrics", type=Path, required=True, help="metrics.json to write")
    p.add_argument("--history", type=Path, required=True, help="the train stage's history CSV")
    args = p.parse_args()

    dataset = find_dataset(args.dataset)
    params = load_params(args.params, dataset.name)
    config = params.render
    checkpoint, run_file, trained = args.model / "model.ckpt", args.model / "run.json", args.model / "config.json"
    for path in (checkpoint, run_file, args.history):
        if not path.is_file():
            raise InfoGANError(f"{path} does not exist; run the train stage first (dvc repro train@{dataset.name})")
    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_model(checkpoint, device)  # a bad checkpoint is named before MLflow is asked anything
    run = json.loads(run_file.read_text())
    uri = tracking.tracking_uri(params.tracking)
    tracking.check_reachable(uri)  # before the rendering, as is whether the training's run is there
    into_training_run = tracking.has_run(uri, run["run_id"])
    if not into_training_run and not trained.is_file():  # a run of render's own carries the training's params
        raise InfoGANError(f"{trained} does not exist; run the train stage first (dvc repro train@{dataset.name})")

    test_images, test_labels = load_split(args.data / "test.pt")
    history = read_history(args.history)
    evaluation = Evaluation(
        model,
        config,
        args.data,
        prepared_manifest(args.data),
        test_images,
        test_labels if dataset.class_labels else None,
        history,
    )
    metrics = evaluate(evaluation, dataset.metrics)
    for line in evaluation.lines:
        print(line)
    names = evaluation.factor_names
    args.media.mkdir(parents=True, exist_ok=True)
    written = render_traversals(model, config, args.media, evaluation.matching, names)
    write_json(metrics, args.metrics)

    # the training's run, whose id train passed on in run.json, or one of render's own in a store without it
    if into_training_run:
        run_id = run["run_id"]
    else:
        training_params = json.loads(trained.read_text())
        sha256 = tracking.file_sha256(args.data / "manifest.json")
        run_id = tracking.open_render_run(params.tracking, dataset.name, run, training_params, sha256)
        print(f"{uri} has no run {run['run_id']}, which trained the model: logging into a new run {run_id}")
    client = tracking.client_for(uri)
    tracking.log_metrics(client, run_id, metrics, step=last_iteration(history))
    for code in range(model.codes.n_continuous):  # what each continuous code was found to control
        client.set_tag(run_id, f"factor/continuous_{code}", names.get(code, "unclear"))
    for name, table in evaluation.tables.items():  # e.g. every code against every attribute, for the UI
        client.log_text(run_id, table.round(5).to_csv(), name)
    for path in written:
        client.log_artifact(run_id, str(path), "media")
    client.log_artifact(run_id, str(args.metrics))
    if not into_training_run:
        client.set_terminated(run_id, "FINISHED")
    found = ", ".join(f"{model.codes.continuous_name(j)} {name}" for j, name in names.items()) or "none"
    print(
        f"rendered {len(written)} files into {args.media} (named continuous codes: {found}); "
        + ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
    )


if __name__ == "__main__":
    main()
