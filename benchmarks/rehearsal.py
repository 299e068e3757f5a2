"""Rehearse the pipeline on synthetic full-size copies of CelebA and SVHN: each stage's time, memory and disk.

    python benchmarks/synthetic_copies.py --out /tmp/copies          # once: about 1.5 GB
    python benchmarks/rehearsal.py --copies /tmp/copies --work /tmp/rehearsal

For each dataset, a throwaway copy of the project (a fresh git repository with its own DVC cache, in
a temporary folder under --work) gets the synthetic copy: CelebA's zip and annotation files placed
by hand in data/raw/celeba, SVHN's .mat files served by a loopback mirror. Its params.yaml names
that one dataset, the copy's checksums and counts (synthetic_params.yaml), a short training
(--iterations, 200 by default) and a tracking store of its own. Then, twice, the real stages run one
by one with `dvc repro -s` (check_params, verify, prepare, train, render; --until stops after one):
first from nothing, then with nothing changed. For each stage it prints the wall time, the peak
resident memory of the stage's process tree (wait4's ru_maxrss: its largest process), the disk the
stage added to the copy (raw, prepared, model and cache folders alike), whether DVC ran it or
skipped it, and for training the images/s of its last progress line. --celeba-64 adds a pass with
64 px images and the larger model that params.yaml notes under model.celeba (without the neighbour
table, whose search at 64 px is not rehearsed). Last, a projection of
the paper recipe's full training from the measured images/s and the FLOPs per image
(`flops_per_image`): on this CPU, and on one H200 at its peak.

Nothing is written into this repository or its DVC cache; --keep keeps the temporary copies.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: the tests' helpers below are found from the project root
from tests.loopback import serve_folder  # noqa: E402
from tests.pipeline.project_copy import copy_project, dvc_env, git  # noqa: E402

STAGES = ("check_params", "verify@{}", "prepare@{}", "train@{}", "render@{}")
# the larger CelebA model params.yaml notes for prepare.celeba.image_size 64
H200_PEAK = 989e12  # FLOP/s, dense bf16 (NVIDIA's H200 SXM datasheet: 1,979 TFLOPS with sparsity)
CELEBA_64 = {"image_size": 64, "g_upconv": [512, 256, 128, 64], "d_conv": [64, 128, 256, 512]}


def disk_bytes(folder: Path) -> int:
    """Bytes of the files under `folder` (hard links counted once), as `du` counts them."""
    seen, total = set(), 0
    for directory, _, files in os.walk(folder):
        for name in files:
            stat = os.lstat(os.path.join(directory, name))
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_blocks * 512
    return total


def place(source: Path, destination: Path) -> None:
    """Hard-link (else copy) each file of `source` into `destination`, as a user's placed copy."""
    destination.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        try:
            os.link(path, destination / path.name)
        except OSError:
            shutil.copy2(path, destination / path.name)


