"""Bad input stops a stage before any work, with a clear message naming the key, and loses nothing."""

from __future__ import annotations

import json
import math
import shutil
import sys
from pathlib import Path

import pytest
import torch
import yaml

from pipeline import prepare, render, train, verify
from pipeline.params import shipped_model, shipped_train

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    """A folder with the project's params.yaml and a local tracking store; the stage runs from it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    shutil.copy(ROOT / "params.yaml", tmp_path / "params.yaml")
    return tmp_path


def set_param(workdir: Path, dotted: str, value, delete: bool = False) -> None:
    params = yaml.safe_load((workdir / "params.yaml").read_text())
    *parents, last = dotted.split(".")
    node = params
    for part in parents:
        node = node[part]
    if delete:
        del node[last]
    else:
        node[last] = value
    (workdir / "params.yaml").write_text(yaml.safe_dump(params))


def run_stage(module, monkeypatch, capsys, *args: str) -> str:
    """Run a stage's main() as the command line would; return stderr, asserting exit status 2."""
    capsys.readouterr()  # drop what earlier steps printed
    monkeypatch.setattr(sys, "argv", [module.__name__, *args])
    with pytest.raises(SystemExit) as exit_info:
        module.main()
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("error: ")
    return err


TRAIN_ARGS = (
    "--dataset",
    "mnist",
    "--data",
    "data/prepared/mnist",
    "--out",
    "models/mnist",
    "--history",
    "reports/mnist/train_history.csv",
    "--checkpoints",
    "checkpoints/mnist",
)


@pytest.mark.parametrize(
    "dotted, value, delete, expected",
    [
        ("train.lr_g", None, True, "train.lr_g is missing from the params"),
        ("train.batch_size", "big", False, "train.batch_size = 'big' is invalid: it must be an integer"),
        ("train.batch_size", 0, False, "train.batch_size = 0 is invalid: it must be greater than 0"),
        ("model.mnist.noise_dim", -1, False, "model.mnist.noise_dim = -1 is invalid: it must be at least 0"),
        ("model.mnist.categorical", [10, 0], False, "every entry of categorical must be a positive integer"),
        ("model.mnist.continuous_prior", "laplace", False, "one of 'uniform', 'gaussian'"),
        ("model.mnist.noise_prior", "normal", False, "one of 'gaussian', 'uniform'"),
        ("model.mnist.noise_scale", 0.0, False, "model.mnist.noise_scale = 0.0 is invalid: it must be greater than 0"),
        ("train.accelerator", "tpu", False, "train.accelerator = 'tpu' is invalid"),
        (
            "train.strategy",
            "ddp_spawn",
            False,
            "train.strategy = 'ddp_spawn' is invalid: it must be one of 'auto', 'ddp'",
        ),
        ("train.num_nodes", 0, False, "train.num_nodes = 0 is invalid: it must be greater than 0"),
        ("train.devices", 0, False, "train.devices = 0 is invalid: it must be at least 1"),
        ("train.devices", -1, False, "train.devices = -1 is invalid: it must be at least 1"),
        ("train.seed", -1, False, "train.seed = -1 is invalid: it must be at least 0"),
        ("train.seed", 2**32, False, "train: seed must be at most 4294967295 (NumPy's largest seed), got 4294967296"),
        ("train.max_epoch", 3, False, "unknown key train.max_epoch; the keys of train are:"),
        ("model.mnist", None, True, "model.mnist is missing from params.yaml"),
        ("model.mnist.q_continuous_std", "learnt", False, "one of 'learned', 'fixed'"),
        ("train.recipe", "better", False, "train.recipe = 'better' is invalid: it must be one of 'paper', 'improved'"),
        ("train.max_epochs.paper", 0, False, "train.max_epochs.paper = 0 is invalid: it must be a positive integer"),
        ("train.max_epochs.paper", None, True, "must give one length for each of paper, improved, got improved"),
        ("train.max_epochs", "long", False, "train.max_epochs = 'long' is invalid: it must be an integer"),
        ("train.lambda_cat", math.nan, False, "train.lambda_cat = nan is invalid: it must be a finite number"),
        ("train.lr_d", math.inf, False, "train.lr_d = inf is invalid: it must be a finite number"),
    ],
)
def test_train_rejects_bad_params_before_any_work(workdir, monkeypatch, capsys, dotted, value, delete, expected):
    set_param(workdir, dotted, value, delete)
    err = run_stage(train, monkeypatch, capsys, *TRAIN_ARGS)
    assert expected in err
    # nothing was started: no tracking store, no outputs
    assert not (workdir / "mlflow.db").exists()
    assert not (workdir / "models").exists()


