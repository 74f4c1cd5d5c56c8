"""Progress of a long command on stderr (stdout keeps the result): `what: done/total` with a
bar, redrawn in place on a terminal, a line every few seconds otherwise (CI logs)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(self, what: str, total: int, *, enabled: bool = True, out: TextIO | None = None) -> None:
        self.what, self.total, self.enabled = what, total, enabled
        self.out = out or sys.stderr
        self.tty = self.out.isatty()
        self.done = 0
        self.started = time.monotonic()
        self._shown = 0.0

    def step(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.enabled and (now - self._shown >= (0.2 if self.tty else 2.0) or self.done >= self.total):
            self._shown = now
            self._draw()

    def _draw(self) -> None:
        width = 30
        filled = width * self.done // self.total if self.total else width
        line = f"{self.what}: [{'#' * filled}{'.' * (width - filled)}] {self.done}/{self.total}"
        print(("\r" if self.tty else "") + line, end="" if self.tty else "\n", file=self.out, flush=True)

    def finish(self, summary: str) -> None:
        if not self.enabled:
            return
        seconds = time.monotonic() - self.started
        print(("\r" if self.tty else "") + f"{self.what}: {summary} ({seconds:.1f} s)", file=self.out,
              flush=True)
