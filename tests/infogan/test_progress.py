"""Progress: a live bar on a terminal, plain lines into a log, nothing when disabled."""

from __future__ import annotations

import io
import re

from infogan.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_into_a_log_it_writes_whole_lines_with_no_carriage_return():
    log = io.StringIO()
    with Progress(60_000, "nearest neighbours", "img", stream=log, every_s=0) as bar:
        for _ in range(3):
            bar.update(20_000)
    lines = log.getvalue().splitlines()
    assert "\r" not in log.getvalue()
    assert lines[0] == "nearest neighbours: 60,000 img to go"
    assert re.fullmatch(r"nearest neighbours: 20,000/60,000 img \(33%\), elapsed 00:00, left 00:00", lines[1])
    # the last update's line is the closing one: it is not written twice
    assert re.fullmatch(r"nearest neighbours: 60,000/60,000 img \(100%\), elapsed 00:00", lines[-1])
    assert len(lines) == 4


def test_into_a_log_lines_come_at_most_every_few_seconds():
    log = io.StringIO()
    with Progress(1000, "digit classifier", "batch", stream=log, every_s=3600) as bar:
        for step in range(1, 1001):
            bar.update()
            if step % 100 == 0:
                bar.note(loss=f"{1 / step:.3f}")
    # the start and the end, none between within the hour
    assert log.getvalue().splitlines() == [
        "digit classifier: 1,000 batch to go",
        "digit classifier: 1,000/1,000 batch (100%), elapsed 00:00, loss=0.001",
    ]


def test_an_unfinished_step_ends_on_how_far_it_got():
    log = io.StringIO()
    with Progress(10, "extract CelebA", "file", stream=log, every_s=3600) as bar:
        bar.update(3)
    assert log.getvalue().splitlines()[-1].startswith("extract CelebA: 3/10 file (30%), elapsed 00:00, left ")


def test_an_unknown_total_is_counted_in_scaled_units():
    log = io.StringIO()
    with Progress(None, "train-images-idx3-ubyte.gz", "B", unit_scale=True, stream=log, every_s=0) as bar:
        bar.update(5_000_000)
    assert log.getvalue().splitlines() == [
        "train-images-idx3-ubyte.gz: started",
        "train-images-idx3-ubyte.gz: 5.00MB, elapsed 00:00",
    ]


def test_a_known_total_in_scaled_units_names_the_unit_on_both_sides():
    log = io.StringIO()
    with Progress(9_912_422, "train-images-idx3-ubyte.gz", "B", unit_scale=True, stream=log, every_s=3600) as bar:
        bar.update(9_912_422)
    assert log.getvalue().splitlines() == [
        "train-images-idx3-ubyte.gz: 9.91MB to go",
        "train-images-idx3-ubyte.gz: 9.91MB/9.91MB (100%), elapsed 00:00",
    ]


def test_on_a_terminal_it_draws_a_live_tqdm_bar():
    screen = Terminal()
    with Progress(100, "nearest neighbours", "img", stream=screen) as bar:
        bar.update(50)
        bar.update(50)
    assert "\r" in screen.getvalue() and "100/100" in screen.getvalue() and "img/s" in screen.getvalue()


def test_disabled_it_writes_nothing():
    for stream in (io.StringIO(), Terminal()):
        with Progress(100, "nearest neighbours", "img", enabled=False, stream=stream) as bar:
            bar.update(100)
        assert stream.getvalue() == ""
