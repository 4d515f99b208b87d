"""Text corpora for the character-level models of chapter 4: the tiny-shakespeare corpus ships
with tiefnet (checksummed), and any UTF-8 text file of the user's can stand in for it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tiefnet.errors import ConfigError, DataError

SHIPPED = Path(__file__).parent / "text"
TINY_SHAKESPEARE = "tinyshakespeare.txt"
MAX_BYTES = 2**28  # 256 MiB of text: its ids take 8 bytes a character


def _shipped_sha256() -> dict[str, str]:
    lines = (SHIPPED / "SHA256SUMS").read_text().splitlines()
    return {name: digest for digest, name in (line.split() for line in lines if line.strip())}


def load_text(path: str | Path | None = None, verify: bool = True) -> str:
    """The shipped tiny-shakespeare corpus (``path`` None, checksum verified), or a UTF-8 file."""
    if path is None:
        path, expected = SHIPPED / TINY_SHAKESPEARE, _shipped_sha256()[TINY_SHAKESPEARE]
    else:
        path, expected = Path(path), None
    if not path.is_file():
        what = "a folder, not a file" if path.is_dir() else "not a regular file" if path.exists() else "file not found"
        raise DataError(f"{path}: {what}")
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"{path}: {path.stat().st_size:,} bytes, more than the {MAX_BYTES:,} a text may have")
    raw = path.read_bytes()
    if verify and expected is not None:
        digest = hashlib.sha256(raw).hexdigest()
        if digest != expected:
            raise DataError(f"{path}: checksum mismatch (sha256 {digest[:12]}…, expected {expected[:12]}…)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise DataError(f"{path}: not UTF-8 text ({error.reason} at byte {error.start})") from None
    if len(text) < 2:
        raise DataError(f"{path}: needs at least two characters of text")
    return text


@dataclass(frozen=True)
class Vocabulary:
    """The characters of a text, sorted; ``encode``/``decode`` map text <-> integer ids.

    Id k stands for the one-hot vector e_k of the lecture's example (4.1, vocabulary {h, a, l, o}:
    "h" = (1, 0, 0, 0)); an Embedding reads row k of its weights instead of multiplying by e_k."""

    chars: str

    @classmethod
    def of(cls, text: str) -> "Vocabulary":
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        index = {c: i for i, c in enumerate(self.chars)}
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise ConfigError(f"characters {''.join(unknown)!r} are not in the vocabulary")
        return np.fromiter((index[c] for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def split(ids: np.ndarray, held_out: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """(training ids, validation ids): the last ``held_out`` share of the text is held out."""
    if not 0.0 < held_out < 1.0:
        raise ConfigError(f"held_out={held_out} must be in (0, 1)")
    cut = int(round(len(ids) * (1.0 - held_out)))
    return ids[:cut], ids[cut:]