@pytest.mark.parametrize(
    "dotted, value, delete, expected",
    [
        ("improved", None, True, "improved is missing from params.yaml"),
        ("improved.real_consistency", -1, False, "improved.real_consistency = -1.0 is invalid: it must be at least 0"),
        ("improved.rotation_deg", None, True, "improved.rotation_deg is missing from the params"),
        ("improved.thickness", "yes", False, "improved.thickness = 'yes' is invalid: it must be true or false"),
    ],
)
def test_improved_recipe_checks_its_section_before_any_work(
    workdir, monkeypatch, capsys, dotted, value, delete, expected
):
    set_param(workdir, "train.recipe", "improved")
    set_param(workdir, dotted, value, delete)
    err = run_stage(train, monkeypatch, capsys, *TRAIN_ARGS)
    assert expected in err
    assert not (workdir / "mlflow.db").exists()


def test_paper_recipe_does_not_need_the_improved_section(workdir, monkeypatch, capsys):
    """The paper recipe ignores `improved`: without it, train gets past the params and stops at the data."""
    set_param(workdir, "train.recipe", "paper")
    set_param(workdir, "improved", None, delete=True)
    err = run_stage(train, monkeypatch, capsys, *TRAIN_ARGS)
    assert "improved" not in err and "prepared split" in err


@pytest.mark.parametrize(
    "stage, extra",
    [
        (prepare, ("--raw-dir", "data/raw/x", "--out-dir", "data/prepared/x")),
        (train, TRAIN_ARGS[2:]),
    ],
)
def test_unknown_dataset_names_the_allowed_values(workdir, monkeypatch, capsys, stage, extra):
    err = run_stage(stage, monkeypatch, capsys, "--dataset", "svhm", *extra)
    assert "unknown dataset 'svhm'; allowed values: mnist, celeba, svhn" in err
    assert not (workdir / "data").exists()


def test_unknown_dataset_in_params_list_is_rejected(workdir, monkeypatch, capsys):
    set_param(workdir, "datasets", ["mnist", "cifar"])
    err = run_stage(prepare, monkeypatch, capsys, "--dataset", "mnist", "--raw-dir", "r", "--out-dir", "o")
    assert "unknown dataset 'cifar' in datasets; allowed values: mnist, celeba, svhn" in err


def test_prepare_keeps_verified_outputs_when_a_raw_file_is_corrupt(
    workdir, monkeypatch, capsys, mnist_fixture_dir, mnist_mirror_url
):
    raw, out = workdir / "raw", workdir / "prepared"
    set_param(workdir, "prepare.mnist.mirrors", [mnist_mirror_url])
    set_param(workdir, "prepare.mnist.neighbours", 0)  # a minute of search this test does not need
    monkeypatch.setattr(sys, "argv", ["prepare", "--dataset", "mnist", "--raw-dir", str(raw), "--out-dir", str(out)])
    prepare.main()
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == {"train.pt", "test.pt", "manifest.json"}

    (raw / "mnist" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"<html>quota exceeded</html>")
    err = run_stage(prepare, monkeypatch, capsys, "--dataset", "mnist", "--raw-dir", str(raw), "--out-dir", str(out))
    assert "t10k-labels-idx1-ubyte.gz" in err and "ec29112dd5afa0611ce80d1b7f02629c" in err and ".bad" in err
    assert (raw / "mnist" / "t10k-labels-idx1-ubyte.gz.bad").read_bytes() == b"<html>quota exceeded</html>"
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_verify_without_celeba_says_where_to_place_it_and_keeps_the_last_record(workdir, monkeypatch, capsys):
    record = workdir / "data/verified/celeba.json"
    record.parent.mkdir(parents=True)
    record.write_text('{"dataset": "celeba", "images": 202599}\n')
    err = run_stage(verify, monkeypatch, capsys, "--dataset", "celeba", "--raw-dir", "data/raw", "--out", str(record))
    assert "CelebA not found: data/raw/celeba does not exist. To place it by hand:" in err
    assert "list_attr_celeba.txt" in err and "img_align_celeba.zip" in err
    assert record.read_text() == '{"dataset": "celeba", "images": 202599}\n'


@pytest.mark.parametrize(
    "dotted, value, expected",
    [
        ("prepare.celeba.image_size", 48, "prepare.celeba.image_size = 48 is invalid: it must be one of 32, 64"),
        ("prepare.celeba.image_count", 0, "prepare.celeba.image_count = 0 is invalid: it must be greater than 0"),
        ("prepare.svhn.mirrors", "http://example.org/", "prepare.svhn.mirrors"),
    ],
)
def test_verify_checks_the_source_params_first(workdir, monkeypatch, capsys, dotted, value, expected):
    set_param(workdir, dotted, value)
    dataset = dotted.split(".")[1]
    err = run_stage(verify, monkeypatch, capsys, "--dataset", dataset, "--raw-dir", "raw", "--out", "v.json")
    assert expected in err
    assert not (workdir / "raw").exists() and not (workdir / "v.json").exists()


