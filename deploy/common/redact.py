"""The last line of defence for secrets: every known secret value is masked in what the
commands write, whatever path the text took to get there.

Outputs mask NoEcho and secret parameters by structure first (the plan knows which keys
are secret). This module is the net behind it: the values themselves (NoEcho values given
in a manifest, values read from secret sources) are registered with :data:`REDACTOR`, and
``deploy.cli`` wraps stdout and stderr so that any registered value, wherever it appears
in a line (an error message from AWS, a template diff, a log line), is printed as ``****``.
Values shorter than :data:`MIN_LENGTH` are masked by structure only: as substrings they
would blank out ordinary words.
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
from collections.abc import Iterator
from typing import TextIO

MASK = "****"
MIN_LENGTH = 4


class Redactor:
    """A set of secret values and the text with each of them masked."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        if len(value) >= MIN_LENGTH:
            with self._lock:
                self._values.add(value)

    def redact(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)  # longest first: no partial leftovers
        for value in values:
            if value in text:
                text = text.replace(value, MASK)
        return text

    def clear(self) -> None:
        with self._lock:
            self._values.clear()


REDACTOR = Redactor()


class RedactingStream(io.TextIOBase):
    """A text stream that writes through ``target`` with every registered secret masked."""

    def __init__(self, target: TextIO, redactor: Redactor = REDACTOR):
        self.target, self.redactor = target, redactor

    def write(self, text: str) -> int:
        self.target.write(self.redactor.redact(text))
        return len(text)

    def flush(self) -> None:
        self.target.flush()

    def isatty(self) -> bool:
        return self.target.isatty()

    def fileno(self) -> int:
        return self.target.fileno()

    @property
    def buffer(self):  # type: ignore[override]
        """The binary stream below (an endpoint's answer is written as bytes, as received)."""
        return self.target.buffer

    @property
    def encoding(self):  # type: ignore[override]
        return getattr(self.target, "encoding", "utf-8")


@contextlib.contextmanager
def redacted_output(redactor: Redactor = REDACTOR) -> Iterator[None]:
    """Within the block, stdout and stderr mask every secret ``redactor`` knows."""
    saved = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = RedactingStream(saved[0], redactor), RedactingStream(saved[1], redactor)  # type: ignore[assignment]
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
