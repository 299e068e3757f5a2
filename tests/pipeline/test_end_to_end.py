"""The real `dvc repro` on a copy of the project, with a tiny config: MNIST and a small fake SVHN from
loopback mirrors, and a small fake CelebA copy placed by hand."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.io
import torch
import yaml
from mlflow.tracking import MlflowClient
from PIL import Image

from infogan.data.download import file_md5
from infogan.data.images import load_split
from infogan.data.neighbours import pixel_neighbours
from infogan.evaluation.factors import factor_names
from infogan.model.load import read_checkpoint
from tests.pipeline.project_copy import attempt, copy_project, dvc_command, dvc_env, edit_params, run

pytestmark = pytest.mark.slow  # trains, or runs dvc repro: `pytest -m "not slow"` skips it

SCALE = 2


CELEBA_SPLITS = [0] * 16 + [1] * 4 + [2] * 4  # partition of each fake image: 16 train, 4 valid, 4 test


def place_fake_celeba(celeba: Path) -> dict:
    """A small fake CelebA copy in torchvision's layout, placed as a user would; returns the
    prepare.celeba values (checksums, count) that describe it."""
    rng = np.random.default_rng(0)
    names = [f"{i:06d}.jpg" for i in range(1, len(CELEBA_SPLITS) + 1)]
    (celeba / "img_align_celeba").mkdir(parents=True)
    for name in names:
        Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(celeba / "img_align_celeba" / name)
    attributes = [f"Attribute_{j}" for j in range(40)]
    files = {
        "partition_md5": (
            "list_eval_partition.txt",
            "".join(f"{n} {s}\n" for n, s in zip(names, CELEBA_SPLITS, strict=True)),
        ),
        "attributes_md5": (
            "list_attr_celeba.txt",
            f"{len(names)}\n{' '.join(attributes)}\n"
            + "".join(f"{n} {' '.join(str(v) for v in rng.choice([-1, 1], 40))}\n" for n in names),
        ),
        "identity_md5": ("identity_CelebA.txt", "".join(f"{n} {i % 5 + 1}\n" for i, n in enumerate(names))),
        "bbox_md5": ("list_bbox_celeba.txt", f"{len(names)}\nimage_id x_1 y_1 width height\n"),
        "landmarks_md5": ("list_landmarks_align_celeba.txt", f"{len(names)}\nlefteye_x lefteye_y\n"),
    }
    for name, text in files.values():
        (celeba / name).write_text(text)
    return {"image_count": len(names), "workers": 1, **{k: file_md5(celeba / name) for k, (name, _) in files.items()}}


@pytest.fixture(scope="module")
def svhn_mirror(tmp_path_factory, serve_directory):
    """A loopback mirror serving small fake SVHN .mat files; yields the prepare.svhn values for them."""
    folder = tmp_path_factory.mktemp("svhn-mirror")
    rng = np.random.default_rng(1)
    counts = {"train": 40, "test": 12}
    for split, n in counts.items():
        images = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)
        scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": images, "y": rng.integers(1, 11, (n, 1))})
    with serve_directory(folder) as url:
        yield {
            "mirrors": [url],
            **{f"{s}_md5": file_md5(folder / f"{s}_32x32.mat") for s in counts},
            **{f"{s}_count": n for s, n in counts.items()},
            "neighbours": 3,  # fewer than improved.neighbours: training finds its own
        }


@pytest.fixture(scope="module")
def project(tmp_path_factory, mnist_mirror_url, svhn_mirror):
    """A tiny-config copy of the project after one `dvc repro` of all three datasets; yields
    (folder, env, repro output)."""
    dst = tmp_path_factory.mktemp("project")
    copy_project(dst)
    celeba = place_fake_celeba(dst / "data/raw/celeba")
    edit_params(
        dst / "params.yaml",
        # a dead mirror first: the loopback one must be reached by falling through
        **{"prepare.mnist": {"mirrors": ["http://127.0.0.1:1/", mnist_mirror_url]}},
        **{"prepare.celeba": celeba, "prepare.svhn": svhn_mirror},
        train={"max_epochs": 2, "batches_per_epoch": 2, "batch_size": 16, "sample_every_n_epochs": 1},
        # min rho 0 and max other rho 1: every continuous code that is the clearest mover of its
        # strongest property gets that name, so the naming path runs even on a 4-iteration model
        render={
            "continuous_frames": 5,
            "mi_samples": 200,
            "factor_samples": 20,
            "factor_name_min_rho": 0.0,
            "factor_name_max_other_rho": 1.0,
            "purity_samples": 20,
        },
    )
    params = yaml.safe_load((dst / "params.yaml").read_text())
    params["datasets"] = ["mnist", "celeba", "svhn"]
    (dst / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    env = dvc_env()
    output = run([sys.executable, "-m", "dvc", "repro"], dst, env)
    return dst, env, output


def test_repro_downloads_and_prepares_mnist(project):
    dst, _, _ = project
    manifest = json.loads((dst / "data/prepared/mnist/manifest.json").read_text())
    assert manifest["splits"]["train"] == {"count": 60000, "image_shape": [1, 28, 28], "classes": 10}
    assert manifest["splits"]["test"]["count"] == 10000
    assert manifest["source_md5"]["train-images-idx3-ubyte.gz"] == "f68b3c2dcbeaaa9fbdd348bbdeb94873"
    assert sorted(p.name for p in (dst / "data/raw/mnist").iterdir()) == sorted(manifest["source_md5"])


def test_prepare_finds_the_neighbours_once_and_training_reads_them(project):
    dst, _, output = project
    table = torch.load(dst / "data/prepared/mnist/neighbours.pt", weights_only=True)["neighbours"]
    assert (
        table.shape == (60000, 10)
        and json.loads((dst / "data/prepared/mnist/manifest.json").read_text())["neighbours"] == 10
    )
    assert "each training image's 5 nearest training images: from data/prepared/mnist/neighbours.pt" in output
    # SVHN's prepare stored 3: the same table as the search on its training split; training, asking 5, finds its own
    images, _ = load_split(dst / "data/prepared/svhn/train.pt")
    stored = torch.load(dst / "data/prepared/svhn/neighbours.pt", weights_only=True)["neighbours"]
    assert torch.equal(stored.long(), pixel_neighbours(images, 3, progress=False))
    assert "each training image's 5 nearest training images: not in data/prepared/svhn/neighbours.pt" in output
    # CelebA's prepare stored the shipped 10 columns, and its training reads them
    celeba = torch.load(dst / "data/prepared/celeba/neighbours.pt", weights_only=True)["neighbours"]
    assert celeba.shape == (16, 10)
    assert "each training image's 5 nearest training images: from data/prepared/celeba/neighbours.pt" in output


def test_a_repro_log_read_through_a_pipe_has_no_carriage_return(project):
    _, _, output = project  # the repro's standard streams were pipes
    assert "\r" not in output
    for step in (
        r"train-images-idx3-ubyte\.gz: [\d.]+MB/[\d.]+MB \(100%\)",  # the download from the mirror
        r"nearest neighbours: 60,000/60,000 img \(100%\)",  # prepare's neighbour table
        r"verify CelebA: 24/24 img \(100%\)",
        r"prepare CelebA train: 16/16 img \(100%\)",
        r"digit classifier: [\d,]+/[\d,]+ batch \(100%\)",  # render's classifier
    ):
        assert re.search(rf"^{step}, elapsed \d\d:\d\d", output, re.M), step


def continuous_names(dst: Path) -> list[str]:
    """What render must have called each continuous code's files, from the metrics it wrote."""
    metrics = json.loads((dst / "reports/mnist/metrics.json").read_text())
    names = factor_names(metrics, 2, 0.0, 1.0)
    assert names, "with min rho 0 at least the strongest code/property pair is named"
    return [names.get(code, f"continuous_{code}") for code in range(2)]


