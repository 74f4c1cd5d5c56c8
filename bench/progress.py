"""Progress on stderr (stdout carries only the report)."""

from __future__ import annotations

import sys
import time

_started = time.monotonic()


def say(message: str) -> None:
    print(f"[bench {time.monotonic() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)


class Ticker:
    """`done/total` on one stderr line, redrawn at most every `every_s` seconds."""

    def __init__(self, what: str, total: int, every_s: float = 1.0) -> None:
        self.what, self.total, self.every_s = what, total, every_s
        self._last = 0.0

    def update(self, done: int) -> None:
        now = time.monotonic()
        if now - self._last >= self.every_s or done >= self.total:
            self._last = now
            print(f"\r  {self.what}: {done}/{self.total}", end="", file=sys.stderr, flush=True)
            if done >= self.total:
                print(file=sys.stderr, flush=True)
