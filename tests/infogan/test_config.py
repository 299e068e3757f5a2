"""Tests for infogan.config: building typed configs from params sections with pydantic, and every way that fails."""

from __future__ import annotations

import math
import re

import pydantic
import pytest
from pydantic_core import PydanticUndefined

from infogan.config import ImprovedConfig, ModelConfig, RenderConfig, TrainConfig, TrainingConfig, build
from infogan.errors import InfoGANError
from pipeline.params import shipped_improved, shipped_model, shipped_render, shipped_train

SHIPPED = {
    ModelConfig: shipped_model,
    TrainConfig: shipped_train,
    ImprovedConfig: shipped_improved,
    RenderConfig: shipped_render,
}


def full(cls: type) -> dict:
    """Every key of cls with params.yaml's value, as the params file spells it (tuples as lists)."""
    return SHIPPED[cls]().to_dict()


def built(cls: type, changes: dict, section: str):
    """cls from params.yaml's section with `changes`."""
    return build(cls, full(cls) | changes, section)


def error_of(cls: type, changes, section: str = "train") -> str:
    """The error for params.yaml's section with `changes` (a mapping), or for `changes` itself when it is no mapping."""
    with pytest.raises(InfoGANError) as info:
        build(cls, full(cls) | changes if isinstance(changes, dict) else changes, section)
    return str(info.value)


# ---------------------------------------------------------------- build: success


def test_full_section_builds_the_dataclass_with_the_given_values():
    params = full(TrainConfig) | {"batch_size": 64, "accelerator": "cpu", "devices": 1}
    config = build(TrainConfig, params, "train")
    assert isinstance(config, TrainConfig)
    assert (config.batch_size, config.accelerator, config.devices) == (64, "cpu", 1)


@pytest.mark.parametrize("cls", [*SHIPPED, TrainingConfig])
def test_config_sections_have_no_default_values(cls):
    """Every value comes from params.yaml (or a test's explicit change): no second copy in the code to drift."""
    with_defaults = [
        name
        for name, field in cls.model_fields.items()
        if field.default is not PydanticUndefined or field.default_factory is not None
    ]
    assert with_defaults == []
    with pytest.raises(pydantic.ValidationError):
        cls()


@pytest.mark.parametrize("cls", list(SHIPPED))
def test_a_section_with_a_key_left_out_names_it(cls):
    params = full(cls)
    left_out = next(iter(params))
    del params[left_out]
    with pytest.raises(InfoGANError, match=re.escape(f"section.{left_out} is missing from the params")):
        build(cls, params, "section")


def test_lists_become_tuples():
    config = built(ModelConfig, {"categorical": [10, 3], "d_conv": [32, 64]}, "model")
    assert config.categorical == (10, 3) and isinstance(config.categorical, tuple)
    assert config.d_conv == (32, 64) and isinstance(config.d_conv, tuple)
    render = built(RenderConfig, {"continuous_range": [-1, 3]}, "render")
    assert render.continuous_range == (-1.0, 3.0)
    assert all(isinstance(v, float) for v in render.continuous_range)


def test_ints_are_accepted_for_float_fields():
    config = built(TrainConfig, {"lr_d": 1, "lambda_cont": 0}, "train")
    assert config.lr_d == 1.0 and type(config.lr_d) is float
    assert config.lambda_cont == 0.0 and type(config.lambda_cont) is float


@pytest.mark.parametrize("value", ["auto", 2])
def test_union_field_accepts_each_option(value):
    assert built(TrainConfig, {"devices": value}, "train").devices == value


def test_configs_are_frozen():
    config = built(TrainConfig, {}, "train")
    with pytest.raises(pydantic.ValidationError, match="frozen"):
        config.batch_size = 3  # type: ignore[misc]


def test_to_dict_round_trips_through_build():
    model = shipped_model(categorical=(10, 3), continuous=1)
    assert model.to_dict()["categorical"] == [10, 3]
    assert build(ModelConfig, model.to_dict(), "model") == model


# ---------------------------------------------------------------- build: errors


