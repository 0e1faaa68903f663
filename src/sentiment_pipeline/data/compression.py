"""The one map of compressions the table readers undo: .gz .bz2 .xz .zip (one file) .zst."""

from __future__ import annotations

import bz2
import contextlib
import gzip
import lzma
import zipfile
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

from sentiment_pipeline.errors import DataError


@contextlib.contextmanager
def _zip_member(raw: IO[bytes], name: str) -> Iterator[IO[bytes]]:
    with zipfile.ZipFile(raw) as archive:
        names = [member for member in archive.namelist() if not member.endswith("/")]
        if len(names) != 1:
            raise DataError(
                f"{name} holds {len(names)} files {names[:5]}; a .zip file must hold one"
            )
        with archive.open(names[0]) as member:
            yield member


@contextlib.contextmanager
def _zstd_stream(raw: IO[bytes], name: str) -> Iterator[IO[bytes]]:
    try:
        import zstandard
    except ImportError as exc:
        raise DataError(
            f"reading {name} needs the zstandard package (pip install zstandard), or "
            "decompress the file first"
        ) from exc
    with zstandard.ZstdDecompressor().stream_reader(raw, closefd=False) as handle:
        yield handle


# Each opens the decompressed bytes of an opened file; the name is what messages call the file.
DECOMPRESSORS: dict[str, Callable[[IO[bytes], str], AbstractContextManager[IO[bytes]]]] = {
    ".gz": lambda raw, _: gzip.GzipFile(fileobj=raw, mode="rb"),
    ".bz2": lambda raw, _: bz2.BZ2File(raw),
    ".xz": lambda raw, _: lzma.LZMAFile(raw),
    ".zip": _zip_member,
    ".zst": _zstd_stream,
}
COMPRESSIONS = tuple(DECOMPRESSORS)


def compression_of(path: Path | str) -> str | None:
    """The compression suffix a file's name ends with (".gz", ...), or None."""
    suffix = Path(path).suffix.lower()
    return suffix if suffix in DECOMPRESSORS else None


@contextlib.contextmanager
def decompressed(raw: IO[bytes], path: Path, name: str | None = None) -> Iterator[IO[bytes]]:
    """The bytes of `raw` (the opened `path`), decompressed as the path's last suffix says.

    `name`: what messages call the file (default: its path).
    """
    suffix = compression_of(path)
    if suffix is None:
        yield raw
        return
    with DECOMPRESSORS[suffix](raw, name or str(path)) as handle:
        yield handle


@contextlib.contextmanager
def open_binary(path: Path, name: str | None = None) -> Iterator[IO[bytes]]:
    """The bytes of a file, decompressed as its last suffix says."""
    with path.open("rb") as raw, decompressed(raw, path, name) as handle:
        yield handle


def head_bytes(path: Path, size: int) -> bytes:
    """The first `size` bytes of a file, decompressed (b"" when it cannot be read)."""
    try:
        with open_binary(path) as handle:
            return handle.read(size)
    except Exception:  # a best-effort look: the reader itself reports a broken file
        return b""
