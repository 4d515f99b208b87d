"""Images with reference captions (lecture 4.4.1), the word vocabulary and the id sequences a
captioning model trains on: START w_1 ... w_n END, padded to one length.

A :class:`CaptionSet` is what every source gives (the generated scenes of
:mod:`tiefnet.data.scenes`, a Flickr8k folder or a COCO captions file,
:mod:`tiefnet.data.caption_files`): the images as uint8 (N, S, S, 3), several reference captions per
image as token lists, a name per image and, for the scenes, the box of every digit.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy

from tiefnet.errors import CheckpointError, ConfigError, DataError

PAD, START, END, UNK = "<pad>", "<start>", "<end>", "<unk>"
SPECIALS = (PAD, START, END, UNK)  # ids 0, 1, 2, 3
MAX_WORDS = 100_000  # a vocabulary (from a file) larger than this is refused
_TOKEN = re.compile(r"[^\W_]+(?:'[^\W_]+)?")  # letters (any script) and digits


def tokenize(caption: str) -> list[str]:
    """Lower-case words and numbers; punctuation dropped ("Ein Hund fängt den Ball." -> ["ein", "hund",
    "fängt", "den", "ball"])."""
    return _TOKEN.findall(caption.lower())


@dataclass(frozen=True)
class Box:
    """Where a word's object lies in the image, in pixels: columns x0 <= x < x1, rows y0 <= y < y1."""

    word: str  # the word that names it ("7")
    x0: int
    y0: int
    x1: int
    y1: int

    @property
    def area(self) -> int:
        return (self.x1 - self.x0) * (self.y1 - self.y0)


@dataclass(eq=False)
class CaptionSet:
    """Images and their reference captions.

    Shapes:
        images: (N, S, S, 3) uint8, RGB
        captions: N lists of reference captions, each a list of tokens (at least one per image)
        names: N names (file names, or "scene-<i>")
        boxes: N lists of :class:`Box` (scenes: one per digit, in the order the captions name them),
            or None where nothing is known (photos)
        digits: N counts of objects (scenes: 1-3), or None
    """

    images: numpy.ndarray
    captions: list[list[list[str]]]
    names: list[str]
    boxes: list[list[Box]] | None = None
    digits: list[int] | None = None
    info: dict = field(default_factory=dict)  # where it came from (JSON-able)

    def __post_init__(self) -> None:
        N = len(self.captions)
        if self.images.ndim != 4 or self.images.shape[3] != 3 or self.images.shape[0] != N or len(self.names) != N:
            raise DataError(f"CaptionSet: {self.images.shape} images, {N} caption lists and {len(self.names)} names "
                            f"do not match (expected images (N, S, S, 3))")
        if any(not refs or any(not words for words in refs) for refs in self.captions):
            raise DataError("CaptionSet: every image needs at least one non-empty caption")

    def __len__(self) -> int:
        return len(self.captions)

    def subset(self, index: Sequence[int] | numpy.ndarray) -> CaptionSet:
        """The images at ``index``, in that order."""
        index = [int(i) for i in index]
        pick = (lambda values: None if values is None else [values[i] for i in index])
        return CaptionSet(self.images[index], pick(self.captions), pick(self.names), pick(self.boxes),
                          pick(self.digits), dict(self.info))


class Vocabulary:
    """Words <-> ids: the four special tokens (PAD 0, START 1, END 2, UNK 3), then the words of the
    training captions that occur at least ``min_count`` times, most frequent first (ties by spelling);
    rarer words become UNK."""

    def __init__(self, words: Iterable[str]):
        words = list(words)
        if not all(isinstance(w, str) and w for w in words) or tuple(words[:4]) != SPECIALS \
                or len(set(words)) != len(words):
            raise CheckpointError("a caption vocabulary must start with <pad> <start> <end> <unk> and hold "
                                  "distinct non-empty words")
        if len(words) > MAX_WORDS:
            raise CheckpointError(f"a caption vocabulary of {len(words):,} words is more than the {MAX_WORDS:,} allowed")
        self.words = words
        self.index = {w: i for i, w in enumerate(words)}

    @classmethod
    def build(cls, captions: Iterable[Iterable[Sequence[str]]], min_count: int = 1) -> Vocabulary:
        """The vocabulary of the training captions (a list of reference lists per image)."""
        if min_count < 1:
            raise ConfigError(f"min_count={min_count} must be at least 1")
        counts = Counter(w for refs in captions for words in refs for w in words)
        kept = sorted((w for w, n in counts.items() if n >= min_count and w not in SPECIALS),
                      key=lambda w: (-counts[w], w))
        return cls([*SPECIALS, *kept[:MAX_WORDS - len(SPECIALS)]])

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, words: Sequence[str]) -> list[int]:
        unk = self.index[UNK]
        return [self.index.get(w, unk) for w in words]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The words of ``ids`` up to (not including) the first END; PAD and START are skipped."""
        out = []
        for i in ids:
            i = int(i)
            if i == 2:  # END
                break
            if i > 1 and i < len(self.words):
                out.append(self.words[i])
        return out

    def sequences(self, captions: Sequence[Sequence[str]], max_length: int) -> tuple[numpy.ndarray, numpy.ndarray]:
        """Teacher forcing's input and target ids for M captions (4.4.1), each cut to ``max_length`` words:
        inputs START w_1 ... w_n and targets w_1 ... w_n END, padded with PAD (0) to T = n_max + 1.

        Shapes: returns inputs (M, T) int64 and targets (M, T) int64; a target of 0 is padding."""
        T = min(max_length, max(len(c) for c in captions)) + 1
        inputs = numpy.zeros((len(captions), T), dtype=numpy.int64)
        targets = numpy.zeros((len(captions), T), dtype=numpy.int64)
        for m, words in enumerate(captions):
            ids = self.encode(words[:max_length])
            inputs[m, 0] = 1  # START
            inputs[m, 1:len(ids) + 1] = ids
            targets[m, :len(ids)] = ids
            targets[m, len(ids)] = 2  # END
        return inputs, targets
