"""benchmarks/traversal_lean.py on a small untrained model: one row per code, its shares and rhos in
range, its per-class rhos; Q's reading of real digits against their slant, per digit; and each
class's effect cosines with the others'; and the signed and unsigned cosine between two codes' effects."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from benchmarks.factor_measures import WITH_INK_SLANT, affine, shear, soft_thicken
from benchmarks.traversal_lean import (
    class_effect_cosines,
    code_leans,
    digit_changes,
    effect_cosine_summary,
    effects_line,
    generated_digits,
    lean_alone_changes,
    reading_responses,
    reading_slant_rho,
    reading_turn_dependence,
    slant_dependence,
    stroke_alone_changes,
    within_class_spread,
)
from infogan.data.images import to_uint8
from infogan.data.mnist import load_mnist_split
from infogan.evaluation.factors import ink_slant
from infogan.evaluation.metrics import continuous_readings_and_classes
from infogan.model.infogan import InfoGAN
from infogan.model.networks import CodeParams
from pipeline.params import shipped_model
from tests.infogan.training.test_improved import SharedChange

TINY = {"g_fc": (16,), "g_base_channels": 8, "g_upconv": (4,), "d_conv": (4, 8), "d_fc": (8,), "q_hidden": 8}


def test_each_continuous_code_gets_a_row_whose_split_adds_up():
    torch.manual_seed(0)
    model = InfoGAN(shipped_model(**TINY)).eval()
    rows = code_leans(model, n_samples=20)
    assert len(rows) == model.codes.n_continuous == 2
    for row in rows:
        assert 0 <= row["right"] <= 1
        for key in ("slant_rho", "slant_rho_right", "slant_rho_left"):
            assert math.isnan(row[key]) or -1 <= row[key] <= 1, row
        assert math.isfinite(row["slant_change"]) and math.isfinite(row["width_change"])


def test_the_per_class_rhos_split_the_codes_mean_by_class():
    """The traversal's columns cycle through the first categorical code's classes, so with as many
    latents in each class, the classes' mean rhos average to the code's."""
    torch.manual_seed(0)
    model = InfoGAN(shipped_model(**TINY)).eval()
    for row in code_leans(model, n_samples=30):  # 3 latents a class; no latent here reads a constant slant
        assert len(row["class_rho"]) == model.codes.categorical_sizes[0] == 10
        assert all(-1 <= rho <= 1 for rho in row["class_rho"]), row
        assert sum(row["class_rho"]) / 10 == pytest.approx(row["slant_rho"], abs=1e-9), row


def test_q_reading_against_real_slant_is_taken_per_digit(mnist_fixture_dir):
    """A Q that reads code 0 as the digit's slant and code 1 as its opposite gives +1 and -1 on every digit."""
    images, labels = load_mnist_split(mnist_fixture_dir, "test")
    images, labels = images[:300], labels[:300]
    model = InfoGAN(shipped_model(**TINY)).eval()

    def encode(batch):
        slant = ink_slant(to_uint8(batch))
        return SimpleNamespace(continuous_mean=torch.stack([slant, -slant], dim=1))

    model.encode = encode
    found = reading_slant_rho(model, images, labels)
    assert [set(code) for code in found] == [set(range(10))] * 2
    assert all(rho == pytest.approx(1.0) for rho in found[0].values()), found[0]
    assert all(rho == pytest.approx(-1.0) for rho in found[1].values()), found[1]


def test_a_class_whose_code_turns_the_other_way_reads_minus_one_against_the_rest():
    """A G whose c2 moves ink from left to right, the other way for class 3, and whose c3 darkens the
    top half alike for every class: class 3 reads -1 on c2 and the others (8 * 1 - 1) / 9; c3 reads 1."""

    class Turned(torch.nn.Module):
        def forward(self, vector: torch.Tensor) -> torch.Tensor:
            sign = 1 - 2 * (vector[:, 62:72].argmax(dim=1) == 3).float()
            columns = torch.cat((-torch.ones(14), torch.ones(14))).view(1, 1, 1, 28)
            images = ((sign * vector[:, -2]).view(-1, 1, 1, 1) * columns).expand(-1, 1, 28, 28).clone()
            images[:, 0, :14, :] += vector[:, -1].view(-1, 1, 1) ** 3
            return images

    model = InfoGAN(shipped_model(**TINY)).eval()
    model.generator = Turned()
    for pool in (1, 4, 14):
        turned = class_effect_cosines(model, 0, pool, n_samples=8)
        assert turned[3] == pytest.approx(-1.0, abs=1e-4)
        assert all(cos == pytest.approx(7 / 9, abs=1e-4) for k, cos in enumerate(turned) if k != 3), turned
        assert class_effect_cosines(model, 1, pool, n_samples=8) == pytest.approx([1.0] * 10, abs=1e-4)


