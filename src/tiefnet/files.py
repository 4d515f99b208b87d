"""Writing files safely: atomically (a temp file renamed into place: a write killed midway leaves the
old file) and never through a symbolic link (the temp file is created exclusively beside the target,
and ``os.replace`` replaces a link at the target's name, never the file it points to).

Model folders and run folders may come from someone else (DESIGN.md): whatever they contain, tiefnet
writes only the names it means to write, inside the folder.
"""
from __future__ import annotations

import json
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: temp files get the mode a plain open() would give


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """A fresh temp file beside ``path`` (created exclusively, same suffix: matplotlib reads the format
    from it) to write to; renamed over ``path`` when the block ends without an error, removed otherwise."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        os.close(fd)
        yield Path(tmp)
        os.replace(tmp, path)  # replaces a symlink at path itself, never its target
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_bytes(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(f)`` on a binary temp file, fsync it, and rename it over ``path``."""
    path = Path(path)
    with replacing(path) as tmp:
        fd = os.open(tmp, os.O_WRONLY | os.O_TRUNC | os.O_NOFOLLOW)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and never through a symlink."""
    return write_bytes(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path: str | os.PathLike, data: Any, ascii: bool = True) -> Path:
    """``data`` as indented JSON (``ascii=False`` keeps arrows and umlauts readable)."""
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=ascii) + "\n")