@pytest.mark.parametrize(
    ("cls", "section", "key", "value", "expected"),
    [
        (TrainConfig, "train", "batch_size", "64", "an integer"),
        (TrainConfig, "train", "batch_size", 64.0, "an integer"),
        (TrainConfig, "train", "seed", None, "an integer"),
        (TrainConfig, "train", "lr_d", "2e-4", "a number"),
        (ModelConfig, "model.mnist", "spectral_norm", "yes", "true or false"),
        (ModelConfig, "model.mnist", "spectral_norm", 1, "true or false"),
        (ModelConfig, "model.mnist", "g_fc", 1024, "a list of"),
        (TrainConfig, "train", "devices", "two", "an integer or one of 'auto'"),
    ],
)
def test_wrong_type_names_the_full_key_and_the_expected_type(cls, section, key, value, expected):
    message = error_of(cls, {key: value}, section)
    assert f"{section}.{key} = {value!r}" in message
    assert expected in message


def test_wrong_element_type_in_a_list_names_the_element():
    message = error_of(ModelConfig, {"categorical": [10, "3"]}, "model")
    assert "model.categorical[1] = '3'" in message
    assert "an integer" in message


@pytest.mark.parametrize(
    ("cls", "key"),
    [
        (TrainConfig, "batch_size"),
        (TrainConfig, "eval_batch_size"),
        (TrainConfig, "max_epochs"),
        (TrainConfig, "num_nodes"),
    ],
)
def test_bools_are_rejected_for_int_fields(cls, key):
    message = error_of(cls, {key: True})
    assert f"train.{key} = True" in message and "an integer" in message


def test_bools_are_rejected_for_float_fields():
    message = error_of(TrainConfig, {"lambda_cat": True}, "train")
    assert "train.lambda_cat = True" in message and "a number" in message


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf, 10**400])
@pytest.mark.parametrize(
    ("cls", "key"),
    [(TrainConfig, "lr_d"), (TrainConfig, "lambda_cat"), (ModelConfig, "noise_scale"), (ImprovedConfig, "scale")],
)
def test_non_finite_floats_are_rejected_with_the_key(cls, key, value):
    """NaN passes `value <= bound` checks (every comparison with it is false); each is refused by name."""
    message = error_of(cls, {key: value}, "section")
    assert message == f"section.{key} = {value!r} is invalid: it must be a finite number"


@pytest.mark.parametrize("value", [math.nan, math.inf, -math.inf])
@pytest.mark.parametrize("index", [0, 1])
def test_non_finite_float_list_entries_are_rejected_with_the_entry(index, value):
    bounds = [-2.0, 2.0]
    bounds[index] = value
    message = error_of(RenderConfig, {"continuous_range": bounds}, "render")
    assert message == f"render.continuous_range[{index}] = {value!r} is invalid: it must be a finite number"


@pytest.mark.parametrize("value", [0, -1])
@pytest.mark.parametrize("key", ["batch_size", "batches_per_epoch", "max_epochs", "eval_batch_size", "num_nodes"])
def test_non_positive_sizes_are_rejected_with_the_key(key, value):
    message = error_of(TrainConfig, {key: value})
    assert f"train.{key} = {value}" in message
    assert "greater than 0" in message


def test_non_positive_model_size_is_rejected_with_the_key():
    message = error_of(ModelConfig, {"q_hidden": 0}, "model.mnist")
    assert "model.mnist.q_hidden = 0" in message and "greater than 0" in message


def test_non_negative_fields_accept_zero_and_reject_negatives():
    assert built(ModelConfig, {"noise_dim": 0}, "model.mnist").noise_dim == 0
    message = error_of(ModelConfig, {"noise_dim": -1}, "model.mnist")
    assert "model.mnist.noise_dim = -1" in message and "at least 0" in message
    message = error_of(TrainConfig, {"lambda_cont": -0.5}, "train")
    assert "train.lambda_cont = -0.5" in message and "at least 0" in message


@pytest.mark.parametrize(
    ("cls", "section", "key", "value", "choices"),
    [
        (ModelConfig, "model.mnist", "continuous_prior", "normal", ("uniform", "gaussian")),
        (TrainConfig, "train", "accelerator", "tpu", ("auto", "cpu", "gpu", "cuda", "mps")),
        (TrainConfig, "train", "precision", "32", ("32-true", "bf16-mixed", "16-mixed")),
        (TrainConfig, "train", "strategy", "ddp_spawn", ("auto", "ddp", "ddp_find_unused_parameters_true")),
        (TrainConfig, "train", "adversarial_loss", "wgan", ("bce", "hinge")),
    ],
)
def test_literal_choices_are_listed(cls, section, key, value, choices):
    message = error_of(cls, {key: value}, section)
    assert f"{section}.{key} = {value!r}" in message
    for choice in choices:
        assert repr(choice) in message


