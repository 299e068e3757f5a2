"""The improved recipe's neighbour view: the pixel-space neighbour table, the pairs of images the
batches carry, and the module comparing Q's class of x with its class of T(x') for a neighbour x'."""

from __future__ import annotations

import pytest
import torch

from infogan.config import ImprovedConfig
from infogan.data import neighbours
from infogan.data.batches import DeviceBatches, ShardedShuffle
from infogan.data.neighbours import load_neighbours, pixel_neighbours, save_neighbours
from infogan.errors import InfoGANError
from infogan.model.losses import categorical_consistency
from infogan.training.module import InfoGANTraining
from pipeline.params import shipped_model, shipped_train
from tests.infogan.training.test_improved import only


def random_images(n: int, seed: int = 0, size: int = 6) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 1, size, size), dtype=torch.uint8, generator=generator)


@pytest.mark.parametrize("chunk", [7, 1000])  # several chunks, with a short last one; one chunk
def test_pixel_neighbours_are_the_nearest_other_images_nearest_first(chunk):
    data = random_images(40)
    found = pixel_neighbours(data, 4, chunk=chunk, progress=False)
    flat = data.flatten(1).double()
    distance = torch.cdist(flat, flat)
    distance.fill_diagonal_(float("inf"))
    expected = distance.topk(4, dim=1, largest=False).indices
    assert found.dtype == torch.long and found.shape == (40, 4)
    assert torch.equal(found, expected)
    assert not (found == torch.arange(40)[:, None]).any()  # never the image itself


def test_pixel_neighbours_find_the_images_that_differ_least():
    """Ten bases, each with four slightly brighter copies: an image's four neighbours are the
    other members of its group, though a group's members are not next to each other."""
    bases = random_images(10, seed=3) // 2
    groups = torch.cat([bases + i for i in range(5)])  # image j belongs to group j % 10
    found = pixel_neighbours(groups, 4, chunk=16, progress=False)
    assert torch.equal(found % 10, (torch.arange(50) % 10)[:, None].expand(50, 4))


def nearest_by_brute_force(images: torch.Tensor, k: int) -> torch.Tensor:
    """Every pair's squared distance as an exact integer; the k smallest, equal ones by index."""
    flat = images.flatten(1).long()
    distance = (flat[:, None] - flat[None]).square().sum(2)
    distance.fill_diagonal_(torch.iinfo(torch.long).max)
    return distance.sort(dim=1, stable=True).indices[:, :k]


def low_rank_images(n: int, seed: int) -> torch.Tensor:
    """Images of 3x8x8 = 192 pixels (more than the first pass's directions) near an 8-dimensional
    plane, as real images are near a few principal directions."""
    generator = torch.Generator().manual_seed(seed)
    plane = torch.randn(n, 8, generator=generator) @ torch.randn(8, 192, generator=generator)
    noise = torch.randn(n, 192, generator=generator)
    return (128 + 30 * plane + 4 * noise).clamp(0, 255).to(torch.uint8).reshape(n, 3, 8, 8)


@pytest.mark.parametrize("seed", [0, 1])
def test_the_projected_pass_finds_the_exact_neighbours_of_images_near_a_plane(seed, monkeypatch):
    """The projection proposes, the pixels decide, and the proof holds for every row: no row needs the
    comparison with every image."""
    compared = []
    monkeypatch.setattr(neighbours, "_compared_with_all", lambda *args: compared.append(args) or None)
    data = low_rank_images(300, seed)
    assert data[0].numel() > neighbours.PROJECTION
    assert torch.equal(pixel_neighbours(data, 5, chunk=64, progress=False), nearest_by_brute_force(data, 5))
    assert compared == []