def test_prepare_rejects_a_mirror_list_that_is_not_a_list(workdir, monkeypatch, capsys):
    set_param(workdir, "prepare.mnist.mirrors", "https://example.org/mnist/")
    err = run_stage(prepare, monkeypatch, capsys, "--dataset", "mnist", "--raw-dir", "r", "--out-dir", "o")
    assert "prepare.mnist.mirrors" in err


RENDER_ARGS = (
    "--dataset",
    "mnist",
    "--model",
    "models/mnist",
    "--data",
    "data/prepared/mnist",
    "--media",
    "media/mnist",
    "--metrics",
    "reports/mnist/metrics.json",
    "--history",
    "reports/mnist/train_history.csv",
)


def test_render_refuses_a_nan_range_before_any_work(workdir, monkeypatch, capsys):
    set_param(workdir, "render.continuous_range", [math.nan, 1.0])
    err = run_stage(render, monkeypatch, capsys, *RENDER_ARGS)
    assert "render.continuous_range[0] = nan is invalid: it must be a finite number" in err
    assert not (workdir / "media").exists()


def test_render_without_a_trained_model_says_to_train(workdir, monkeypatch, capsys):
    err = run_stage(render, monkeypatch, capsys, *RENDER_ARGS)
    assert "models/mnist/model.ckpt does not exist; run the train stage first" in err
    assert not (workdir / "media").exists()


UNPICKLED_MARKER = "unpickled.txt"


class RunsCodeWhenUnpickled:
    """Unpickling this would write a file: what a malicious checkpoint could do."""

    def __reduce__(self):
        return (Path(UNPICKLED_MARKER).write_text, ("this ran",))


def tiny_infogan_checkpoint(path: Path, **model) -> None:
    """A checkpoint as train writes it (weights and hyperparameters), of a small model."""
    from infogan.training.module import InfoGANTraining

    config = shipped_model(g_fc=(16,), g_base_channels=8, g_upconv=(4,), d_conv=(4, 8), d_fc=(8,), q_hidden=8, **model)
    module = InfoGANTraining(config, shipped_train(recipe="paper"))
    torch.save(
        {
            "state_dict": module.state_dict(),
            "hyper_parameters": {"model": config.to_dict(), "train": shipped_train(recipe="paper").to_dict()},
        },
        path,
    )


def write_bad_checkpoint(path: Path, kind: str) -> None:
    if kind == "truncated":
        tiny_infogan_checkpoint(path)
        path.write_bytes(path.read_bytes()[:2000])
    elif kind == "text":
        path.write_text("not a checkpoint\n")
    elif kind == "foreign objects":
        torch.save(
            {"state_dict": {}, "hyper_parameters": {"model": {}, "train": {}}, "x": RunsCodeWhenUnpickled()}, path
        )
    elif kind == "no hyperparameters":
        torch.save({"weights": torch.zeros(3)}, path)
    elif kind == "weights of another model":
        tiny_infogan_checkpoint(path)
        other = path.with_name("other.ckpt")
        tiny_infogan_checkpoint(other, noise_dim=10)
        data = torch.load(path, weights_only=True)
        data["state_dict"] = torch.load(other, weights_only=True)["state_dict"]
        torch.save(data, path)


@pytest.mark.parametrize(
    "kind, expected",
    [
        ("truncated", "models/mnist/model.ckpt is not a readable checkpoint (truncated or damaged: "),
        ("text", "models/mnist/model.ckpt is not a PyTorch checkpoint (it cannot be unpickled)"),
        (
            "foreign objects",
            "models/mnist/model.ckpt was not written by this project: it holds Python objects other "
            "than tensors and plain values, and those are not unpickled",
        ),
        ("no hyperparameters", "models/mnist/model.ckpt is a PyTorch file but not an InfoGAN checkpoint"),
        (
            "weights of another model",
            "models/mnist/model.ckpt: its weights do not match the model its hyperparameters describe",
        ),
    ],
)
def test_render_rejects_a_bad_checkpoint_safely(workdir, monkeypatch, capsys, kind, expected):
    (workdir / "models/mnist").mkdir(parents=True)
    (workdir / "reports/mnist").mkdir(parents=True)
    (workdir / "models/mnist/run.json").write_text(json.dumps({"run_id": "0" * 32}))
    (workdir / "reports/mnist/train_history.csv").write_text("epoch,loss/d\n0,1.0\n")
    write_bad_checkpoint(workdir / "models/mnist/model.ckpt", kind)
    err = run_stage(render, monkeypatch, capsys, *RENDER_ARGS)
    assert expected in err
    assert not (workdir / UNPICKLED_MARKER).exists()  # nothing in the file was run
    assert not (workdir / "media").exists() and not (workdir / "reports/mnist/metrics.json").exists()
