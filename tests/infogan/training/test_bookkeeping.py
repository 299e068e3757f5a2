"""Tests for infogan.training.bookkeeping's watch for a non-finite loss: what its error says."""

from __future__ import annotations

import pytest
import torch

from infogan.training.bookkeeping import Losses, NonFiniteLoss, NonFiniteWatch


def watched(*iterations: dict[str, float]) -> NonFiniteWatch:
    watch = NonFiniteWatch()
    for i, losses in enumerate(iterations, start=1):
        watch.watch(Losses.stack({k: torch.tensor(v) for k, v in losses.items()}), i)
    return watch


def test_finite_losses_raise_nothing_and_leave_the_parameters_unread():
    def unread() -> list[str]:
        raise AssertionError("the parameters are read only when a loss was non-finite")

    watched({"loss/d": 1.0, "loss/g": 2.0}).check(unread)


def test_names_the_first_bad_iteration_its_losses_and_the_non_finite_parameters():
    watch = watched({"loss/d": 1.0, "loss/g": 2.0}, {"loss/d": float("nan"), "loss/g": float("inf")}, {"loss/d": 1.0})
    with pytest.raises(NonFiniteLoss) as info:
        watch.check(lambda: ["trunk.0.weight", "trunk.0.bias"])
    assert str(info.value).startswith(
        "loss/d, loss/g became NaN or infinite at iteration 2; non-finite parameters now: trunk.0.weight, "
        "trunk.0.bias. The run stopped. Lower the learning rates"
    )
    assert "checkpoint" not in str(info.value)  # the caller, which knows where checkpoints go, says that


def test_says_so_when_every_parameter_is_still_finite_and_lists_at_most_four():
    watch = watched({"loss/d": float("nan")})
    with pytest.raises(NonFiniteLoss) as info:
        watch.check(list)
    assert "; every parameter is still finite. The run stopped." in str(info.value)
    with pytest.raises(NonFiniteLoss) as info:
        watch.check(lambda: [f"w{i}" for i in range(6)])
    assert "non-finite parameters now: w0, w1, w2, w3 and 2 more." in str(info.value)


def test_with_kept_adds_what_the_caller_says_of_the_last_checkpoint():
    error = NonFiniteLoss(["loss/d"], 9, []).with_kept("the last checkpoint, written at iteration 7, is kept in x")
    assert "The run stopped; the last checkpoint, written at iteration 7, is kept in x. Lower" in str(error)
    assert (error.losses, error.iteration) == (["loss/d"], 9)