@pytest.mark.parametrize("seed", [0, 1])
def test_rows_the_projection_cannot_prove_are_compared_with_every_image(seed, monkeypatch):
    """Pixel noise has no main directions: the projection's distances fall far short, no row's
    candidates are proven, and each is compared with every image; the answer is still exact."""
    compared = []
    original = neighbours._compared_with_all

    def counted(images, rows, count):
        compared.append(len(rows))
        return original(images, rows, count)

    monkeypatch.setattr(neighbours, "_compared_with_all", counted)
    data = random_images(300, seed=seed, size=24)  # 576 pixels of noise
    assert torch.equal(pixel_neighbours(data, 4, chunk=64, progress=False), nearest_by_brute_force(data, 4))
    assert sum(compared) > 0


def test_equal_distances_are_ordered_by_index_and_near_ties_by_the_exact_distance():
    """Copies of one image are its nearest, lowest index first; two images one unit of squared
    distance apart in 400 pixels of 0-255 (which fp32's |a|^2 - 2ab + |b|^2 can swap) keep their order."""
    data = low_rank_images(300, seed=2)
    data[[40, 7, 200]] = data[100].clone()  # three copies of image 100
    found = pixel_neighbours(data, 3, progress=False)
    assert found[100].tolist() == [7, 40, 200]
    base = torch.full((3, 1, 20, 20), 200, dtype=torch.uint8)
    base[1, 0, 0, :2] = 201  # squared distance 2 from image 0
    base[2, 0, 0, 0] = 199  # 1 from image 0, 5 from image 1
    far = random_images(20, seed=4, size=20) // 4  # dark images, far from all three
    found = pixel_neighbours(torch.cat([base, far]), 2, progress=False)
    assert found[0].tolist() == [2, 1] and found[1].tolist() == [0, 2]


@pytest.mark.parametrize("k", [0, -1, 40])
def test_pixel_neighbours_reject_a_k_the_images_cannot_give(k):
    with pytest.raises(InfoGANError, match="0 < neighbours < the number of training images"):
        pixel_neighbours(random_images(40), k, progress=False)


def test_a_stored_table_gives_its_first_k_columns_which_are_the_k_nearest(tmp_path):
    """prepare stores 6 columns; a training with k = 3 reads the same table it would have found."""
    data = random_images(40)
    save_neighbours(pixel_neighbours(data, 6, progress=False), tmp_path)
    loaded = load_neighbours(tmp_path, 3, 40)
    assert loaded.dtype == torch.long and torch.equal(loaded, pixel_neighbours(data, 3, progress=False))
    assert load_neighbours(tmp_path, 7, 40) is None  # fewer columns than asked: training finds its own


def test_no_stored_table_means_none(tmp_path):
    assert load_neighbours(tmp_path, 3, 40) is None


@pytest.mark.parametrize(
    "content",
    [
        {"neighbours": torch.zeros(39, 4, dtype=torch.int32)},  # another split's
        {"neighbours": torch.full((40, 4), 40, dtype=torch.int32)},  # indices past the images
        {"neighbours": torch.zeros(40, 4)},  # floats
        {"table": torch.zeros(40, 4, dtype=torch.int32)},
        "not a table",
    ],
)
def test_a_table_for_other_images_is_refused(tmp_path, content):
    torch.save(content, tmp_path / "neighbours.pt")
    with pytest.raises(InfoGANError, match=r"neighbours\.pt .*rerun prepare"):
        load_neighbours(tmp_path, 3, 40)


def test_a_damaged_table_is_refused(tmp_path):
    (tmp_path / "neighbours.pt").write_bytes(b"truncated")
    with pytest.raises(InfoGANError, match="cannot be read as a neighbour table"):
        load_neighbours(tmp_path, 3, 40)


def test_partner_columns_are_seeded_per_epoch_and_leave_the_order_alone():
    sampler = ShardedShuffle(64, 8, 4, seed=1)
    order, columns = sampler.batches(), sampler.partner_columns(5)
    assert columns.shape == order.shape and columns.dtype == torch.long
    assert int(columns.min()) >= 0 and int(columns.max()) < 5 and len(columns.unique()) == 5
    assert torch.equal(sampler.batches(), order) and torch.equal(sampler.partner_columns(5), columns)
    sampler.set_epoch(1)
    assert not torch.equal(sampler.partner_columns(5), columns)


