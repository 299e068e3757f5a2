"""The generator as a registered MLflow model: a tiny training registers it, and a fresh process that
imports nothing of this repository loads it by its registry URI and draws, for render's codes, the
very images render drew (read back from render's contact sheet). `mlflow models serve` serves it
offline, with the same images."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import yaml
from mlflow.models import Model
from mlflow.tracking import MlflowClient
from PIL import Image

from infogan.evaluation.traversal import GAP
from infogan.model.codes import fixed_codes
from infogan.model.export import code_columns, code_table
from infogan.model.load import load_model
from pipeline.registry import registered_model_name
from tests.pipeline.project_copy import free_port, run, stop_group

pytestmark = pytest.mark.slow  # trains, or runs dvc repro: `pytest -m "not slow"` skips it

ROOT = Path(__file__).resolve().parents[2]
NAME = registered_model_name("mnist")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_params, train_args, prepared_mnist, stage_env):
    """A tiny training and its render, tracked in an SQLite store of their own. Returns (folder,
    params, the train stage's output, stdout and stderr)."""
    folder = tmp_path_factory.mktemp("registered")
    params_file = tiny_params(folder, max_epochs=2)
    train = [sys.executable, "-m", "pipeline.train", *train_args(folder, params_file, prepared_mnist)]
    output = run(train, ROOT, stage_env)
    render = ["--dataset", "mnist", "--params", str(params_file), "--model", str(folder / "model")]
    render += ["--data", str(prepared_mnist), "--media", str(folder / "media")]
    render += ["--metrics", str(folder / "metrics.json"), "--history", str(folder / "history.csv")]
    run([sys.executable, "-m", "pipeline.render", *render], ROOT, stage_env)
    return folder, yaml.safe_load(params_file.read_text()), output


def sheet_rows(path: Path, n_columns: int, scale: int, side: int) -> list[np.ndarray]:
    """The tiles of render's contact sheet, one (n, 1, side, side) uint8 array per row (frame): the
    rows of tiles are right-aligned after the captions, each `GAP` below the last, and every tile is
    upscaled by `scale` (infogan/evaluation/traversal.py, `render_contact_sheet`)."""
    sheet = np.asarray(Image.open(path).convert("RGB"))
    left = sheet.shape[1] - (n_columns * (side + GAP) - GAP) * scale
    rows, y = [], 0
    while y + side * scale <= sheet.shape[0]:
        xs = [left + j * (side + GAP) * scale for j in range(n_columns)]
        rows.append(np.stack([sheet[y : y + side * scale : scale, x : x + side * scale : scale, :1] for x in xs]))
        y += side * scale + GAP
    return [row.transpose(0, 3, 1, 2) for row in rows]


def assert_draws_the_sheet(images: np.ndarray, folder: Path, params: dict) -> None:
    """`images`, drawn for `traversal_codes`, are the tiles of render's categorical_0.png: each of the
    sheet's rows (in label order, not class order) is one class's block, and each class is one row."""
    render = params["render"]
    n = render["samples_per_row"]
    drawn = sheet_rows(folder / "media" / "categorical_0.png", n, render["scale"], images.shape[-1])
    blocks = [images[value * n : (value + 1) * n] for value in range(len(images) // n)]
    matches = [[value for value, block in enumerate(blocks) if np.array_equal(block, row)] for row in drawn]
    assert len(drawn) == len(blocks) == 10
    assert sorted(value for found in matches for value in found) == list(range(10)), matches


def traversal_codes(folder: Path, params: dict) -> np.ndarray:
    """Render's codes for the first categorical code's traversal, as the model's input table: one
    block of `samples_per_row` rows per class, classes 0 to 9."""
    module = load_model(folder / "model" / "model.ckpt")
    render = params["render"]
    blocks = []
    for value in range(module.codes.categorical_sizes[0]):
        noise, categorical, continuous = fixed_codes(module.codes, render["samples_per_row"], render["seed"])
        categorical[:, 0] = value
        blocks.append(code_table(module.codes, noise, categorical, continuous).numpy())
    return np.concatenate(blocks)


def test_training_registers_the_generator_as_a_version_of_its_run(trained):
    folder, params, output = trained
    run_id = json.loads((folder / "model" / "run.json").read_text())["run_id"]
    client = MlflowClient(params["tracking"]["uri"])
    [version] = client.search_model_versions(f"name='{NAME}'")
    assert version.run_id == run_id and str(version.version) == "1"
    assert f"the generator is MLflow model models:/{NAME}/1" in output
    # through the client of this store alone: MLflow's global tracking URI may name another (a training
    # run in this process, as test_faults' are, sets it)
    assert version.source.startswith("models:/m-")
    logged = client.get_logged_model(version.source.removeprefix("models:/"))
    assert logged.source_run_id == run_id and logged.name == "generator"
    # in the run's experiment, with its artifacts under tracking.artifact_root, not ./mlruns
    assert logged.experiment_id == client.get_run(run_id).info.experiment_id
    assert logged.artifact_location.startswith(Path(params["tracking"]["artifact_root"]).resolve().as_uri())
    info = Model.load(Path(urllib.request.url2pathname(urllib.parse.urlparse(logged.artifact_location).path)))
    assert info.run_id == run_id
    assert set(info.flavors) == {"pytorch", "python_function"}
    assert info.flavors["pytorch"]["model_data"] == "data"
    module = load_model(folder / "model" / "model.ckpt")
    assert info.metadata["columns"] == code_columns(module.codes)
    [inputs], [outputs] = info.signature.inputs.inputs, info.signature.outputs.inputs
    assert (inputs.type, inputs.shape) == (np.dtype("float32"), (-1, len(code_columns(module.codes))))
    assert (outputs.type, outputs.shape) == (np.dtype("uint8"), (-1, 1, 28, 28))


LOADER = textwrap.dedent(
    """
    import sys

    import mlflow
    import numpy as np

    codes = np.load(sys.argv[2])
    model = mlflow.pyfunc.load_model(sys.argv[1])
    np.save(sys.argv[3], model.predict(codes))
    ours = sorted(name for name in sys.modules if name.split(".")[0] in ("infogan", "pipeline", "tests"))
    print("imported:", ",".join(ours) or "nothing of the repository")
    """
)


def test_a_fresh_process_loads_it_by_its_registry_uri_and_draws_what_render_drew(trained, tmp_path, stage_env):
    folder, params, _ = trained
    codes = traversal_codes(folder, params)
    np.save(tmp_path / "codes.npy", codes)
    (tmp_path / "load.py").write_text(LOADER)
    env = {**stage_env, "MLFLOW_TRACKING_URI": params["tracking"]["uri"]}
    result = subprocess.run(
        [sys.executable, "load.py", f"models:/{NAME}/1", "codes.npy", "images.npy"],
        cwd=tmp_path,  # not the repository: nothing of it on the path but what is installed
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "imported: nothing of the repository" in result.stdout
    images = np.load(tmp_path / "images.npy")
    assert images.dtype == np.uint8 and images.shape == (len(codes), 1, 28, 28)

    assert_draws_the_sheet(images, folder, params)


def test_mlflow_models_serve_answers_with_the_same_images(trained, tmp_path, stage_env):
    folder, params, _ = trained
    codes = traversal_codes(folder, params)
    port = free_port()
    env = {
        **stage_env,
        "MLFLOW_TRACKING_URI": params["tracking"]["uri"],
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # its uvicorn
    }
    serve = ["models", "serve", "-m", f"models:/{NAME}/1", "--env-manager", "local", "--host", "127.0.0.1"]
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", *serve, "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"{url}/ping", timeout=2):
                    break
            except (urllib.error.URLError, OSError):
                assert server.poll() is None, server.stdout.read().decode()[-3000:]
                assert time.monotonic() < deadline, "mlflow models serve did not answer in 120 s"
                time.sleep(0.5)
        request = urllib.request.Request(
            f"{url}/invocations",
            data=json.dumps({"inputs": codes.tolist()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            served = np.asarray(json.load(response)["predictions"])
    finally:
        stop_group(server)
    assert served.dtype.kind in "iu" and served.shape == (len(codes), 1, 28, 28)  # JSON numbers
    assert_draws_the_sheet(served.astype(np.uint8), folder, params)
