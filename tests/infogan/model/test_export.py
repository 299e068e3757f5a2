"""The generator behind a code table: the same images as the traversals draw, before and after
`torch.export`, for any batch size."""

from __future__ import annotations

import torch

from infogan.evaluation.traversal import categorical_traversal, continuous_traversal
from infogan.model.codes import fixed_codes
from infogan.model.export import CodeTable, code_columns, code_table
from infogan.model.infogan import InfoGAN
from pipeline.params import shipped_model


def trained_looking(**model) -> InfoGAN:
    """A model with random weights and BatchNorm statistics that are not the initial ones, in eval mode."""
    torch.manual_seed(0)
    module = InfoGAN(shipped_model(**model))
    with torch.no_grad():
        module.train()
        module(module.codes.sample(64).vector)  # moves the running statistics
    return module.eval()


def test_the_columns_are_the_codes_then_the_noise():
    module = trained_looking(categorical=[10, 3], continuous=2, noise_dim=4)
    assert code_columns(module.codes) == ["c1", "c2", "c3", "c4", "z1", "z2", "z3", "z4"]


def test_the_table_draws_what_a_categorical_traversal_draws():
    module = trained_looking()
    frames = categorical_traversal(module, 0, n_samples=6, seed=3)
    table = CodeTable.of(module)
    for value, frame in enumerate(frames):
        noise, categorical, continuous = fixed_codes(module.codes, 6, 3)
        categorical[:, 0] = value
        assert torch.equal(table(code_table(module.codes, noise, categorical, continuous)), frame.images)


def test_the_table_draws_what_a_continuous_traversal_draws_with_two_categorical_codes():
    module = trained_looking(categorical=[10, 4], continuous=2)
    values = [-2.0, 0.5, 2.0]
    frames = continuous_traversal(module, 1, values, n_samples=5, seed=1)
    table = CodeTable.of(module)
    for value, frame in zip(values, frames, strict=True):
        noise, categorical, continuous = fixed_codes(module.codes, 5, 1)
        continuous[:, 1] = value
        assert torch.equal(table(code_table(module.codes, noise, categorical, continuous)), frame.images)


def test_the_exported_program_takes_any_batch_and_draws_the_same():
    module = trained_looking()
    table = CodeTable.of(module)
    noise, categorical, continuous = fixed_codes(module.codes, 4, 0)
    example = code_table(module.codes, noise, categorical, continuous)
    batch = torch.export.Dim("batch", min=1)
    program = torch.export.export(table, (example,), dynamic_shapes=({0: batch},)).module()
    for n in (1, 7):
        noise, categorical, continuous = fixed_codes(module.codes, n, 5)
        rows = code_table(module.codes, noise, categorical, continuous)
        assert torch.equal(program(rows), table(rows))
        assert program(rows).dtype == torch.uint8 and program(rows).shape == (n, 1, 28, 28)


def test_the_copy_leaves_the_module_alone():
    module = trained_looking()
    table = CodeTable.of(module)
    assert not table.training and module.generator is not table.generator
    for ours, theirs in zip(table.generator.parameters(), module.generator.parameters(), strict=True):
        assert ours.data_ptr() != theirs.data_ptr() and torch.equal(ours, theirs)