def test_repro_names_continuous_gifs_after_what_they_control(project):
    dst, _, _ = project
    expected = {f"{name}.{ext}" for name in ["categorical_0", *continuous_names(dst)] for ext in ("gif", "png")}
    assert {p.name for p in (dst / "media/mnist").iterdir()} == expected


@pytest.mark.parametrize("code, frames", [(None, 10), (0, 5), (1, 5)])
def test_repro_renders_captioned_gifs(project, code, frames):
    dst, _, _ = project
    name = "categorical_0" if code is None else continuous_names(dst)[code]
    gif = Image.open(dst / "media/mnist" / f"{name}.gif")
    assert gif.n_frames == frames
    samples = 10  # render.samples_per_row
    assert gif.size == ((samples * (28 + 2) - 2) * SCALE, 28 * SCALE + 18)
    assert gif.info.get("loop") == 0
    sheet = Image.open(dst / "media/mnist" / f"{name}.png")
    assert sheet.height == frames * (28 * SCALE + 2)


def test_repro_writes_metrics_and_history(project):
    dst, _, _ = project
    metrics = json.loads((dst / "reports/mnist/metrics.json").read_text())
    assert 0.0 <= metrics["eval/categorical_accuracy"] <= 1.0
    assert 0.0 <= metrics["eval/categorical_nmi"] <= 1.0
    assert -1.0 < metrics["info_bound/categorical_0"] <= math.log(10)
    for key in ("info_bound/continuous_0", "info_bound/continuous_1", "final/loss/d", "final/loss/g"):
        assert math.isfinite(metrics[key])
    assert metrics["final/loss/d"] > 0
    for code in (0, 1):
        for factor in ("slant", "thickness"):
            assert -1.0 <= metrics[f"factor/continuous_{code}/{factor}_spearman"] <= 1.0
    # the classifier trained by render on the 60,000 real training digits reads the test digits well
    assert metrics["generated/classifier_test_accuracy"] > 0.97
    assert 1 <= metrics["generated/distinct_digits"] <= 10
    for k in range(10):
        assert 0.1 <= metrics[f"generated/purity/class_{k}"] <= 1.0  # the majority of 10 digits: at least 1/10
    history = pd.read_csv(dst / "reports/mnist/train_history.csv")
    assert list(history["epoch"]) == [0, 1]
    assert list(history["iteration"]) == [2, 4]
    assert {"loss/d", "loss/g", "info/categorical", "eval/categorical_accuracy"} <= set(history.columns)


