"""Progress of a long step, readable wherever it goes: on a terminal, tqdm's live bar; into a file, a
pipe or a CI log, a plain line now and then. (A bar redrawn with carriage returns reaches a log as
one line of kilobytes.) The neighbour search, the digit classifier, downloads and CelebA's extract,
verify and prepare all report through `Progress`; training has its own line per epoch
(`infogan.training.callbacks.ProgressLines`)."""

from __future__ import annotations

import sys
import time
from types import TracebackType
from typing import TextIO

from tqdm import tqdm

LINE_EVERY_S = 15.0  # seconds between two lines into a log


class Progress:
    """`with Progress(total, "nearest neighbours", "img") as bar: ... bar.update(n)`.

    Writes to `stream` (standard error by default, as tqdm does). Where that is a terminal, a live
    tqdm bar; elsewhere a line when the step starts, one at most every `every_s` seconds while it
    runs, and one when it ends, e.g. `nearest neighbours: 12,288/60,000 img (20%), elapsed 00:35,
    left 02:16`. `total` None: the amount of work is unknown (a download without a length).
    `unit_scale` writes amounts as 12.3MB rather than 12,300,000 B. `enabled` False: nothing at all.
    """

    def __init__(
        self,
        total: int | None,
        desc: str,
        unit: str = "it",
        *,
        unit_scale: bool = False,
        enabled: bool = True,
        stream: TextIO | None = None,
        every_s: float = LINE_EVERY_S,
    ):
        self.total, self.desc, self.unit, self.unit_scale = total, desc, unit, unit_scale
        self.stream, self.every_s = stream or sys.stderr, every_s
        self.enabled, self.done, self.postfix = enabled, 0, ""
        self.start = self.last_line = time.monotonic()
        self.last_shown: tuple[int, str] | None = None
        live = enabled and self.stream.isatty()
        self.bar = tqdm(total=total, desc=desc, unit=unit, unit_scale=unit_scale, file=self.stream) if live else None
        if enabled and not live:
            self._line(f"{self._amount(total)} to go" if total is not None else "started")

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Count `n` more units of work done."""
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
        elif self.enabled and time.monotonic() - self.last_line >= self.every_s:
            self._line(self._state())

    def note(self, **values: object) -> None:
        """Show `key=value` beside the count (the bar's postfix, the next line's tail)."""
        self.postfix = ", ".join(f"{key}={value}" for key, value in values.items())
        if self.bar is not None:
            self.bar.set_postfix_str(self.postfix)

    def close(self) -> None:
        """End the bar, or write the last line: the amount done and the time it took."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
        elif self.enabled:
            self.enabled = False  # a second close writes nothing
            if (self.done, self.postfix) != self.last_shown:  # the last update's line said it already
                self._line(self._state())

    def _amount(self, n: int) -> str:
        return f"{tqdm.format_sizeof(n)}{self.unit}" if self.unit_scale else f"{n:,} {self.unit}"

    def _state(self) -> str:
        elapsed = time.monotonic() - self.start
        if self.total is None:
            state = f"{self._amount(self.done)}, elapsed {tqdm.format_interval(elapsed)}"
        else:
            done = self._amount(self.done) if self.unit_scale else f"{self.done:,}"  # 9.91MB/9.91MB, 3/10 file
            state = f"{done}/{self._amount(self.total)}"
            state += f" ({100 * self.done / self.total:.0f}%)" if self.total else ""
            state += f", elapsed {tqdm.format_interval(elapsed)}"
            if 0 < self.done < self.total:
                state += f", left {tqdm.format_interval(elapsed * (self.total - self.done) / self.done)}"
        return state + (f", {self.postfix}" if self.postfix else "")

    def _line(self, text: str) -> None:
        print(f"{self.desc}: {text}", file=self.stream, flush=True)
        self.last_line, self.last_shown = time.monotonic(), (self.done, self.postfix)