def test_unknown_key_lists_allowed_keys():
    message = error_of(TrainConfig, {"batchsize": 3})
    assert "unknown key train.batchsize" in message
    for name in TrainConfig.model_fields:
        assert name in message


@pytest.mark.parametrize("mapping", [[1, 2], "batch_size: 3", 5])
def test_non_mapping_section_is_rejected(mapping):
    message = error_of(TrainConfig, mapping)
    assert message.startswith("train must be a mapping")


# ---------------------------------------------------------------- cross-field checks


def test_generator_output_size_must_match_image_size():
    # 7 * 2**(2 + 1) = 56, not 28
    message = error_of(ModelConfig, {"g_upconv": [64, 32]}, "model.mnist")
    assert message.startswith("model.mnist:")
    assert "56px" in message and "image_size is 28" in message


def test_matching_generator_size_is_accepted():
    config = built(ModelConfig, {"g_base_size": 4, "g_upconv": [64, 32], "image_size": 32}, "model")
    assert config.g_base_size * 2 ** (len(config.g_upconv) + 1) == config.image_size == 32


def test_one_class_categorical_code_is_rejected():
    message = error_of(ModelConfig, {"categorical": [10, 1]}, "model.mnist")
    assert message.startswith("model.mnist:") and "at least 2 classes" in message and "[10, 1]" in message


def test_non_positive_list_entries_are_rejected():
    message = error_of(ModelConfig, {"d_conv": [64, 0]}, "model")
    assert "d_conv" in message and "positive" in message


def test_model_without_any_code_is_rejected():
    message = error_of(ModelConfig, {"categorical": [], "continuous": 0}, "model")
    assert "no latent code" in message


def test_image_size_must_be_divisible_by_the_discriminator_downsampling():
    # 28 is not divisible by 2**3
    message = error_of(ModelConfig, {"d_conv": [32, 64, 128]}, "model")
    assert "not divisible" in message


@pytest.mark.parametrize("beta", [1, 1.5])
def test_adam_betas_must_be_below_one(beta):
    message = error_of(TrainConfig, {"beta2": beta}, "train")
    assert message.startswith("train:") and "beta2" in message and "[0, 1)" in message


@pytest.mark.parametrize("bounds", [[2, -2], [1, 1], [0, 1, 2]])
def test_continuous_range_must_be_increasing_pair(bounds):
    message = error_of(RenderConfig, {"continuous_range": bounds}, "render")
    assert "continuous_range" in message


@pytest.mark.parametrize(
    "seed, expected",
    [
        (-1, "render.seed = -1 is invalid: it must be at least 0"),
        (2**32, "render: seed must be at most 4294967295 (NumPy's largest seed), got 4294967296"),
    ],
)
def test_the_render_seed_is_bounded_as_the_training_seed_is(seed, expected):
    assert error_of(RenderConfig, {"seed": seed}, "render") == expected


def test_model_properties():
    config = shipped_model(categorical=(10, 3), continuous=2, noise_dim=5)
    assert config.code_dim == 15
    assert config.latent_dim == 20


@pytest.mark.parametrize("value", [True, False, "auto"])
def test_compile_takes_a_bool_or_auto(value):
    assert built(TrainConfig, {"compile": value}, "train").compile == value


def test_compile_rejects_other_values_naming_the_choices():
    message = error_of(TrainConfig, {"compile": "yes"})
    assert "train.compile = 'yes'" in message and "true or false" in message and "'auto'" in message


# ---------------------------------------------------------------- the sections of one training


def test_a_training_reads_model_train_and_improved_under_their_params_names():
    config = TrainingConfig.of(shipped_model().to_dict(), shipped_train().to_dict(), shipped_improved().to_dict())
    assert config.train.lambda_cat == shipped_train().lambda_cat
    assert set(config.to_dict()) == {"model", "train", "improved"}


def test_the_improved_terms_apply_with_their_recipe_and_a_categorical_code():
    improved = shipped_improved()
    assert TrainingConfig.of(shipped_model(), shipped_train(recipe="improved"), improved).improved_terms() == improved
    assert TrainingConfig.of(shipped_model(), shipped_train(recipe="paper"), improved).improved_terms() is None
    no_class = shipped_model(categorical=(), continuous=2)
    assert TrainingConfig.of(no_class, shipped_train(recipe="improved"), improved).improved_terms() is None


def test_the_improved_recipe_without_its_section_is_refused():
    with pytest.raises(InfoGANError, match="the improved recipe needs its settings"):
        TrainingConfig.of(shipped_model(), shipped_train(recipe="improved"), None)
