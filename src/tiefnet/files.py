"""Writing files safely: atomically (a temp file renamed into place: a write killed midway leaves the
old file) and never through a symbolic link (the temp file is created exclusively beside the target,
and ``os.replace`` replaces a link at the target's name, never the file it points to).

Model folders and run folders may come from someone else (DESIGN.md): whatever they contain, tiefnet
writes only the names it means to write, inside the folder.
"""
from __future__ import annotations

import json
import os
import re
import stat
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, TextIO

from tiefnet.errors import ConfigError

_UMASK = os.umask(0)
os.umask(_UMASK)  # read once: temp files get the mode a plain open() would give


@contextmanager
def _temp_beside(path: Path) -> Iterator[tuple[int, Path]]:
    """(descriptor, name) of a fresh temp file beside ``path``, created exclusively (same suffix:
    matplotlib reads the format from it); renamed over ``path`` when the block ends without an
    error, removed otherwise. ``os.replace`` replaces a symlink at ``path`` itself, never its target."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix or ".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)
        yield fd, Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def remove_stale_temp_files(folder: str | os.PathLike) -> list[str]:
    """Remove the temp files that writes killed midway (SIGKILL, a power cut) left in ``folder``:
    regular files named like :func:`_temp_beside`'s, ``.NAME.XXXXXXXX.SUFFIX``. Returns their names."""
    removed = []
    for entry in os.scandir(folder):
        if _TEMP_NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
            os.unlink(entry.path)  # a symlink of that name is left alone (unlink would only remove the link)
            removed.append(entry.name)
    return removed


_TEMP_NAME = re.compile(r"\.[^/]+\.[a-z0-9_]{8}\.[A-Za-z0-9]+")  # tempfile.mkstemp's 8 random characters


@contextmanager
def replacing(path: str | os.PathLike) -> Iterator[Path]:
    """The name of a fresh temp file to write ``path``'s new content to (for writers that want a file
    name, like matplotlib's savefig); it replaces ``path`` when the block ends without an error."""
    with _temp_beside(Path(path)) as (fd, tmp):
        os.close(fd)
        yield tmp


def write_bytes(path: str | os.PathLike, write: Callable[[BinaryIO], Any]) -> Path:
    """Call ``write(f)`` on the temp file's own descriptor (no second open by name), fsync it, and
    rename it over ``path``."""
    path = Path(path)
    with _temp_beside(path) as (fd, _):
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
    return path


def open_appending(path: str | os.PathLike, initial: str) -> TextIO:
    """``path`` with the content ``initial`` (written and renamed into place like :func:`write_text`),
    and that same file open for appending: later lines go to it, not to whatever the name points to."""
    path = Path(path)
    with _temp_beside(path) as (fd, _):
        f = os.fdopen(fd, "a", encoding="utf-8")
        try:
            f.write(initial)
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            f.close()
            raise
    return f


MAX_TEXT_BYTES = 256 * 2**20  # a run folder's JSON and text files (metrics.jsonl of a long run: a few MB)
MAX_NESTING = 200  # levels of JSON lists/objects in a file


def read_text(path: str | os.PathLike, max_bytes: int = MAX_TEXT_BYTES) -> str:
    """The UTF-8 text of ``path``, refusing a symbolic link (a run folder must not read a file from
    elsewhere into itself), a file that is not a regular file (a FIFO would block), a file larger
    than ``max_bytes`` and bytes that are not UTF-8."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
    except OSError as error:
        if os.path.islink(path):
            raise ConfigError(f"{path} is a symbolic link: refusing to read it") from None
        raise error
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"{path} is not a regular file")
        if info.st_size > max_bytes:
            raise ConfigError(f"{path} has {info.st_size} bytes, more than the {max_bytes} tiefnet reads")
        data = f.read(max_bytes + 1)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None


def read_json(path: str | os.PathLike) -> Any:
    """The JSON in ``path``, read as :func:`read_text` does and parsed by :func:`parse_json`."""
    return parse_json(read_text(path), str(path))


def parse_json(text: str, source: str, error: type[Exception] = ConfigError) -> Any:
    """JSON from a file that may come from anyone: invalid or too deeply nested JSON is an
    ``error`` naming ``source``, never a RecursionError."""
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as problem:
        reason = "nested too deeply" if isinstance(problem, RecursionError) else str(problem)
        raise error(f"{source}: not valid JSON ({reason})") from None
    if _nesting(value) > MAX_NESTING:
        raise error(f"{source}: JSON nested more than {MAX_NESTING} levels deep")
    return value


def _nesting(value: Any) -> int:
    """How deeply lists and dicts nest in ``value`` (iteratively: no recursion limit)."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, (list, dict)):
            deepest = max(deepest, depth)
            todo.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically and never through a symlink."""
    return write_bytes(path, lambda f: f.write(text.encode("utf-8")))


def write_json(path: str | os.PathLike, data: Any, ascii: bool = True) -> Path:
    """``data`` as indented JSON (``ascii=False`` keeps arrows and umlauts readable)."""
    return write_text(path, json.dumps(data, indent=2, ensure_ascii=ascii) + "\n")
