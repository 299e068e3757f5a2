"""params.yaml, the one source of every value, read once at a stage's start into one typed tree.

`load_params(path)` checks the whole file with pydantic and returns `Params`, whose attributes are
params.yaml's keys: `params.train.lambda_cat`, `params.model.mnist.noise_dim`,
`params.prepare.celeba.zip_md5`. The section types live with the code that reads them
(infogan/config.py; each dataset's `prepare.<name>` in its module under infogan/data/), so a bad
value anywhere stops a stage before any work, naming the full key and what is allowed.

Code that runs outside a stage, the tests and the benchmarks, takes the project's own values through
`shipped_params` and the `shipped_*` builders, with explicit changes where it needs other ones (a
tiny model, one iteration). The section types have no defaults, so there is no second set of values
that could drift from this file.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import ValidationInfo, create_model, field_validator, model_validator

from infogan.config import (
    ImprovedConfig,
    ModelConfig,
    RenderConfig,
    Section,
    TrackingConfig,
    TrainConfig,
    TrainingConfig,
    build,
)
from infogan.data.registry import DATASETS
from infogan.errors import InfoGANError

PROJECT_PARAMS = Path(__file__).resolve().parents[1] / "params.yaml"

S = TypeVar("S", bound=Section)

# `prepare` and `model` hold one section per dataset the pipeline knows (infogan/data/registry.py); the
# sections of a dataset that is not read (`Params._only_what_is_read`) are None
Prepare = create_model("Prepare", __base__=Section, **{name: (d.source | None, ...) for name, d in DATASETS.items()})
Models = create_model("Models", __base__=Section, **{name: (ModelConfig | None, ...) for name in DATASETS})


class Params(Section):
    """params.yaml, typed."""

    datasets: list[str]  # the datasets `dvc repro` runs, each with its own verify@, prepare@, train@, render@
    prepare: Prepare
    model: Models
    train: TrainConfig
    improved: ImprovedConfig | None  # read with `train.recipe: improved` only; None otherwise
    render: RenderConfig
    tracking: TrackingConfig

    @field_validator("datasets", mode="before")
    @classmethod
    def _known_datasets(cls, listed: Any) -> Any:
        """A non-empty list of known names, each once; else stop naming the allowed values."""
        allowed = ", ".join(DATASETS)
        if not isinstance(listed, list) or not listed:
            raise InfoGANError(f"datasets must be a non-empty list; allowed values: {allowed}")
        for i, candidate in enumerate(listed):
            if candidate not in DATASETS:
                raise InfoGANError(f"unknown dataset {candidate!r} in datasets; allowed values: {allowed}")
            if candidate in listed[:i]:
                raise InfoGANError(f"datasets lists {candidate!r} twice; list each dataset once")
        return listed

    @model_validator(mode="before")
    @classmethod
    def _only_what_is_read(cls, params: Any, info: ValidationInfo) -> Any:
        """A section no stage reads is neither needed nor checked, and is None here: `improved` under
        the paper recipe, and the `prepare` and `model` sections of a dataset that is neither listed
        in `datasets` nor the one the stage was asked to run (the validation context's `dataset`)."""
        if not isinstance(params, Mapping):
            return params
        params = dict(params)
        train = params.get("train")
        if isinstance(train, Mapping) and train.get("recipe") != "improved":
            params["improved"] = None
        listed = params.get("datasets") if isinstance(params.get("datasets"), list) else []
        read = {name for name in listed if isinstance(name, str)} | {(info.context or {}).get("dataset")}
        for key in ("prepare", "model"):
            if isinstance(params.get(key), Mapping):
                sections = params[key]
                unread = {name: None for name in DATASETS if name not in read}
                params[key] = {**{k: v for k, v in sections.items() if k not in unread}, **unread}
        return params

    def source(self, dataset: str) -> Section:
        """The section `prepare.<dataset>`: where its raw files come from and what they must be."""
        return getattr(self.prepare, dataset)

    def training(self, dataset: str) -> TrainingConfig:
        """What a training of `dataset` reads: `model.<dataset>`, `train` and `improved`."""
        return TrainingConfig(model=getattr(self.model, dataset), train=self.train, improved=self.improved)


def read_params(path: Path = Path("params.yaml")) -> dict[str, Any]:
    """params.yaml as YAML gives it, unchecked."""
    if not path.is_file():
        raise InfoGANError(f"{path} not found; run the stage from the project root (as dvc repro does)")
    try:
        params = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise InfoGANError(f"{path} is not valid YAML: {err}") from None
    if not isinstance(params, dict):
        raise InfoGANError(f"{path} must hold a mapping of sections")
    return params


def parse_params(params: Mapping[str, Any], dataset: str | None = None) -> Params:
    """Every section a stage reads checked, those of `dataset` too when it is not listed in `datasets`;
    the first bad value raises `InfoGANError` naming its full key."""
    return build(Params, params, "", context={"dataset": dataset})


def load_params(path: Path = Path("params.yaml"), dataset: str | None = None) -> Params:
    """params.yaml, read and checked, for a stage that runs `dataset`."""
    return parse_params(read_params(path), dataset)


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
        parts = key.split(".")
        node: Any = params
        for i, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                raise InfoGANError(f"params.yaml has no key {'.'.join(parts[: i + 1])}")
            if i < len(parts) - 1:
                node = node[part]
        node[parts[-1]] = value
    return params


# ---------------------------------------------------------------- the project's own values


@functools.cache
def _project_params() -> dict[str, Any]:
    return read_params(PROJECT_PARAMS)


def shipped_params(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The project's params.yaml, with `overrides` ({dotted.key: value}) set."""
    return with_overrides(_project_params(), overrides or {})


@functools.cache
def _shipped() -> Params:
    return parse_params(_project_params())


def _changed(config: S, changes: Mapping[str, Any], section_name: str) -> S:
    """`config` with `changes` (field=value), checked again."""
    return build(type(config), {**config.model_dump(), **changes}, section_name) if changes else config


def shipped_model(dataset: str = "mnist", **changes: Any) -> ModelConfig:
    """`model.<dataset>` from params.yaml, with `changes` (field=value)."""
    model = build(ModelConfig, _project_params()["model"][dataset], f"model.{dataset}")
    return _changed(model, changes, f"model.{dataset}")


def shipped_train(**changes: Any) -> TrainConfig:
    """`train` from params.yaml (the shipped recipe and its length), with `changes`."""
    return _changed(_shipped().train, changes, "train")


def shipped_improved(**changes: Any) -> ImprovedConfig:
    """`improved` from params.yaml, with `changes`."""
    return _changed(build(ImprovedConfig, _project_params()["improved"], "improved"), changes, "improved")


def shipped_render(**changes: Any) -> RenderConfig:
    """`render` from params.yaml, with `changes`."""
    return _changed(_shipped().render, changes, "render")


def shipped_source(dataset: str, **changes: Any) -> Any:
    """`prepare.<dataset>` from params.yaml (the real files' checksums and counts), with `changes`."""
    source = DATASETS[dataset].source
    return _changed(
        build(source, _project_params()["prepare"][dataset], f"prepare.{dataset}"), changes, f"prepare.{dataset}"
    )