def test_repro_records_one_mlflow_run_with_everything(project):
    dst, _, _ = project
    client = MlflowClient(f"sqlite:///{dst}/mlflow.db")
    experiment = client.get_experiment_by_name("infogan-mnist")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.info.status == "FINISHED"
    assert run.data.params["train.lr_g"] == "0.001"
    assert run.data.params["train.batch_size"] == "16"
    assert run.data.params["model.categorical"] == "[10]"
    assert run.data.params["model.continuous_prior"] == "uniform"
    assert {"git_commit", "dataset_manifest_sha256", "torch_version", "cuda_version", "device"} <= set(run.data.tags)
    assert run.data.tags["device"] == "cpu"
    # training curves from Lightning, evaluation from render, in the same run
    assert {"loss/d_epoch", "info/categorical_epoch", "eval/categorical_accuracy"} <= set(run.data.metrics)
    assert {"info_bound/categorical_0", "generated/purity_mean", "generated/distinct_digits"} <= set(run.data.metrics)
    accuracy_history = client.get_metric_history(run.info.run_id, "eval/categorical_accuracy")
    assert len(accuracy_history) >= 2  # one per epoch, plus render's

    def names(path=None):
        return {Path(a.path).name for a in client.list_artifacts(run.info.run_id, path)}

    assert {"categorical_0.gif", f"{continuous_names(dst)[1]}.gif", "categorical_0.png"} <= names("media")
    named = factor_names(run.data.metrics, 2, 0.0, 1.0)
    for code in (0, 1):
        assert run.data.tags[f"factor/continuous_{code}"] == named.get(code, "unclear")
    assert {"model.ckpt", "config.json"} <= names("model")
    assert {"epoch_0001.png", "epoch_0002.png"} == names("samples")
    assert "metrics.json" in names()


def test_repro_prepares_trains_and_renders_the_fake_celeba(project):
    dst, _, _ = project
    record = json.loads((dst / "data/verified/celeba.json").read_text())
    assert record["images"] == len(CELEBA_SPLITS) and record["splits"] == {"train": 16, "valid": 4, "test": 4}
    manifest = json.loads((dst / "data/prepared/celeba/manifest.json").read_text())
    assert manifest["labels"] == "identities" and len(manifest["attributes"]) == 40
    assert {s: v["count"] for s, v in manifest["splits"].items()} == {"train": 16, "valid": 4, "test": 4}
    metrics = json.loads((dst / "reports/celeba/metrics.json").read_text())
    assert "eval/categorical_accuracy" not in metrics  # identities are not what a code is scored against
    for code in range(10):
        assert -1.0 < metrics[f"info_bound/categorical_{code}"] <= math.log(10)
        assert metrics[f"info_loss/categorical_{code}"] > 0
        [best] = [k for k in metrics if k.startswith(f"attribute/categorical_{code}/")]
        assert best.rsplit("/", 1)[1] in manifest["attributes"] and 0 <= metrics[best] <= math.log(2)
    assert not any(k.startswith("factor/") for k in metrics)  # slant and thickness are for grey digits
    assert not any(k.startswith("generated/") for k in metrics)  # faces are not digits
    expected = {f"categorical_{code}.{ext}" for code in range(10) for ext in ("gif", "png")}
    assert {p.name for p in (dst / "media/celeba").iterdir()} == expected
    gif = Image.open(dst / "media/celeba/categorical_3.gif")
    assert gif.n_frames == 10 and gif.size[0] == (10 * (32 + 2) - 2) * SCALE

    client = MlflowClient(f"sqlite:///{dst}/mlflow.db")
    [run] = client.search_runs([client.get_experiment_by_name("infogan-celeba").experiment_id])  # one training
    assert run.info.status == "FINISHED" and run.data.params["model.noise_dim"] == "128"
    table = client.download_artifacts(run.info.run_id, "attribute_information.csv", str(dst / "tmp-artifact"))
    assert pd.read_csv(table, index_col=0).shape == (10, 40)