def test_reading_responses_are_a_readers_derivatives_along_each_code_and_a_shear():
    """G paints c2 into the top half and c3 into the bottom half; Q reads c2 as the top's mean plus half
    the bottom's and c3 as the bottom's: per unit of c2, +1 and 0; per unit of c3, +0.5 and +1. A
    shear moves no ink of a flat band across rows: the last row is 0. The model's own networks, and
    their batch-norm statistics, are left as they were."""

    class Bands(torch.nn.Module):
        def forward(self, vector: torch.Tensor) -> torch.Tensor:
            images = torch.zeros(len(vector), 1, 28, 28)
            images[:, 0, 4:12, :] = vector[:, -2].view(-1, 1, 1) * 0.5
            images[:, 0, 16:24, :] = vector[:, -1].view(-1, 1, 1) * 0.5
            return images

    class Reads(torch.nn.Module):
        def forward(self, features: torch.Tensor) -> SimpleNamespace:
            top, bottom = features[:, :, 4:12, 8:20].mean((1, 2, 3)), features[:, :, 16:24, 8:20].mean((1, 2, 3))
            return SimpleNamespace(continuous_mean=torch.stack((2 * top + bottom, 2 * bottom), dim=1))

    torch.manual_seed(0)
    model = InfoGAN(shipped_model(**TINY)).eval()
    statistics = {k: v.clone() for k, v in model.trunk.state_dict().items()}
    assert reading_responses(model, n_samples=16).shape == (3, 2)  # the real networks: the shapes
    assert all(torch.equal(v, model.trunk.state_dict()[k]) for k, v in statistics.items())
    model.generator, reader = Bands(), (torch.nn.Identity(), Reads())
    found = reading_responses(model, reader, n_samples=16)
    assert found == pytest.approx(np.array([[1.0, 0.0], [0.5, 1.0], [0.0, 0.0]]), abs=1e-5)


