"""Read NDJSON line by line: plain or gzip (sniffed from the content), file or stdin, with a
bounded line length so a file without newlines cannot exhaust memory."""

from __future__ import annotations

import gzip
import io
import os
import stat
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any, Protocol

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"


class _Prefixed(io.RawIOBase):
    """A non-seekable stream with bytes already read from it put back in front."""

    def __init__(self, head: bytes, rest: IO[bytes]) -> None:
        self._head = head
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            size = min(len(buffer), len(self._head))
            buffer[:size] = self._head[:size]
            self._head = self._head[size:]
            return size
        # read1: return what a pipe has now instead of waiting for a full buffer.
        read = getattr(self._rest, "read1", self._rest.read)
        data = read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class LineReader(Protocol):
    def readline(self, size: int = -1, /) -> bytes: ...


@dataclass(slots=True)
class Input:
    lines: LineReader
    # Bytes consumed so far and the total, for the progress bar; None when the size is unknown.
    position: Callable[[], int] | None
    size: int | None


@contextmanager
def open_input(path: str) -> Iterator[Input]:
    raw: IO[bytes] = sys.stdin.buffer if path == "-" else open(path, "rb")  # noqa: SIM115
    try:
        regular = path != "-" and stat.S_ISREG(os.fstat(raw.fileno()).st_mode)
        head = raw.read(2)
        stream: LineReader
        if regular:
            raw.seek(0)
            stream = raw
        else:
            # A pipe (stdin, a FIFO) cannot seek back: put the sniffed bytes back in front.
            stream = io.BufferedReader(_Prefixed(head, raw), buffer_size=1 << 16)
        if head == GZIP_MAGIC:
            stream = gzip.GzipFile(fileobj=stream, mode="rb")
        yield Input(
            lines=stream,
            position=raw.tell if regular else None,
            size=os.fstat(raw.fileno()).st_size if regular else None,
        )
    finally:
        if path != "-":
            raw.close()


def read_lines(stream: LineReader, *, max_line_bytes: int) -> Iterator[tuple[int, bytes | None]]:
    """(line number, bytes) for each line, from 1; bytes is None for a line over the limit."""
    number = 0
    while line := stream.readline(max_line_bytes + 1):
        number += 1
        if len(line) > max_line_bytes and not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):
                line = stream.readline(1 << 16)
            yield number, None
        else:
            yield number, line
