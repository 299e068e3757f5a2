"""pipeline.params: params.yaml read once into one typed tree, overrides by dotted key."""

from __future__ import annotations

import math
import re

import pytest
import yaml

from infogan.data.registry import DATASETS
from infogan.errors import InfoGANError
from pipeline.check_params import check_params
from pipeline.params import (
    PROJECT_PARAMS,
    Params,
    load_params,
    parse_params,
    section,
    shipped_improved,
    shipped_model,
    shipped_params,
    shipped_render,
    shipped_source,
    shipped_train,
    with_overrides,
)


def test_shipped_builders_give_params_yaml_values():
    params = load_params(PROJECT_PARAMS)
    training = params.training("mnist")
    assert (shipped_model(), shipped_train(), shipped_improved()) == (training.model, training.train, training.improved)
    assert shipped_render() == params.render
    raw = yaml.safe_load(PROJECT_PARAMS.read_text())
    assert shipped_source("celeba").zip_md5 == raw["prepare"]["celeba"]["zip_md5"]


def test_every_params_key_is_the_attribute_of_the_same_name():
    """One name per value: params.yaml's dotted key is the attribute path in code."""
    raw = yaml.safe_load(PROJECT_PARAMS.read_text())
    params = load_params(PROJECT_PARAMS, "celeba")  # as the stages of mnist and celeba read it
    for key in ("train.lambda_cat", "model.mnist.noise_dim", "prepare.celeba.zip_md5", "render.seed", "tracking.uri"):
        node_raw, node = raw, params
        for part in key.split("."):
            node_raw, node = node_raw[part], getattr(node, part)
        assert node == node_raw, key
    assert isinstance(params, Params) and set(Params.model_fields) == set(raw)


def test_the_params_tree_has_a_prepare_and_a_model_section_per_dataset():
    params = parse_params(shipped_params({"datasets": list(DATASETS)}))
    for name, dataset in DATASETS.items():
        assert isinstance(params.source(name), dataset.source)
        assert params.training(name).model == getattr(params.model, name)


def test_the_sections_of_a_dataset_nobody_runs_are_not_read():
    """Neither listed in `datasets` nor the stage's own: its sections are None, and a bad value there stops nothing."""
    params = shipped_params({"datasets": ["mnist"], "model.svhn.noise_dim": -1})
    assert parse_params(params).model.svhn is None and parse_params(params).prepare.svhn is None
    with pytest.raises(InfoGANError, match=r"^model\.svhn\.noise_dim = -1 is invalid"):
        parse_params(params, "svhn")  # a stage run with --dataset svhn reads them
    assert parse_params(shipped_params(), "celeba").source("celeba").image_size == 32


def test_explicit_changes_apply_to_a_copy():
    assert shipped_model(categorical=(10, 3)).categorical == (10, 3)
    assert shipped_model().categorical == tuple(
        yaml.safe_load(PROJECT_PARAMS.read_text())["model"]["mnist"]["categorical"]
    )


def test_with_overrides_sets_dotted_keys_and_leaves_the_original_alone():
    params = shipped_params()
    changed = with_overrides(params, {"train.seed": 7, "improved.neighbours": 0})
    assert (changed["train"]["seed"], changed["improved"]["neighbours"]) == (7, 0)
    assert params["train"]["seed"] == shipped_params()["train"]["seed"]


@pytest.mark.parametrize("key", ["train.sed", "trian.seed", "train.seed.value"])
def test_with_overrides_refuses_a_key_params_yaml_lacks(key):
    with pytest.raises(InfoGANError, match=r"params\.yaml has no key"):
        with_overrides(shipped_params(), {key: 1})


def test_section_names_the_first_missing_part():
    with pytest.raises(InfoGANError, match=r"^model.mnist2 is missing from params.yaml$"):
        section(shipped_params(), "model.mnist2.noise_dim")


@pytest.mark.parametrize("recipe", ["paper", "improved"])
def test_the_recipe_alone_picks_its_own_length_from_params_yaml(recipe):
    params = shipped_params()
    params["train"]["recipe"] = recipe
    train = parse_params(params).train
    assert train.recipe == recipe
    assert train.max_epochs == params["train"]["max_epochs"][recipe]


@pytest.mark.parametrize("recipe", ["paper", "improved"])
def test_one_number_of_epochs_sets_the_length_of_either_recipe(recipe):
    params = shipped_params()
    params["train"] |= {"recipe": recipe, "max_epochs": 3}
    assert parse_params(params).train.max_epochs == 3


# ---------------------------------------------------------------- every number in params.yaml is checked


def numeric_params(node, key: str = "") -> list[str]:
    """The dotted key of every number in params.yaml, a list entry as `key[i]`: each a float param, or
    an integer one that a float could be typed in place of."""
    if isinstance(node, dict):
        return [k for name, value in node.items() for k in numeric_params(value, f"{key}.{name}" if key else name)]
    if isinstance(node, list):
        return [k for i, value in enumerate(node) for k in numeric_params(value, f"{key}[{i}]")]
    return [key] if isinstance(node, (int, float)) and not isinstance(node, bool) else []


def set_numeric(params: dict, key: str, value) -> dict:
    """A copy of params with the number at `key` (as numeric_params names it) set to `value`."""
    path, _, index = key.partition("[")
    if not index:
        return with_overrides(params, {path: value})
    entries = list(section(params, path))
    entries[int(index.rstrip("]"))] = value
    return with_overrides(params, {path: entries})


def load_owner(params: dict, key: str) -> None:
    """Build the params tree as the stage that reads `key` does when it starts: with the improved
    recipe for `improved`, and running the dataset whose `prepare` or `model` section holds it."""
    top, name = key.split(".")[:2]
    if top == "improved":  # read with the improved recipe only
        params = with_overrides(params, {"train.recipe": "improved"})
    parse_params(params, name if top in ("prepare", "model") else None)


NUMERIC_PARAMS = numeric_params(yaml.safe_load(PROJECT_PARAMS.read_text()))


def test_params_yaml_has_the_float_params_the_walk_must_find():
    assert {"train.lr_d", "model.mnist.noise_scale", "improved.scale", "render.continuous_range[0]"} <= set(
        NUMERIC_PARAMS
    )
    assert "prepare.mnist.timeout_s" in NUMERIC_PARAMS  # a float param written as an integer


@pytest.mark.parametrize("value", [math.nan, math.inf], ids=["nan", "inf"])
@pytest.mark.parametrize("key", NUMERIC_PARAMS)
def test_every_number_in_params_yaml_refuses_nan_and_inf_naming_its_key(key, value):
    """NaN passes `<=` and `>=` range checks, so each number is tried: a float param must say it
    needs a finite number, an integer one that it needs an integer."""
    with pytest.raises(InfoGANError) as info:
        load_owner(set_numeric(shipped_params(), key, value), key)
    assert re.search(rf"(^|: ){re.escape(key)} = {value!r} is invalid: it must be ", str(info.value))


@pytest.mark.parametrize("key", NUMERIC_PARAMS)
def test_the_check_stage_refuses_every_number_in_params_yaml_set_to_nan(key):
    """The check_params stage, which DVC runs before any other, reads what every stage reads."""
    params = set_numeric(shipped_params({"datasets": list(DATASETS)}), key, math.nan)
    with pytest.raises(InfoGANError) as info:
        check_params(params)
    assert re.search(rf"(^|: ){re.escape(key)} = nan is invalid: it must be ", str(info.value))
