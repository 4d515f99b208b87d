"""Caption scores (BLEU-1..4 and CIDEr through pycocoevalcap, METEOR where Java is) and the share of
attention that lies in the box of the digit a word names."""
import shutil

import numpy as np
import pytest

import tiefnet.text.caption_metrics as metrics
from tiefnet.data.captions import Box
from tiefnet.text.caption_metrics import attention_in_boxes, caption_scores, mass_in_box

CAPTIONS = [
    "a large red 7 in the upper left and a small green 3 in the lower right".split(),
    "a small blue 1 at the top right".split(),
    "two dogs play with a ball on the grass".split(),
]
BLEU = [f"BLEU-{n}" for n in range(1, 5)]


def test_identical_captions_score_one():
    scores = caption_scores(CAPTIONS, [[c] for c in CAPTIONS])
    assert set(scores) == {*BLEU, "CIDEr"}
    assert [scores[b] for b in BLEU] == pytest.approx([1.0] * 4, abs=1e-6)
    assert scores["CIDEr"] > 0


def test_a_completely_wrong_caption_scores_nothing():
    wrong = [["zebra", "xylophone", "quantum", "nebula", "tuba"]] * len(CAPTIONS)
    scores = caption_scores(wrong, [[c] for c in CAPTIONS])
    assert [scores[b] for b in BLEU] == pytest.approx([0.0] * 4, abs=1e-6)
    assert scores["CIDEr"] == pytest.approx(0.0, abs=1e-9)
    assert caption_scores([[]] * 3, [[c] for c in CAPTIONS])["BLEU-1"] == pytest.approx(0.0, abs=1e-6)


def test_matching_any_one_reference_scores_one():
    references = [[["a", "dog", "sits"], c, ["the", "image", "shows", "something", "else", "entirely", "here"]]
                  for c in CAPTIONS]
    scores = caption_scores(CAPTIONS, references)
    assert [scores[b] for b in BLEU] == pytest.approx([1.0] * 4, abs=1e-6)
    half = caption_scores([CAPTIONS[1][:3] + ["zebra"] * 5], [[CAPTIONS[1]]])  # 3 of 8 words right, same length
    assert half["BLEU-1"] == pytest.approx(3 / 8, abs=1e-6)


def test_one_image_has_no_cider_and_none_no_scores():
    scores = caption_scores(CAPTIONS[:1], [CAPTIONS[:1]])
    assert scores["BLEU-4"] == pytest.approx(1.0, abs=1e-6) and np.isnan(scores["CIDEr"])
    assert caption_scores([], []) == {}


@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR needs java on PATH")
def test_meteor_with_java():
    scores = caption_scores(CAPTIONS[:2], [[c] for c in CAPTIONS[:2]], meteor=True)
    assert isinstance(scores["METEOR"], float) and scores["METEOR"] == pytest.approx(1.0, abs=1e-6)


def test_meteor_without_java_is_a_message(monkeypatch):
    monkeypatch.setattr(metrics.shutil, "which", lambda name: None)
    scores = caption_scores(CAPTIONS[:2], [[c] for c in CAPTIONS[:2]], meteor=True)
    assert isinstance(scores["METEOR"], str) and scores["METEOR"].startswith("skipped")
    assert scores["BLEU-1"] == pytest.approx(1.0, abs=1e-6)  # the other scores still there


# --- attention in the box ---------------------------------------------------------------------------

def one_hot(side: int, row: int, col: int) -> np.ndarray:
    alpha = np.zeros((side, side))
    alpha[row, col] = 1.0
    return alpha.reshape(-1)


def test_mass_in_box_of_one_hot_and_uniform_maps():
    box = Box("7", 3, 5, 29, 31)  # 64 x 64 canvas, 8 x 8 cells of 8 pixels: not aligned to them
    assert mass_in_box(one_hot(8, 1, 1), box, 64) == 1.0  # cell rows/cols 8..16: inside
    assert mass_in_box(one_hot(8, 2, 2), box, 64) == 1.0  # 16..24
    assert mass_in_box(one_hot(8, 5, 5), box, 64) == 0.0  # 40..48: outside
    assert mass_in_box(one_hot(8, 0, 7), box, 64) == 0.0
    assert mass_in_box(one_hot(8, 0, 0), box, 64) == pytest.approx((8 - 5) * (8 - 3) / 64)  # a corner cell
    assert mass_in_box(one_hot(8, 3, 1), box, 64) == pytest.approx((31 - 24) / 8)  # the box's bottom edge
    for canvas, side, b in [(64, 8, box), (64, 8, Box("1", 0, 0, 64, 64)), (64, 3, Box("2", 10, 33, 38, 61)),
                            (56, 7, Box("3", 1, 2, 17, 18)), (64, 4, Box("4", 32, 32, 48, 48))]:
        uniform = np.full(side * side, 1 / side ** 2)
        assert mass_in_box(uniform, b, canvas) == pytest.approx(b.area / canvas ** 2, rel=1e-12)


