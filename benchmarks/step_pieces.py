"""Where an improved-recipe iteration's time goes: each piece of the step timed alone, then whole
iterations in the memory layouts and compile settings asked for.

    python benchmarks/step_pieces.py --threads 2
    python benchmarks/step_pieces.py --threads 2 --set improved.continuous_orthogonal=3.0 \
        --without improved.continuous_orthogonal improved.continuous_anchor,improved.continuous_anchor_retake
    python benchmarks/step_pieces.py --threads 2 --set improved.continuous_orthogonal=3.0 \
        --variant improved.continuous_rows=16


Builds the training module from params.yaml's MNIST model and improved recipe (random weights and
random images: the time of the arithmetic does not depend on them) and times, under bf16 autocast
where the CPU has it: G's forward, G's forward and backward, a pass of D's trunk and Q's head
forward (and back), the nuisance transformation, D's whole step and G's whole step, each after G's
forward and each computing only its own weights' gradients, as training does. Then whole
iterations (both steps, backward included, no optimizer) per `--layouts` entry. `--set` changes
params.yaml's values first (as `pipeline.sweep --set` does); each `--without` entry (keys joined by
commas) adds a whole iteration with those keys at 0 (off), so a term's share of the iteration is
the difference; each `--variant` entry (KEY=VALUE pairs joined by commas) adds one with those
values. Every continuous code counts as started, so the terms between codes are all paid. Each is
timed `--repeats` times, in turn with the others, and its best mean is printed (with images/s for
whole iterations): on a shared machine the slowest runs are noise.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from infogan.config import TrainingConfig
from infogan.errors import InfoGANError
from infogan.model.augment import nuisance
from infogan.training.hardware import resolve_precision
from infogan.training.module import InfoGANTraining
from pipeline.params import parse_params, shipped_params, with_overrides
from pipeline.sweep import apply_overrides

LAYOUTS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}


def module_and_batch(
    config: TrainingConfig, layout: torch.memory_format, compiled: bool, batch: int
) -> tuple[InfoGANTraining, ...]:
    torch.manual_seed(0)
    module = InfoGANTraining(config.model, config.train, config.improved).to(memory_format=layout)
    if compiled:
        for part in (module.model.generator, module.model.trunk, module.model.d_head, module.model.q_head):
            part.compile()
    real, partners = ((torch.rand(batch, 1, 28, 28) * 2 - 1).contiguous(memory_format=layout) for _ in range(2))
    return module, real, partners


def timed(step: Callable[[], object], repeats: int = 10, warmup: int = 3) -> float:
    """Mean seconds of `step` over `repeats` calls, after `warmup` calls."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def others_weights(module: InfoGANTraining) -> dict[str, list[torch.nn.Parameter]]:
    """For each step ("d", "g"): the trainable weights its optimizer does not train (the other's)."""
    opt_d, opt_g = module.configure_optimizers()

    def untrained_by(optimizer: torch.optim.Optimizer) -> list[torch.nn.Parameter]:
        own = {id(p) for group in optimizer.param_groups for p in group["params"]}
        return [p for p in module.parameters() if p.requires_grad and id(p) not in own]

    return {"d": untrained_by(opt_d), "g": untrained_by(opt_g)}


@contextmanager
def frozen(weights: list[torch.nn.Parameter]) -> Iterator[None]:
    """Inside, `weights` need no gradient, as in training, where Lightning's `toggled_optimizer` turns
    the other optimizer's weights off in each step: G's step computes no gradient of D's weights,
    nor D's step of G's."""
    for p in weights:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p in weights:
            p.requires_grad_(True)


