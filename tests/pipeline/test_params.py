"""pipeline.params: params.yaml read once, overrides by dotted key, and the configs built from it."""

from __future__ import annotations

import pytest
import yaml

from infogan.errors import InfoGANError
from pipeline.params import (
    PROJECT_PARAMS,
    render_config,
    section,
    shipped_improved,
    shipped_model,
    shipped_optim,
    shipped_params,
    shipped_render,
    shipped_source,
    shipped_train,
    training_configs,
    with_overrides,
)


def test_shipped_builders_give_params_yaml_values():
    params = yaml.safe_load(PROJECT_PARAMS.read_text())
    model, optim, train, improved = training_configs(params, "mnist")
    assert (shipped_model(), shipped_optim(), shipped_train(), shipped_improved()) == (model, optim, train, improved)
    assert shipped_render() == render_config(params)
    assert shipped_source("celeba").zip_md5 == params["prepare"]["celeba"]["zip_md5"]


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
    _, optim, config, _ = training_configs(params, "mnist")
    assert optim.recipe == recipe
    assert config.max_epochs == params["train"]["max_epochs"][recipe]


@pytest.mark.parametrize("recipe", ["paper", "improved"])
def test_one_number_of_epochs_sets_the_length_of_either_recipe(recipe):
    params = shipped_params()
    params["train"] |= {"recipe": recipe, "max_epochs": 3}
    assert training_configs(params, "mnist")[2].max_epochs == 3