def run_stage(copy: Path, stage: str, env: dict, log: Path) -> dict:
    """`dvc repro -s <stage>` in the copy; its wall time, the peak RSS of its process tree, the disk it
    added, whether it ran, and the log's last `images/s`."""
    before = disk_bytes(copy)
    start = time.perf_counter()
    with log.open("w") as out:
        command = [sys.executable, "-m", "dvc", "repro", "-s", stage]
        child = subprocess.Popen(command, cwd=copy, env=env, stdout=out, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(child.pid, 0)  # ru_maxrss: the largest of the tree's processes
    seconds = time.perf_counter() - start
    text = log.read_text(errors="replace")
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{stage} failed in {copy}:\n{text[-4000:]}")
    rates = re.findall(r"(\d+) images/s", text)
    return {
        "stage": stage,
        "ran": "didn't change, skipping" not in text,
        "seconds": seconds,
        "peak_rss_mib": usage.ru_maxrss / 1024,  # Linux reports KiB
        "disk_mib": (disk_bytes(copy) - before) / 2**20,
        "images_per_s": float(rates[-1]) if rates else None,
    }


def rehearse(
    dataset: str, copies: Path, work: Path, iterations: int, passes: list[str], model: dict, stages: tuple[str, ...]
) -> list[dict]:
    """Both passes of one dataset in a fresh project copy under `work`; a row per stage and pass."""
    synthetic = yaml.safe_load((copies / "synthetic_params.yaml").read_text())["prepare"][dataset]
    copy = Path(tempfile.mkdtemp(prefix=f"rehearsal-{dataset}-", dir=work))
    copy_project(copy)
    if dataset == "celeba":
        place(copies / "raw" / "celeba", copy / "data" / "raw" / "celeba")
    params = yaml.safe_load((copy / "params.yaml").read_text())
    params["datasets"] = [dataset]
    params["model"][dataset].update(model)
    batches = min(iterations, 100)
    params["train"].update(batches_per_epoch=batches, max_epochs=max(1, iterations // batches))
    params["tracking"].update(uri=f"sqlite:///{copy / 'mlflow.db'}", artifact_root=str(copy / "mlartifacts"))
    env = dvc_env()
    rows = []
    with serve_folder(copies / "mirror") as url:
        section = {**synthetic, **({"mirrors": [url]} if dataset == "svhn" else {})}
        if dataset == "celeba" and "image_size" in model:
            # the 64 px pass measures the larger model's speed; its neighbour search (12,288 pixels an
            # image, four times 32 px's) is left out, with the term that reads it
            section.update(image_size=model["image_size"], neighbours=0)
            params["improved"]["neighbours"] = 0
        params["prepare"][dataset].update(section)
        (copy / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        git(copy, "commit", "-q", "-am", "rehearsal params")
        for label in passes:
            for stage in stages:
                name = stage.format(dataset)
                row = run_stage(copy, name, env, copy / f"{label}-{name.replace('@', '-')}.log")
                rows.append({"dataset": dataset, "pass": label, **row})
                print(format_row(rows[-1]), flush=True)
    print(f"{dataset}: the copy, logs included, is {copy}")
    return rows


def flops_per_image(params_file: Path, dataset: str, batch: int = 8) -> float:
    """FLOPs of one training iteration per image, forward and backward, as torch's FlopCounterMode
    counts them (matrix products and convolutions): G's forward, the discriminator step (with the
    improved recipe's terms on real images and on T(fake)) and the generator step, on a batch of
    `batch` images; a pixel-space neighbour stands for each real image's partner."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from infogan.training.module import InfoGANTraining
    from pipeline.params import load_params

    config = load_params(params_file, dataset).training(dataset)
    module = InfoGANTraining(config.model, config.train, config.improved)
    shape = (batch, config.model.image_channels, config.model.image_size, config.model.image_size)
    real = torch.rand(shape) * 2 - 1
    partners = real.roll(1, 0) if module.improved is not None and module.improved.neighbours else None
    with FlopCounterMode(display=False) as counter:
        latent = module.model.codes.sample(batch)
        fake = module.model.generator(latent.vector)
        module.discriminator_step(real, fake, latent, partners)["total"].backward(retain_graph=True)
        module.generator_step(fake, latent)["total"].backward()
    return counter.get_total_flops() / batch


def format_row(row: dict) -> str:
    rate = f", {row['images_per_s']:.0f} images/s" if row["images_per_s"] else ""
    return (
        f"{row['dataset']:7s} {row['pass']:9s} {row['stage']:16s} {'ran' if row['ran'] else 'skipped':7s} "
        f"{row['seconds']:8.1f} s  peak {row['peak_rss_mib']:7.0f} MiB  disk {row['disk_mib']:+9.1f} MiB{rate}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--copies", type=Path, required=True, help="what benchmarks/synthetic_copies.py wrote")
    p.add_argument("--work", type=Path, default=None, help="folder for the temporary project copies")
    p.add_argument("--datasets", nargs="+", choices=("celeba", "svhn"), default=["svhn", "celeba"])
    p.add_argument("--iterations", type=int, default=200)
    p.add_argument("--celeba-64", action="store_true", help="also rehearse CelebA at 64 px with the larger model")
    p.add_argument("--keep", action="store_true", help="keep the temporary project copies")
    p.add_argument("--until", choices=("verify", "prepare", "train", "render"), default="render", help="last stage run")
    args = p.parse_args()
    if not (args.copies / "synthetic_params.yaml").is_file():
        p.error(f"{args.copies} holds no synthetic_params.yaml: run benchmarks/synthetic_copies.py --out {args.copies}")
    if args.iterations < 1:
        p.error("--iterations must be at least 1")
    stages = STAGES[: 2 + ("verify", "prepare", "train", "render").index(args.until)]
    work = Path(tempfile.mkdtemp(prefix="infogan-rehearsal-", dir=args.work))
    rows = []
    try:
        for dataset in args.datasets:
            rows += rehearse(dataset, args.copies, work, args.iterations, ["first", "unchanged"], {}, stages)
            if dataset == "celeba" and args.celeba_64:
                rows += rehearse(dataset, args.copies, work, args.iterations, ["64 px"], CELEBA_64, stages)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print("\n" + "\n".join(format_row(row) for row in rows))
    print("\nProjected full trainings (the rehearsal's images/s, its FLOPs per image):")
    for row in rows:
        if row["stage"].startswith("train@") and row["ran"] and row["images_per_s"]:
            print(projection(row, args.copies))


def projection(row: dict, copies: Path) -> str:
    """The paper recipe's schedule on this CPU, at the FLOP rate the rehearsal's training reached,
    and on one H200 at its peak (a bound: small convolutions reach a fraction of it)."""
    dataset = row["dataset"]
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    train = params["train"]
    images = train["max_epochs"]["paper"] * train["batches_per_epoch"] * train["batch_size"]
    with tempfile.TemporaryDirectory() as tmp:
        paper = Path(tmp) / "params.yaml"
        params["prepare"][dataset].update(
            yaml.safe_load((copies / "synthetic_params.yaml").read_text())["prepare"][dataset]
        )
        if row["pass"] == "64 px":
            params["model"][dataset].update(CELEBA_64)
            params["prepare"][dataset]["image_size"] = 64
        improved = flops_per_image(_write(paper, params), dataset)
        params["train"]["recipe"] = "paper"
        flops = flops_per_image(_write(paper, params), dataset)
    rate = row["images_per_s"] * improved  # FLOP/s the rehearsal's (improved-recipe) training reached
    return (
        f"{dataset} {row['pass']}: {improved / 1e9:.2f} GFLOP per image (default recipe), {flops / 1e9:.2f} (paper); "
        f"{rate / 1e9:.0f} GFLOP/s reached here; the paper recipe's {images:,} images: "
        f"{images * flops / rate / 3600:.1f} h on this CPU, {images * flops / H200_PEAK:.1f} s on one H200 at its "
        "dense bf16 peak"
    )


def _write(path: Path, params: dict) -> Path:
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    return path


if __name__ == "__main__":
    main()