def whole_iteration(
    module: InfoGANTraining, real: torch.Tensor, partners: torch.Tensor, autocast: Callable
) -> Callable[[], None]:
    """One training iteration's arithmetic: G's forward, D's step and G's step, each backward with
    only its own weights' gradients, as in training (no optimizer)."""
    others = others_weights(module)

    def iteration() -> None:
        with autocast():
            latent = module.model.codes.sample(real.shape[0])
            fake = module.model.generator(latent.vector)
        with frozen(others["d"]):
            with autocast():
                d_losses = module.discriminator_step(real, fake, latent, partners)
            d_losses["total"].backward()
        with frozen(others["g"]):
            with autocast():
                g_losses = module.generator_step(fake, latent)
            g_losses["total"].backward()

    return iteration


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=3, help="alternated runs of each whole-iteration setting")
    p.add_argument(
        "--layouts",
        nargs="*",
        default=["contiguous", "channels_last", "contiguous+compile"],
        help="whole-iteration settings: contiguous or channels_last, with +compile for torch.compile",
    )
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="params overrides, as pipeline.sweep's")
    p.add_argument(
        "--without", nargs="+", default=[], metavar="KEY[,KEY]", help="a whole iteration with each entry's keys at 0"
    )
    p.add_argument(
        "--variant",
        nargs="+",
        default=[],
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="a whole iteration with each entry's values",
    )
    args = p.parse_args()

    def parsed(setting: str, params: dict) -> TrainingConfig:
        try:
            return parse_params(params).training("mnist")
        except InfoGANError as err:
            raise InfoGANError(f"{setting}: {err}") from None

    try:  # every setting is parsed here, so one the params refuse stops before anything is timed
        params = apply_overrides(shipped_params({"train.recipe": "improved"}), args.set)
        config = parsed("the recipe", params)
        # each setting: its config, memory layout and compile flag
        settings = {setting: (config, *setting.partition("+")[::2]) for setting in args.layouts}
        for keys in args.without:
            without = with_overrides(params, dict.fromkeys(keys.split(","), 0))
            settings[f"without {keys}"] = (parsed(f"without {keys}", without), "contiguous", "")
        for values in args.variant:
            changed = apply_overrides(params, values.split(","))
            settings[f"with {values}"] = (parsed(f"with {values}", changed), "contiguous", "")
    except InfoGANError as err:
        p.error(str(err))
    torch.set_num_threads(args.threads)
    bf16 = resolve_precision("auto", "cpu") == "bf16-mixed"
    autocast = lambda: torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16)  # noqa: E731
    print(f"{args.threads} threads, batch {args.batch_size}, {'bf16 autocast' if bf16 else 'fp32'}")

    module, real, partners = module_and_batch(config, torch.contiguous_format, False, args.batch_size)
    model, improved = module.model, module.improved
    others = others_weights(module)

    def generate():
        with autocast():
            latent = model.codes.sample(args.batch_size)
            return model.generator(latent.vector), latent

    def backward(loss: torch.Tensor) -> None:
        loss.float().sum().backward()

    def trunk_pass(back: bool) -> None:
        images = real.clone().requires_grad_(back)
        with autocast():
            logits = model.q_head(model.trunk(images)).categorical_logits
        if back:
            backward(logits)

    def nuisance_pass() -> None:
        images = real.clone().requires_grad_()
        with autocast():
            moved = nuisance(images, improved)
        backward(moved)

    def d_step() -> None:
        fake, latent = generate()
        with frozen(others["d"]):
            with autocast():
                losses = module.discriminator_step(real, fake, latent, partners)
            losses["total"].backward()

    def g_step() -> None:
        fake, latent = generate()
        with frozen(others["g"]):
            with autocast():
                losses = module.generator_step(fake, latent)
            losses["total"].backward()

    pieces = {
        "G forward": generate,
        "G forward and backward": lambda: backward(generate()[0]),
        "trunk + Q head forward": lambda: trunk_pass(False),
        "trunk + Q head forward and backward": lambda: trunk_pass(True),
        "nuisance forward and backward": nuisance_pass,
        "G forward + D's step": d_step,
        "G forward + G's step": g_step,
    }
    fastest: dict[str, float] = {}
    for _ in range(args.repeats):  # the pieces in turn, each repeat; the best mean of each is printed
        for name, piece in pieces.items():
            seconds = timed(piece, warmup=5)
            fastest[name] = min(fastest.get(name, seconds), seconds)
    for name, seconds in fastest.items():
        print(f"{name:40s} {1000 * seconds:7.1f} ms")

    best: dict[str, float] = {}
    for _ in range(args.repeats):
        for setting, (setting_config, layout, compiled) in settings.items():
            built = module_and_batch(setting_config, LAYOUTS[layout], compiled == "compile", args.batch_size)
            seconds = timed(whole_iteration(*built, autocast), warmup=5)
            best[setting] = min(best.get(setting, seconds), seconds)
    for setting, seconds in best.items():
        print(f"whole iteration, {setting:48s} {1000 * seconds:7.1f} ms  {args.batch_size / seconds:6.0f} images/s")


if __name__ == "__main__":
    main()
