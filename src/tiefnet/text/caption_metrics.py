"""How good the captions are: BLEU-1...4 and CIDEr from pycocoevalcap (the COCO caption evaluation),
METEOR where Java is installed, and for attention models how much of the attention lies on the digit
a word names (the scenes know every digit's box).

BLEU-n: the geometric mean of the clipped 1...n-gram precisions of the generated captions against all
references of their images, times a brevity penalty (corpus level). CIDEr: the TF-IDF weighted n-gram
similarity to the references (x 10, as the COCO server reports it).

Attention in the box: the weights alpha_j of the step that wrote a digit's word, each region spread
evenly over its H' x W' cell of the image; the share of that mass inside the box of the digit the word
names (the k-th digit word of a caption names the scene's k-th digit: captions name them in reading
order). A uniform map scores the box's area share, reported beside it.

Digits named wrongly: the share of a scene's digits whose digit word (the k-th of the caption for the
k-th digit) is another digit or missing. BLEU-4 counts one wrong word of a 24-word caption as four
wrong 4-grams of its 21, so this says more plainly how often a model misreads a digit.
"""
from __future__ import annotations

import contextlib
import io
import shutil
from typing import Sequence

import numpy

from tiefnet.data.captions import Box
from tiefnet.data.scenes import COLOURS, PLACES, SIZES, SYNONYMS

DIGIT_WORDS = frozenset("0123456789")
WORD_KINDS = {"digit": DIGIT_WORDS, "size": frozenset(SIZES), "colour": frozenset(COLOURS),  # the scenes' grammar
              "place": frozenset(w for place in (*PLACES, *SYNONYMS.values(), "below it") for w in place.split())}


def _quiet(compute, *args):
    with contextlib.redirect_stdout(io.StringIO()):  # pycocoevalcap prints its n-gram counts
        return compute(*args)


def caption_scores(generated: Sequence[Sequence[str]], references: Sequence[Sequence[Sequence[str]]],
                   meteor: bool = False) -> dict[str, float | str]:
    """{"BLEU-1".."BLEU-4", "CIDEr"[, "METEOR"]} of the generated captions (token lists) against the
    references (a list of token lists per image). METEOR needs Java: without it the entry is a message.

    BLEU-n = BP exp(1/n sum_{m=1..n} ln p_m), p_m the clipped m-gram precision over all captions (each
    generated m-gram counted at most as often as in one reference), BP = min(1, exp(1 - r/c)) with c the
    generated and r the closest reference lengths (corpus level)."""
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider

    if not generated:
        return {}
    res = {i: [" ".join(words) or "."] for i, words in enumerate(generated)}  # an empty caption scores 0
    gts = {i: [" ".join(words) for words in refs] for i, refs in enumerate(references)}
    bleu, _ = _quiet(Bleu(4).compute_score, gts, res)
    scores: dict[str, float | str] = {f"BLEU-{n + 1}": float(b) for n, b in enumerate(bleu)}
    scores["CIDEr"] = float(_quiet(Cider().compute_score, gts, res)[0]) if len(res) > 1 else float("nan")
    if meteor:
        scores["METEOR"] = meteor_score(gts, res)
    return scores


def meteor_score(gts: dict, res: dict) -> float | str:
    """METEOR 1.5 through pycocoevalcap's Java jar, or a message saying why it was skipped."""
    if shutil.which("java") is None:
        return "skipped: METEOR needs a Java runtime (java on PATH), e.g. apt-get install default-jre-headless"
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    try:
        return float(scorer.compute_score(gts, res)[0])
    finally:
        with contextlib.suppress(Exception):
            scorer.close()


def mass_in_box(alpha: numpy.ndarray, box: Box, canvas: int) -> float:
    """The share of alpha (R,) = an s x s grid over the canvas x canvas image that lies inside ``box``:
    sum_i alpha_i |cell_i ∩ box| / |cell_i|, each region's weight alpha_i (4.4.2) spread evenly over its cell."""
    side = int(round(len(alpha) ** 0.5))
    cell = canvas / side
    edges = numpy.arange(side + 1) * cell
    inside_x = numpy.clip(numpy.minimum(edges[1:], box.x1) - numpy.maximum(edges[:-1], box.x0), 0, None) / cell
    inside_y = numpy.clip(numpy.minimum(edges[1:], box.y1) - numpy.maximum(edges[:-1], box.y0), 0, None) / cell
    return float((alpha.reshape(side, side) * numpy.outer(inside_y, inside_x)).sum())


def attention_in_boxes(words: Sequence[Sequence[str]], alphas: Sequence[numpy.ndarray],
                       boxes: Sequence[Sequence[Box]], canvas: int) -> dict[str, float | int]:
    """Mean attention share inside the named digit's box over every digit word of the captions, the
    uniform map's share (the box's area over the canvas) and how many words were counted."""
    shares, areas = [], []
    for caption, alpha, scene in zip(words, alphas, boxes):
        digit_steps = [t for t, w in enumerate(caption) if w in DIGIT_WORDS]
        for k, t in enumerate(digit_steps[:len(scene)]):
            shares.append(mass_in_box(alpha[t], scene[k], canvas))
            areas.append(scene[k].area / canvas ** 2)
    if not shares:
        return {"attention_in_box": float("nan"), "uniform_in_box": float("nan"), "digit_words": 0}
    return {"attention_in_box": float(numpy.mean(shares)), "uniform_in_box": float(numpy.mean(areas)),
            "digit_words": len(shares)}


def digits_named_wrongly(words: Sequence[Sequence[str]], boxes: Sequence[Sequence[Box]]) -> dict[str, float | int]:
    """The share of the scenes' digits that the captions name wrongly: errors / digits, where digit k of
    a scene is wrong when the caption's k-th digit word is not its label or the caption has no k-th."""
    errors = total = 0
    for caption, scene in zip(words, boxes):
        named = [w for w in caption if w in DIGIT_WORDS]
        total += len(scene)
        errors += sum(k >= len(named) or named[k] != box.word for k, box in enumerate(scene))
    return {"digits_wrong": errors / total if total else float("nan"), "digits": total}


def attention_by_word_kind(words: Sequence[Sequence[str]], alphas: Sequence[numpy.ndarray],
                           boxes: Sequence[Sequence[Box]], canvas: int) -> dict[str, float]:
    """The mean share inside the box of its digit for every kind of word of the scenes' grammar (digit,
    size, colour, place words; "other": a, in, the, ...): the k-th phrase of a caption (they are joined
    by "and") describes the k-th digit."""
    shares: dict[str, list[float]] = {kind: [] for kind in (*WORD_KINDS, "other")}
    for caption, alpha, scene in zip(words, alphas, boxes):
        k = 0
        for t, word in enumerate(caption):
            if word == "and":
                k += 1
                continue
            if k >= len(scene):
                break
            kind = next((name for name, members in WORD_KINDS.items() if word in members), "other")
            shares[kind].append(mass_in_box(alpha[t], scene[k], canvas))
    return {f"attention_in_box ({kind} words)": float(numpy.mean(v)) if v else float("nan") for kind, v in shares.items()}
