"""The check_params stage: every param of every stage checked before DVC runs any other stage."""

from __future__ import annotations

import json
import math
import sys
import time

import pytest
import yaml

from infogan.errors import InfoGANError
from pipeline import check_params
from pipeline.params import shipped_params
from tests.pipeline.project_copy import attempt, copy_project, dvc_command, dvc_env


def error_of(overrides: dict) -> str:
    with pytest.raises(InfoGANError) as info:
        check_params.check_params(shipped_params(overrides))
    return str(info.value)


def test_the_shipped_params_pass_and_name_the_datasets():
    assert check_params.check_params(shipped_params()) == shipped_params()["datasets"]


@pytest.mark.parametrize(
    ("datasets", "expected"),
    [
        ([], "datasets must be a non-empty list; allowed values: mnist, celeba, svhn"),
        ("mnist", "datasets must be a non-empty list; allowed values: mnist, celeba, svhn"),
        (["mnist2"], "unknown dataset 'mnist2' in datasets; allowed values: mnist, celeba, svhn"),
        (["mnist", "cifar"], "unknown dataset 'cifar' in datasets; allowed values: mnist, celeba, svhn"),
        (["mnist", "mnist"], "datasets lists 'mnist' twice; list each dataset once"),
    ],
)
def test_bad_datasets_are_refused_with_the_allowed_values(datasets, expected):
    assert error_of({"datasets": datasets}) == expected


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("prepare.svhn.timeout_s", 0, "prepare.svhn.timeout_s = 0.0 is invalid: it must be greater than 0"),
        ("model.celeba.noise_dim", -1, "model.celeba.noise_dim = -1 is invalid: it must be at least 0"),
        ("train.lambda_cat", math.nan, "train.lambda_cat = nan is invalid: it must be a finite number"),
        ("improved.scale", -1, "improved.scale = -1.0 is invalid: it must be at least 0"),
        ("render.scale", 0, "render.scale = 0 is invalid: it must be greater than 0"),
        ("tracking.uri", 5, "tracking.uri = 5 is invalid: it must be a non-empty string"),
        ("tracking.artifact_root", "", "tracking.artifact_root = '' is invalid: it must be a non-empty string"),
    ],
)
def test_a_bad_value_of_any_stage_is_named(key, value, expected):
    assert error_of({"datasets": ["mnist", "celeba", "svhn"], key: value}) == expected


def test_only_the_listed_datasets_sections_are_read():
    check_params.check_params(shipped_params({"datasets": ["mnist"], "model.svhn.noise_dim": -1}))


def test_the_stage_writes_its_record_or_exits_2_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(shipped_params()))
    monkeypatch.setattr(sys, "argv", ["check_params", "--out", "data/checked_params.json"])
    check_params.main()
    assert json.loads((tmp_path / "data/checked_params.json").read_text()) == {"datasets": ["mnist"]}

    (tmp_path / "params.yaml").write_text(yaml.safe_dump(shipped_params({"render.continuous_range": [math.nan, 1]})))
    capsys.readouterr()
    with pytest.raises(SystemExit) as stopped:
        check_params.main()
    assert stopped.value.code == 2
    assert capsys.readouterr().err == (
        "error: render.continuous_range[0] = nan is invalid: it must be a finite number\n"
    )


@pytest.mark.slow  # runs dvc repro (seconds: it stops at the first stage)
@pytest.mark.parametrize(
    ("datasets", "expected"),
    [
        ([], "error: datasets must be a non-empty list; allowed values: mnist, celeba, svhn"),
        (["mnist2"], "error: unknown dataset 'mnist2' in datasets; allowed values: mnist, celeba, svhn"),
        (["mnist", "cifar"], "error: unknown dataset 'cifar' in datasets; allowed values: mnist, celeba, svhn"),
    ],
)
def test_dvc_repro_stops_on_bad_datasets_with_the_projects_message(tmp_path, datasets, expected):
    """Without the check stage, `datasets: []` ran nothing and exited 0, and an unknown name got DVC's
    "Parameters 'prepare.mnist2' are missing"."""
    copy_project(tmp_path)
    params = yaml.safe_load((tmp_path / "params.yaml").read_text())
    params["datasets"] = datasets
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    start = time.monotonic()
    result = attempt(dvc_command("repro"), tmp_path, dvc_env(), timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert expected in output and "Traceback" not in output
    assert "Running stage 'verify@" not in output and not (tmp_path / "data/verified").exists()
    assert time.monotonic() - start < 120
