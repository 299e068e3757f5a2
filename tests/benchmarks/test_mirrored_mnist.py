"""benchmarks/mirrored_mnist.py on a small prepared copy: both splits mirrored, labels kept, the
neighbour table and the manifest copied as they are, and the slant's sign turned."""

from __future__ import annotations

import sys

import torch

from benchmarks import mirrored_mnist
from infogan.data.images import load_split, save_split
from infogan.data.mnist import load_mnist_split
from infogan.evaluation.factors import ink_slant


def test_both_splits_are_mirrored_and_the_rest_copied(mnist_fixture_dir, tmp_path, monkeypatch):
    images, labels = load_mnist_split(mnist_fixture_dir, "test")
    prepared, out = tmp_path / "prepared", tmp_path / "mirrored"
    prepared.mkdir()
    save_split(images[:200], labels[:200], prepared / "train.pt")
    save_split(images[200:300], labels[200:300], prepared / "test.pt")
    neighbours = torch.randint(0, 200, (200, 5))
    torch.save(neighbours, prepared / "neighbours.pt")
    (prepared / "manifest.json").write_text('{"dataset": "mnist"}')
    monkeypatch.setattr(sys, "argv", ["mirrored_mnist.py", "--data", str(prepared), "--out", str(out)])
    mirrored_mnist.main()
    for split, (first, last) in (("train", (0, 200)), ("test", (200, 300))):
        found, found_labels = load_split(out / f"{split}.pt")
        assert torch.equal(found, images[first:last].flip(-1)) and torch.equal(found_labels, labels[first:last])
        assert torch.allclose(ink_slant(found), -ink_slant(images[first:last]), atol=1e-3)
    assert torch.equal(torch.load(out / "neighbours.pt"), neighbours)
    assert (out / "manifest.json").read_text() == '{"dataset": "mnist"}'
