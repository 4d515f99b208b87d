"""The Text view: a char-rnn (4.4) writes, character by character, and the page shows each one as
it is drawn from p^(1/T).

The recurrent state travels through the arguments (:func:`tiefnet.text.charrnn_sample.predict_from`),
so one loaded model samples for many requests at once.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy

MAX_LENGTH = 5000  # characters of one sample on the page
MAX_PRIME = 1000


@dataclass(frozen=True)
class TextSampler:
    name: str
    model: Any
    vocab: Any
    warmup: str
    kind = "charrnn"
    app = "charrnn"

    @classmethod
    def load(cls, name: str, folder: str | Path) -> "TextSampler":
        from tiefnet.text.charrnn_sample import load_sampler

        model, vocab, warmup = load_sampler(folder)
        return cls(name, model, vocab, warmup)

    @property
    def characters(self) -> str:
        return self.vocab.chars

    def stream(self, prime: str, length: int, temperature: float, seed: int | None) -> Iterator[str]:
        """The prime, then ``length`` characters one by one; a bad prime or temperature raises here, at
        the call (a ConfigError), before anything is sent."""
        from tiefnet.text.charrnn_sample import sample_stream

        rng = numpy.random.default_rng(seed)
        return sample_stream(self.model, self.vocab, prime, length, temperature, rng, self.warmup)