def test_slant_dependence_reads_a_lean_that_grows_with_the_stroke_within_each_class():
    """Upright bars of widths 2 to 5 px, each sheared so that its slant grows 4 degrees a pixel of width,
    class 1 leaning 10 degrees further than class 0. The measure reads a 20-row bar of width w as
    2 * 20w / (2 * 20 + 2w) px thick, 0.73 px a pixel of width from 2 to 5, so within the classes slant
    on thickness is about 4 / 0.73 = 5.5 degrees a pixel, with a correlation near 1, though the
    classes' means differ."""
    bars, classes = [], []
    for k in (0, 1):
        for w in (2, 3, 4, 5):
            bar = torch.zeros(1, 1, 28, 28)
            bar[:, :, 4:24, 14 - w // 2 : 14 - w // 2 + w] = 1.0
            lean = math.tan(math.radians(4 * w + 10 * k))
            bars.append(shear(bar, lean * 20 / 28))  # the grid's y runs -1..1 over 28 rows, the bar's 20 rows
            classes.append(k)
    images = (torch.cat(bars).clamp(0, 1) * 255).round().to(torch.uint8)
    found = slant_dependence(images, torch.tensor(classes))
    slope, r = found["thickness"]
    assert slope == pytest.approx(5.5, abs=0.5) and r > 0.95, found
    assert set(found) == {"thickness", "width"}


def test_the_within_class_spread_pools_each_class_about_its_own_mean():
    """Class 0: upright bars 2 and 4 px wide; class 1: bars 6 and 8 px wide. The width measure reads a bar
    of w pixel columns as sqrt(w^2 - 1) px (the columns' variance is (w^2 - 1) / 12), so each class's
    two widths lie half their difference from its mean, and the pooled spread is the root mean square
    of those halves (1.04 px), though the widths over both classes spread further (2.3 px); nothing
    leans, so slant spreads by 0."""
    bars = []
    for w in (2, 4, 6, 8):
        bar = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
        bar[:, :, 4:24, 14 - w // 2 : 14 - w // 2 + w] = 255
        bars.append(bar)
    spread = within_class_spread(torch.cat(bars), torch.tensor([0, 0, 1, 1]))
    assert set(spread) == {"slant", "width", "thickness"}
    halves = [(math.sqrt(b * b - 1) - math.sqrt(a * a - 1)) / 2 for a, b in ((2, 4), (6, 8))]
    expected = math.sqrt(sum(h * h for h in halves) / 2)
    assert spread["width"] == pytest.approx(expected, abs=1e-4) and spread["slant"] == pytest.approx(0.0, abs=1e-6)


def test_generated_digits_hold_the_codes_named_at_0_and_only_those():
    model = InfoGAN(shipped_model(**TINY)).eval()
    drawn, classes = generated_digits(model, (), n_samples=40)
    held, same_classes = generated_digits(model, (0,), n_samples=40)
    both, _ = generated_digits(model, (0, 1), n_samples=40)
    assert drawn.shape == (40, 1, 28, 28) and drawn.dtype == torch.uint8 and torch.equal(classes, same_classes)
    assert not torch.equal(drawn, held) and not torch.equal(held, both)
    latent = model.codes.sample(40, generator=torch.Generator().manual_seed(3))
    vector = latent.vector.clone()
    vector[:, -2:] = 0
    with torch.no_grad():
        assert torch.equal(both, to_uint8(model.generator(vector)))


def test_the_effect_cosine_summary_keeps_an_overlap_made_the_same_way_apart_from_one_that_turns():
    """c3 adds 3/4 of c2's change to its own (cos 0.6 at every latent); made the same way everywhere, the
    signed mean is 0.6, and with its sign following a noise variable it falls to about 0 at the same size."""
    model = InfoGAN(shipped_model(**TINY)).eval()
    latents = model.codes.sample(64, generator=torch.Generator().manual_seed(0)).vector
    model.generator = SharedChange(0.75)
    assert effect_cosine_summary(model, latents) == pytest.approx((0.36, 0.6, 0.6), abs=1e-4)
    model.generator = SharedChange(0.75, turning=True)
    squared, signed, size = effect_cosine_summary(model, latents)
    assert squared == pytest.approx(0.36, abs=1e-4)
    assert size == pytest.approx(0.6, abs=1e-4) and abs(signed) < 0.25


def test_a_codes_lean_made_again_by_its_own_transformation_gives_its_width_change():
    """G turns a bar leaning right: c2 shears it, c3 rotates it. A shear leaves the deslanted width
    alone, a rotation of a leaning digit does not: c3 widens the deslanted bar, and turning its digit at 0
    as far as c3 leans it widens it as much, where shearing it that far changes no width. c2's shear is made
    again by the shear search, with no width change from either."""

    class Leans(torch.nn.Module):
        def forward(self, vector: torch.Tensor) -> torch.Tensor:
            bar = torch.zeros(len(vector), 1, 28, 28)
            bar[:, 0, 5:23, 12:16] = 1.0
            turn = torch.deg2rad(-20.0 - 15.0 * vector[:, -1])  # leans right at 0; c3 turns it further
            cos, sin = turn.cos(), turn.sin()
            rotation = torch.stack([torch.stack([cos, -sin], 1), torch.stack([sin, cos], 1)], 1)
            shearing = torch.eye(2).repeat(len(vector), 1, 1)
            shearing[:, 0, 1] = 0.3 * vector[:, -2]
            return affine(bar, rotation @ shearing) * 2 - 1

    torch.manual_seed(0)
    model = InfoGAN(shipped_model(**TINY)).eval()
    model.generator = Leans()
    turned, sheared = (lean_alone_changes(model, code, n_samples=10) for code in (1, 0))
    rho, change = 0, 1
    assert abs(turned["code"]["slant"][change]) > 15 and abs(turned["code"]["width"][change]) > 0.5, turned
    assert turned["rotation"]["slant"][change] == pytest.approx(turned["code"]["slant"][change], abs=1.5)
    assert turned["rotation"]["width"][change] == pytest.approx(turned["code"]["width"][change], abs=0.4)
    assert turned["rotation"]["width"][rho] == pytest.approx(turned["code"]["width"][rho], abs=0.15)
    assert abs(turned["shear"]["width"][change]) < 0.2
    assert turned["shear"]["slant"][change] == pytest.approx(turned["code"]["slant"][change], abs=1.5)
    assert abs(sheared["code"]["slant"][change]) > 15 and abs(sheared["code"]["width"][change]) < 0.4, sheared
    assert sheared["shear"]["slant"][change] == pytest.approx(sheared["code"]["slant"][change], abs=1.5)
    assert abs(sheared["shear"]["width"][change]) < 0.2


def test_turned_readings_are_least_dependent_within_classes_where_the_turn_undoes_q_s():
    """Two factors spread 1 and 0.25 in one class and the other way round in another, independent
    within each; Q reads them turned by 30 degrees, and its class from a third pixel. Within classes the
    readings turned back (by -30, that is 150, or by 60, which also swaps them: a code's sign and place
    are free) are independent, and any other turn of the 12 leaves them dependent, as trained (0) too."""

    class Reads(torch.nn.Module):
        def forward(self, pixels: torch.Tensor) -> CodeParams:
            a, b, second = pixels[:, 0], pixels[:, 1], pixels[:, 2] > 0
            t = math.radians(30)
            mean = torch.stack((a * math.cos(t) - b * math.sin(t), a * math.sin(t) + b * math.cos(t)), 1)
            logits = torch.zeros(len(pixels), 10)
            logits[second, 1] = logits[~second, 0] = 1.0
            return CodeParams(logits, mean, torch.zeros_like(mean))

    generator = torch.Generator().manual_seed(0)
    n = 4000
    factors = torch.rand(n, 2, generator=generator) * 2 - 1
    second = torch.arange(n) >= n // 2
    factors[~second, 1] *= 0.25
    factors[second, 0] *= 0.25
    images = torch.zeros(n, 1, 28, 28)
    images[:, 0, 0, :2] = factors
    images[:, 0, 0, 2] = torch.where(second, 1.0, -1.0)
    torch.manual_seed(0)
    model = InfoGAN(shipped_model(**TINY)).eval()
    model.trunk, model.q_head = torch.nn.Flatten(), Reads()
    rows = reading_turn_dependence(*continuous_readings_and_classes(model, to_uint8(images)), n_classes=10)
    assert [angle for angle, _, _ in rows] == list(range(0, 180, 15))
    within = {angle: value for angle, value, _ in rows}
    assert max(within[60], within[150]) < 0.01 < within[0]
    assert all(value > 3 * max(within[60], within[150]) for angle, value in within.items() if angle not in (60, 150))


def test_a_code_that_changes_the_digit_is_told_from_one_that_changes_its_lean():
    """G draws an upright bar whose width c2 sets (4 to 8 px over the prior's range) and which c3 shears.
    The stand-in classifier reads a bar of more ink than a 7 px one as a 0 and the rest as a 1: every
    latent's digit changes along c2's sweep and none along c3's; at 0 every bar reads 1, and c2 widens
    it 4 px without a lean where c3 leans it without widening it."""

    class Bar(torch.nn.Module):
        def forward(self, vector: torch.Tensor) -> torch.Tensor:
            width = (6 + 2 * vector[:, -2]).view(-1, 1, 1, 1)
            columns = torch.arange(28, dtype=torch.float32).view(1, 1, 1, 28)
            bar = ((columns - 13.5).abs() < width / 2).float().expand(-1, 1, 28, 28).clone()
            bar[:, :, :5], bar[:, :, 23:] = 0.0, 0.0
            shearing = torch.eye(2).repeat(len(vector), 1, 1)
            shearing[:, 0, 1] = 0.3 * vector[:, -1]
            return affine(bar, shearing) * 2 - 1

    class InkReader(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.threshold = torch.nn.Parameter(torch.tensor(18.0 * 7))  # a 7 px bar's ink

        def forward(self, images: torch.Tensor) -> torch.Tensor:
            ink = ((images + 1) / 2).flatten(1).sum(1)
            logits = torch.zeros(len(images), 10)
            logits[:, 0], logits[:, 1] = ink - self.threshold, self.threshold - ink
            return logits

    torch.manual_seed(0)
    model = InfoGAN(shipped_model(**TINY)).eval()
    model.generator = Bar()
    (widens, by_width), (leans, by_lean) = (digit_changes(model, InkReader(), code, n_samples=20) for code in (0, 1))
    assert widens == 1.0 and leans == 0.0
    assert set(by_width) == set(by_lean) == {1}
    count, slant, width = by_width[1]
    assert count == 20 and abs(slant) < 1 and width == pytest.approx(4, abs=0.5)
    count, slant, width = by_lean[1]
    assert count == 20 and abs(slant) > 20 and abs(width) < 0.5


def test_a_codes_slant_made_by_its_stroke_alone_is_told_from_a_lean_of_its_own():
    """G draws a bar leaning right: c2 thickens it with a pen, c3 thickens it and shears it too. The
    pen alone, as far as each code thickens the bar, gives c2's change of the ink's shear (the
    measure's: a thicker pen straightens it a little) but not c3's, whose lean is its own and the
    other way."""

    class Pens(torch.nn.Module):
        def forward(self, vector: torch.Tensor) -> torch.Tensor:
            bar = torch.zeros(len(vector), 1, 28, 28)
            bar[:, 0, 5:23, 13:15] = 1.0
            shearing = torch.eye(2).repeat(len(vector), 1, 1)
            shearing[:, 0, 1] = 0.4 + 0.2 * vector[:, -1]  # leans right at 0; c3 leans it further
            leaning = affine(bar, shearing)
            pen = (0.5 + 0.4 * (vector[:, -2] + vector[:, -1]).clamp(-1, 1)).tolist()
            thick = torch.stack([soft_thicken(image[None], t)[0] for image, t in zip(leaning, pen, strict=True)])
            return thick * 2 - 1

    torch.manual_seed(0)
    model = InfoGAN(shipped_model(**TINY)).eval()
    model.generator = Pens()
    pen_only, leaning = (stroke_alone_changes(model, code, n_samples=10, measures=WITH_INK_SLANT) for code in (0, 1))
    rho, change = 0, 1
    assert pen_only["code"]["thickness"][change] > 0.3, pen_only
    assert pen_only["pen"]["thickness"][change] == pytest.approx(pen_only["code"]["thickness"][change], abs=0.15)
    # a thicker pen straightens the leaning bar as measured: a small change, but at every latent
    assert pen_only["code"]["ink slant"][rho] < -0.9 and pen_only["pen"]["ink slant"][rho] < -0.9, pen_only
    assert pen_only["pen"]["ink slant"][change] == pytest.approx(pen_only["code"]["ink slant"][change], abs=0.4)
    assert leaning["code"]["ink slant"][rho] > 0.9 and leaning["code"]["ink slant"][change] > 5, leaning
    assert leaning["pen"]["ink slant"][rho] < 0 and abs(leaning["pen"]["ink slant"][change]) < 2, leaning


def test_the_names_line_gives_each_codes_rhos_and_changes_and_render_s_names():
    """G draws an upright ring stretched across as c3 says, then sheared as c2 says. The line gives c2
    a slant rho of 1 and c3 a width rho of -1 (narrower as c3 grows), each with its change, and
    render's names: c2 slant, c3 width. The upright ring's skeleton, read with its mirror image's,
    does not lean at any width (its rho is undefined); the ink's shear of the resampled ring moves
    by less than a hundredth of a degree, steadily, which read a rho over the rule's 0.3."""

    class StretchAndShear(torch.nn.Module):
        def forward(self, vector: torch.Tensor) -> torch.Tensor:
            ring = torch.zeros(len(vector), 1, 28, 28)
            ring[:, 0, 5:23, 10:18] = 1.0
            ring[:, 0, 7:21, 12:16] = 0.0
            transform = torch.eye(2).repeat(len(vector), 1, 1)
            transform[:, 0, 0] = 1.0 + 0.3 * vector[:, -1]
            transform[:, 0, 1] = 0.3 * vector[:, -2] * transform[:, 0, 0]  # the shear after the stretch
            return affine(ring, transform) * 2 - 1

    torch.manual_seed(0)
    model = InfoGAN(shipped_model(**TINY)).eval()
    model.generator = StretchAndShear()
    line = effects_line(model)
    c2, c3, names = line.split("; ")
    assert c2.startswith("c2 slant +1.00 (+3") and "width +0.0" in c2, line
    assert c3.startswith("c3 slant +nan (+0.00)") and "width -1.00 (-6." in c3, line
    assert names == "names c2 slant, c3 width", line