def test_repro_downloads_trains_and_renders_the_fake_svhn(project):
    dst, _, _ = project
    manifest = json.loads((dst / "data/prepared/svhn/manifest.json").read_text())
    assert manifest["labels"] == "digits"
    assert manifest["splits"]["train"] == {"count": 40, "image_shape": [3, 32, 32], "classes": 10}
    metrics = json.loads((dst / "reports/svhn/metrics.json").read_text())
    assert 0.0 <= metrics["eval/categorical_accuracy"] <= 1.0
    assert {f"info_bound/continuous_{code}" for code in range(4)} <= set(metrics)
    # SVHN's labels are digits too: its generated digits are read by a classifier of colour digits
    assert 0.0 <= metrics["generated/classifier_test_accuracy"] <= 1.0
    assert {f"generated/purity/class_{k}" for k in range(10)} | {"generated/purity_mean"} <= set(metrics)
    expected = {
        f"{kind}_{code}.{ext}" for kind in ("categorical", "continuous") for code in range(4) for ext in ("gif", "png")
    }
    assert {p.name for p in (dst / "media/svhn").iterdir()} == expected


def test_repro_reruns_only_what_changed(project):  # last: it changes the project
    dst, env, _ = project
    again = run([sys.executable, "-m", "dvc", "repro"], dst, env)
    # check_params and verify always run (quickly); verify's unchanged record leaves everything after it alone
    ran = {line.split("'")[1].split("@")[0] for line in again.splitlines() if "Running stage" in line}
    assert ran == {"check_params", "verify"}
    edit_params(dst / "params.yaml", train={"lr_g": 0.0005})
    changed = run([sys.executable, "-m", "dvc", "repro"], dst, env)
    assert "Running stage 'train@mnist'" in changed
    assert "Running stage 'render@mnist'" in changed
    assert "Running stage 'prepare@mnist'" not in changed
    client = MlflowClient(f"sqlite:///{dst}/mlflow.db")
    experiment = client.get_experiment_by_name("infogan-mnist")
    lrs = sorted(r.data.params["train.lr_g"] for r in client.search_runs([experiment.experiment_id]))
    assert lrs == ["0.0005", "0.001"]


LAST_GOOD = ("media/mnist", "reports/mnist/metrics.json", "models/mnist")


def last_good(dst: Path) -> dict[str, bytes]:
    """Every file of the last good run's media, metrics and model, by path."""
    files = {}
    for name in LAST_GOOD:
        path = dst / name
        for item in sorted(path.rglob("*")) if path.is_dir() else [path]:
            if item.is_file():
                files[str(item.relative_to(dst))] = item.read_bytes()
    return files


