"""params.yaml, the one source of every value: reading it, and the typed configs built from it.

The stages read the params file DVC gives them (`load_params`, then `training_configs` or
`render_config`). Code that runs outside a stage, the tests and the benchmarks, takes the project's
own values through `shipped_params` and the `shipped_*` builders, with explicit changes where it
needs other ones (a tiny model, one iteration). The config dataclasses have no defaults, so there is
no second set of values that could drift from this file.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import yaml

from infogan.config import (
    ImprovedConfig,
    ModelConfig,
    OptimConfig,
    RenderConfig,
    TrainConfig,
    from_mapping,
    resolve_recipe_length,
    split_section,
)
from infogan.errors import InfoGANError

PROJECT_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"

C = TypeVar("C")


def load_params(path: Path = Path("params.yaml")) -> dict[str, Any]:
    if not path.is_file():
        raise InfoGANError(f"{path} not found; run the stage from the project root (as dvc repro does)")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise InfoGANError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(params, dict):
        raise InfoGANError(f"{path} must hold a mapping of sections")
    return params


def section(params: Mapping[str, Any], dotted: str) -> Any:
    """params['a']['b'] for dotted 'a.b', or an error naming the missing key."""
    node: Any = params
    for i, part in enumerate(dotted.split(".")):
        if not isinstance(node, Mapping) or part not in node:
            raise InfoGANError(f"{'.'.join(dotted.split('.')[: i + 1])} is missing from params.yaml")
        node = node[part]
    return node


def with_overrides(params: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of params with each {dotted.key: value} set; the key must already exist, as with `dvc exp run -S`."""
    params = copy.deepcopy(dict(params))
    for key, value in overrides.items():
        *parents, last = key.split(".")
        node: Any = params
        for i, part in enumerate([*parents, last]):
            if not isinstance(node, dict) or part not in node:
                raise InfoGANError(f"params.yaml has no key {'.'.join([*parents, last][: i + 1])}")
            if i < len(parents):
                node = node[part]
        node[last] = value
    return params


class TrainingConfigs(NamedTuple):
    """The configs of one training; `improved` is None unless `train.recipe` is improved."""

    model: ModelConfig
    optim: OptimConfig
    train: TrainConfig
    improved: ImprovedConfig | None


def training_configs(params: Mapping[str, Any], dataset: str) -> TrainingConfigs:
    model = from_mapping(ModelConfig, section(params, f"model.{dataset}"), f"model.{dataset}")
    optim, train = split_section(resolve_recipe_length(section(params, "train")), (OptimConfig, TrainConfig), "train")
    improved = None
    if optim.recipe == "improved":
        improved = from_mapping(ImprovedConfig, section(params, "improved"), "improved")
    return TrainingConfigs(model, optim, train, improved)


def render_config(params: Mapping[str, Any]) -> RenderConfig:
    return from_mapping(RenderConfig, section(params, "render"), "render")


# ---------------------------------------------------------------- the project's own values


@functools.cache
def _project_params() -> dict[str, Any]:
    return load_params(PROJECT_PARAMS)


def shipped_params(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The project's params.yaml, with `overrides` ({dotted.key: value}) set."""
    return with_overrides(_project_params(), overrides or {})


def _changed(config: C, changes: Mapping[str, Any]) -> C:
    return dataclasses.replace(config, **changes) if changes else config


def shipped_model(dataset: str = "mnist", **changes: Any) -> ModelConfig:
    """`model.<dataset>` from params.yaml, with `changes` (field=value)."""
    key = f"model.{dataset}"
    return _changed(from_mapping(ModelConfig, section(_project_params(), key), key), changes)


def shipped_optim(**changes: Any) -> OptimConfig:
    """The objective's part of `train` in params.yaml (the shipped recipe), with `changes`."""
    return _changed(training_configs(_project_params(), "mnist").optim, changes)


def shipped_train(**changes: Any) -> TrainConfig:
    """The run's part of `train` in params.yaml (the shipped recipe's length), with `changes`."""
    return _changed(training_configs(_project_params(), "mnist").train, changes)


def shipped_improved(**changes: Any) -> ImprovedConfig:
    """`improved` from params.yaml, with `changes`."""
    return _changed(from_mapping(ImprovedConfig, section(_project_params(), "improved"), "improved"), changes)


def shipped_render(**changes: Any) -> RenderConfig:
    """`render` from params.yaml, with `changes`."""
    return _changed(render_config(_project_params()), changes)


def shipped_source(dataset: str, **changes: Any) -> Any:
    """`prepare.<dataset>` from params.yaml (the real files' checksums and counts), with `changes`."""
    # imported here, so that train and render, which import this module, do not depend on the download code
    from infogan.raw import source_config

    key = f"prepare.{dataset}"
    return _changed(source_config(dataset, section(_project_params(), key)), changes)
