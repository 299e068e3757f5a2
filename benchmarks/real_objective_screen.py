"""Which real-image objective picks the digit partition? A cheap screen without the GAN.

    python benchmarks/real_objective_screen.py --data data/prepared/mnist --objective entropies \
        --seed 0 --steps 1500 [--rotation-deg 25 --scale 0.15]

Trains only what the objective acts on in the improved recipe, the discriminator trunk and Q's
categorical head of `params.yaml`'s MNIST model, on real training images with one objective of
`infogan/model/losses.py`, and prints Q's Hungarian-matched accuracy on the 10,000 test images every
`--eval-every` steps. No generator, no adversarial loss: it asks whether the objective alone, on
these networks and this nuisance transformation T, prefers digits to a split by style. Objectives:
  - consistency: KL(Q(c|x) || Q(c|T(x))) (the improved recipe's real-consistency term);
  - entropies: consistency + 0.1 H(c|x) - 0.4 H(c) (IMSAT's weights);
  - information: -I(c(x); c(T(x))) (IIC).
Labels are read for the printed accuracy only. One torch thread by default, so that two screens
share a 2-core machine; the thread count changes the run, so it is printed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
import yaml

from infogan.config import ImprovedConfig, ModelConfig, build
from infogan.data.images import load_split, to_model_range
from infogan.evaluation.metrics import hungarian_accuracy
from infogan.model.augment import nuisance
from infogan.model.losses import categorical_consistency, categorical_entropies, categorical_mutual_information
from infogan.model.networks import DiscriminatorTrunk, QHead

OBJECTIVES = ("consistency", "entropies", "information")


def objective(name: str, logits: torch.Tensor, moved: torch.Tensor, sizes: tuple[int, ...]) -> torch.Tensor:
    if name == "information":
        return -categorical_mutual_information(logits, moved, sizes)
    loss = categorical_consistency(logits, moved, sizes)
    if name == "entropies":
        conditional, marginal = categorical_entropies(logits, sizes)
        loss = loss + 0.1 * conditional - 0.4 * marginal
    return loss


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("data/prepared/mnist"), help="prepared MNIST folder")
    p.add_argument("--params", type=Path, default=Path("params.yaml"))
    p.add_argument("--objective", choices=OBJECTIVES, default="entropies")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=1500)
    p.add_argument("--eval-every", type=int, default=250)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--rotation-deg", type=float, default=None, help="T's rotation (default: params.yaml's)")
    p.add_argument("--scale", type=float, default=None, help="T's stretch (default: params.yaml's)")
    args = p.parse_args()

    params = yaml.safe_load(args.params.read_text())
    model_params = {**params["model"]["mnist"], "continuous": 0}  # the categorical head alone
    model = build(ModelConfig, model_params, "model.mnist")
    improved = params["improved"]
    if args.rotation_deg is not None:
        improved = {**improved, "rotation_deg": args.rotation_deg}
    if args.scale is not None:
        improved = {**improved, "scale": args.scale}
    transform = build(ImprovedConfig, improved, "improved")
    train = params["train"]

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_images, _ = load_split(args.data / "train.pt")
    test_images, test_labels = load_split(args.data / "test.pt")
    trunk = DiscriminatorTrunk(model)
    q_head = QHead(model, trunk.out_features)
    networks = torch.nn.ModuleDict({"trunk": trunk, "q_head": q_head})
    optimizer = torch.optim.Adam(networks.parameters(), lr=train["lr_d"], betas=(train["beta1"], train["beta2"]))
    sizes = model.categorical
    print(
        f"objective {args.objective}, seed {args.seed}, {args.threads} thread(s), batch {train['batch_size']}, "
        f"T: rotation {transform.rotation_deg} deg, scale {transform.scale}, shift {transform.shift_px} px, "
        f"thickness {transform.thickness}",
        flush=True,
    )

    def logits_of(images: torch.Tensor) -> torch.Tensor:
        return q_head(trunk(images)).categorical_logits

    @torch.no_grad()
    def accuracy() -> float:
        networks.eval()
        predictions = [
            logits_of(to_model_range(test_images[i : i + 1000])).argmax(1) for i in range(0, len(test_images), 1000)
        ]
        networks.train()
        return hungarian_accuracy(torch.cat(predictions).numpy(), test_labels.numpy())[0]

    start = time.perf_counter()
    for step in range(1, args.steps + 1):
        index = torch.randint(0, len(train_images), (train["batch_size"],))
        real = to_model_range(train_images[index])
        # one pass over x and T(x) together, as one batch-norm batch
        logits, moved = logits_of(torch.cat([real, nuisance(real, transform)])).chunk(2)
        loss = objective(args.objective, logits, moved, sizes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % args.eval_every == 0 or step == args.steps:
            elapsed = time.perf_counter() - start
            print(f"step {step}: loss {loss.item():.3f}, accuracy {accuracy():.4f}, {elapsed:.0f} s", flush=True)


if __name__ == "__main__":
    main()
