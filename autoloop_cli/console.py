"""Progress output for long local work: numbered stages with timings."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


class Console:
    def __init__(self, stages: int, out: TextIO | None = None) -> None:
        self.stages = stages
        self.current = 0
        self.out = out or sys.stdout
        self.started = time.perf_counter()

    def say(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    @contextmanager
    def stage(self, title: str) -> Iterator[None]:
        self.current += 1
        mark = time.perf_counter()
        self.say(f"[{self.current}/{self.stages}] {title} ...")
        try:
            yield
        except BaseException:
            self.say(f"      failed after {time.perf_counter() - mark:.2f} s")
            raise
        self.say(f"      done in {time.perf_counter() - mark:.2f} s")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started