def test_attention_in_boxes_maps_the_kth_digit_word_to_the_kth_box():
    canvas, side = 64, 8
    words = ["a", "large", "red", "7", "in", "the", "upper", "left", "and", "a", "small", "green", "3", "in",
             "the", "lower", "right"]
    boxes = [Box("7", 0, 0, 28, 28), Box("3", 40, 40, 56, 56)]
    alpha = np.full((len(words) + 1, side * side), 1 / side ** 2)  # one row per word and the END
    alpha[3] = one_hot(side, 1, 1)  # "7" looks at the upper left digit
    alpha[12] = one_hot(side, 6, 6)  # "3" at the lower right one
    uniform = (28 * 28 + 16 * 16) / 2 / canvas ** 2
    result = attention_in_boxes([words], [alpha], [boxes], canvas)
    assert result == {"attention_in_box": 1.0, "uniform_in_box": pytest.approx(uniform), "digit_words": 2}
    swapped = alpha.copy()
    swapped[[3, 12]] = alpha[[12, 3]]  # each digit word looks at the other digit
    assert attention_in_boxes([words], [swapped], [boxes], canvas)["attention_in_box"] == 0.0
    # the uniform map scores the baseline; two captions: the mean over all their digit words
    flat = np.full_like(alpha, 1 / side ** 2)
    both = attention_in_boxes([words, words], [alpha, flat], [boxes, boxes], canvas)
    assert both["digit_words"] == 4
    assert both["attention_in_box"] == pytest.approx((1 + 1 + 28 * 28 / 64 ** 2 + 16 * 16 / 64 ** 2) / 4)
    assert attention_in_boxes([words], [flat], [boxes], canvas)["attention_in_box"] == pytest.approx(uniform)
    # more digit words than digits: the extra ones are not counted
    extra = words + ["and", "a", "5"]
    assert attention_in_boxes([extra], [np.vstack([alpha, flat[:3]])], [boxes], canvas)["digit_words"] == 2


def test_no_digit_words_count_zero_and_nan():
    result = attention_in_boxes([["a", "dog"]], [np.full((3, 4), 0.25)], [[Box("7", 0, 0, 28, 28)]], 64)
    assert result["digit_words"] == 0
    assert np.isnan(result["attention_in_box"]) and np.isnan(result["uniform_in_box"])
    assert attention_in_boxes([], [], [], 64)["digit_words"] == 0


def test_attention_by_word_kind_reads_the_kth_phrase_as_the_kth_digit():
    from tiefnet.text.caption_metrics import attention_by_word_kind

    boxes = [[Box("7", 0, 0, 32, 32), Box("3", 32, 32, 64, 64)]]  # upper left, lower right
    words = [["a", "large", "red", "7", "and", "a", "small", "green", "3"]]
    on_first, on_second = np.zeros((2, 2)), np.zeros((2, 2))
    on_first[0, 0], on_second[1, 1] = 1, 1
    alpha = np.stack([on_first.ravel()] * 4 + [on_first.ravel()] + [on_second.ravel()] * 4)  # one row per word
    shares = attention_by_word_kind(words, [alpha], boxes, 64)
    assert shares["attention_in_box (digit words)"] == 1.0 and shares["attention_in_box (size words)"] == 1.0
    assert shares["attention_in_box (other words)"] == 1.0 and np.isnan(shares["attention_in_box (place words)"])
    alpha[3] = on_second.ravel()  # the 7 written while looking at the 3
    assert attention_by_word_kind(words, [alpha], boxes, 64)["attention_in_box (digit words)"] == 0.5


def test_digits_named_wrongly_counts_each_digit_against_its_box():
    from tiefnet.text.caption_metrics import digits_named_wrongly

    boxes = [[Box("7", 0, 0, 28, 28), Box("3", 32, 32, 60, 60)], [Box("1", 0, 0, 16, 16)]]
    right = ["a large red 7 in the upper left and a small green 3 in the lower right".split(),
             "a small blue 1 at the top left".split()]
    assert digits_named_wrongly(right, boxes) == {"digits_wrong": 0.0, "digits": 3}
    swapped = [right[0][:3] + ["3"] + right[0][4:11] + ["7"] + right[0][12:], right[1]]  # both of the first wrong
    assert digits_named_wrongly(swapped, boxes)["digits_wrong"] == pytest.approx(2 / 3)
    short = [right[0][:8], ["a", "small", "blue", "1", "and", "a", "2"]]  # the 3 missing; an extra digit is no error
    assert digits_named_wrongly(short, boxes)["digits_wrong"] == pytest.approx(1 / 3)
    assert np.isnan(digits_named_wrongly([], [])["digits_wrong"])
