"""How far a continuous code's slant reading comes from digits that already lean one way.

    python benchmarks/traversal_lean.py sweeps/NAME/seed_0/model/model.ckpt [more checkpoints]

Render's traversal of a code holds the other codes at 0 (infogan/evaluation/factors.py). Beside a
slant code, that 0 is a typical lean, and a code that widens digits along the image's x axis leans
each one further its own way (benchmarks/factor_measures.py): its slant rho then follows the share of
latents leaning right. For each code of each model this prints that share and the median lean at the
code's 0 (the traversal's middle step), the code's mean per-latent slant rho over all latents and over
those leaning right and left, and its median change of slant and width, over render's 100 latents.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from infogan.evaluation.factors import per_column_spearman, sweep_measurements
from infogan.model.infogan import InfoGAN
from infogan.model.load import load_model


def code_leans(model: InfoGAN, n_samples: int = 100, seed: int = 0) -> list[dict[str, float]]:
    """One row per continuous code: right (the share of latents leaning right at the code's 0),
    median_lean (degrees), slant_rho, slant_rho_right, slant_rho_left (NaN where no latent leans that
    way), slant_change (degrees) and width_change (pixels), as render's factor metrics count them."""
    rows = []
    for code in range(model.codes.n_continuous):
        measured = sweep_measurements(model, code, n_samples, seed)
        slant, width = measured["slant"], measured["width"]
        rho, leans = per_column_spearman(slant), slant[len(slant) // 2]
        right = leans > 0

        def mean(selected: np.ndarray) -> float:
            return float(np.nanmean(selected)) if np.isfinite(selected).any() else float("nan")

        rows.append(
            {
                "right": float(right.mean()),
                "median_lean": float(np.median(leans)),
                "slant_rho": mean(rho),
                "slant_rho_right": mean(rho[right]),
                "slant_rho_left": mean(rho[~right]),
                "slant_change": float(np.median(slant[-1] - slant[0])),
                "width_change": float(np.median(width[-1] - width[0])),
            }
        )
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("checkpoints", type=Path, nargs="+", help="model.ckpt files (a train or sweep output)")
    args = p.parse_args()
    for path in args.checkpoints:
        for code, row in enumerate(code_leans(load_model(path))):
            print(
                f"{path} c{code + 2}: {row['right']:.0%} lean right at 0 (median {row['median_lean']:+.1f} deg); "
                f"slant rho {row['slant_rho']:+.2f} (right {row['slant_rho_right']:+.2f}, "
                f"left {row['slant_rho_left']:+.2f}); change slant {row['slant_change']:+.1f} deg, "
                f"width {row['width_change']:+.2f} px"
            )


if __name__ == "__main__":
    main()