def test_a_failing_stage_keeps_the_last_good_outputs(project):  # changes the project, and puts it back
    """After a good run: a bad param (stopped by check_params before DVC touches any output, or met by
    render itself with `dvc repro -s`) and a damaged checkpoint (`dvc repro -s -f render@mnist`) each
    fail, and the media, metrics and model are still there, byte for byte."""
    dst, env, _ = project
    good = last_good(dst)
    assert any(name.endswith(".gif") for name in good) and "models/mnist/model.ckpt" in good
    params = (dst / "params.yaml").read_text()
    checkpoint = dst / "models/mnist/model.ckpt"

    def fails(*args: str) -> str:
        result = attempt(dvc_command("repro", *args), dst, env, timeout=600)
        output = result.stdout + result.stderr
        assert result.returncode != 0, output[-3000:]
        assert "Traceback" not in output, output[-3000:]
        assert last_good(dst) == good, output[-3000:]
        return output

    edit_params(dst / "params.yaml", render={"scale": 0})
    output = fails()
    assert "error: render.scale = 0 is invalid: it must be greater than 0" in output
    assert "Running stage 'render@mnist'" not in output  # check_params stopped it first
    output = fails("-s", "render@mnist")  # render alone: DVC leaves its persistent outputs where they are
    assert "Running stage 'render@mnist'" in output and "error: render.scale = 0 is invalid" in output
    (dst / "params.yaml").write_text(params)

    edit_params(dst / "params.yaml", train={"batch_size": -1})
    output = fails()
    assert "error: train.batch_size = -1 is invalid: it must be greater than 0" in output
    (dst / "params.yaml").write_text(params)

    checkpoint.unlink()  # a fresh file, not DVC's cached copy, is damaged
    checkpoint.write_bytes(good["models/mnist/model.ckpt"][:1000])
    good["models/mnist/model.ckpt"] = checkpoint.read_bytes()
    output = fails("-s", "-f", "render@mnist")
    assert "is not a readable checkpoint" in output
    checkpoint.unlink()
    run(dvc_command("checkout", "train@mnist"), dst, env)  # the trained model back from DVC's cache
    assert "up to date" in run(dvc_command("status", "render@mnist"), dst, env)


def start_repro(dst: Path, env: dict, log: Path, *targets: str) -> subprocess.Popen:
    """`dvc repro` in the background, in its own process group (so the test can kill all of it)."""
    return subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", *targets],
        cwd=dst,
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def wait_for(condition, process: subprocess.Popen, timeout: float = 900) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, "dvc repro ended before the awaited point"
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_repro_killed_mid_training_resumes_it(project):  # changes the project
    dst, env, _ = project
    edit_params(dst / "params.yaml", train={"max_epochs": 10, "checkpoint_every_n_steps": 3})  # 20 iterations
    checkpoint = dst / "checkpoints/mnist/last.ckpt"
    process = start_repro(dst, env, dst / "killed.log", "render@mnist")
    wait_for(checkpoint.exists, process)
    os.killpg(process.pid, signal.SIGKILL)  # DVC and the training under it, with no chance to clean up
    process.wait()
    killed = read_checkpoint(checkpoint)["infogan"]
    assert killed["iteration"] < 20 and not (dst / "models/mnist/model.ckpt").exists()
    resumed = run([sys.executable, "-m", "dvc", "repro", "render@mnist"], dst, env)
    # DVC kept the persistent checkpoint folder, and the train stage went on from it in the same run
    assert (
        f"resuming MLflow run {killed['run_id']} from checkpoints/mnist/last.ckpt at iteration "
        f"{killed['iteration']}" in resumed
    )
    assert json.loads((dst / "models/mnist/run.json").read_text())["run_id"] == killed["run_id"]
    assert (dst / "checkpoints/mnist").is_dir() and not checkpoint.exists()
    status = run([sys.executable, "-m", "dvc", "status", "train@mnist"], dst, env)
    assert "up to date" in status


def test_two_repros_at_once_do_not_corrupt_each_other(project):  # changes the project
    dst, env, _ = project
    edit_params(dst / "params.yaml", train={"max_epochs": 30})  # long enough for the second to meet it
    first = start_repro(dst, env, dst / "first.log", "render@mnist")
    wait_for(lambda: "Running stage 'train@mnist'" in (dst / "first.log").read_text(), first)
    second = attempt(dvc_command("repro", "render@mnist"), dst, env, timeout=600)
    # DVC's lock on what the first is using turns the second away before it reaches prepare or train
    # (the always-run check_params and verify stages may run in both: they rewrite the same records)
    output = second.stdout + second.stderr
    assert second.returncode != 0 and "is busy, it is being blocked by" in output, output[-3000:]
    assert "Running stage 'train@mnist'" not in output and "Running stage 'prepare@mnist'" not in output
    assert first.wait(timeout=900) == 0, (dst / "first.log").read_text()[-4000:]
    # and what the first wrote is whole: the SQLite store, the metrics, DVC's record
    client = MlflowClient(f"sqlite:///{dst}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("infogan-mnist").experiment_id])
    assert all(r.info.status == "FINISHED" for r in runs) and len(runs) == 4
    assert "eval/categorical_accuracy" in json.loads((dst / "reports/mnist/metrics.json").read_text())
    assert "up to date" in run([sys.executable, "-m", "dvc", "status", "render@mnist"], dst, env)