def test_ranks_draw_their_own_partner_columns():
    one, two = (ShardedShuffle(64, 8, 4, seed=1, rank=r, world_size=2).partner_columns(5) for r in (0, 1))
    assert one.shape == two.shape == (4, 8)
    assert not torch.equal(one, two)


def numbered(n: int) -> torch.Tensor:
    """Image i is filled with the value i, so a batch tells which images it holds."""
    return torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()


def test_device_batches_pair_each_image_with_one_of_its_neighbours():
    data = numbered(60)
    table = torch.stack([(torch.arange(60) + shift) % 60 for shift in (1, 2, 3)], 1)  # i's are i+1, i+2, i+3
    sampler = ShardedShuffle(60, 10, 4, seed=2)
    pairs = list(DeviceBatches(data, sampler, table))
    assert len(pairs) == 4
    drawn = []
    for (images, partners), index, column in zip(pairs, sampler.batches(), sampler.partner_columns(3), strict=True):
        assert torch.equal(images, data[index])  # the same order as without neighbours
        ids, partner_ids = images[:, 0, 0, 0].long(), partners[:, 0, 0, 0].long()
        assert torch.equal(partner_ids, table[ids, column])
        drawn.append((partner_ids - ids) % 60)
    assert set(torch.cat(drawn).tolist()) == {1, 2, 3}  # every neighbour gets drawn


def test_device_batches_with_neighbours_resume_with_the_same_pairs():
    data = numbered(64)
    table = torch.stack([(torch.arange(64) + shift) % 64 for shift in (1, 2)], 1)
    loader = DeviceBatches(data, ShardedShuffle(64, 8, 5, seed=1), table)
    whole = list(loader)
    partial = iter(loader)
    taken = [next(partial), next(partial)]
    resumed = DeviceBatches(data, ShardedShuffle(64, 8, 5, seed=1), table)
    resumed.load_state_dict(loader.state_dict())
    rest = list(resumed)
    assert len(rest) == 3
    for (a, b), (c, d) in zip(taken + rest, whole, strict=True):
        assert torch.equal(a, c) and torch.equal(b, d)


def still() -> ImprovedConfig:
    """An improved config whose T does nothing and whose one term is the consistency, so the only
    difference a partner makes is itself."""
    return only(real_consistency=1.0).model_copy(
        update={"rotation_deg": 0.0, "shift_px": 0.0, "scale": 0.0, "thickness": False}
    )


def consistency_with(partners: torch.Tensor | None, real: torch.Tensor, config: ImprovedConfig) -> torch.Tensor:
    torch.manual_seed(0)
    module = InfoGANTraining(shipped_model(), shipped_train(recipe="improved"), config).train()
    latent = module.model.codes.sample(real.shape[0], device=torch.device("cpu"))
    fake = module.model.generator(latent.vector)
    return module.discriminator_step(real, fake, latent, partners)["improved/real_consistency"]


def test_the_consistency_compares_x_with_its_partner_when_given_one():
    torch.manual_seed(5)
    real = torch.rand(16, 1, 28, 28) * 2 - 1
    others = torch.rand(16, 1, 28, 28) * 2 - 1
    alone = consistency_with(None, real, still())
    assert alone.abs() < 1e-5  # T is the identity: x against itself
    assert torch.allclose(consistency_with(real, real, still()), alone)
    with_others = consistency_with(others, real, still())
    torch.manual_seed(0)
    module = InfoGANTraining(shipped_model(), shipped_train(recipe="improved"), still()).train()
    module.model.codes.sample(16, device=torch.device("cpu"))
    logits = module.model.encode(real).categorical_logits
    assert with_others > 1e-3
    direct = categorical_consistency(logits, module.model.encode(others).categorical_logits, (10,))
    assert torch.allclose(with_others, direct, rtol=1e-3)
