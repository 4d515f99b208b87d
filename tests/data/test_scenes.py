"""The generated captioning scenes (4.4.1-4.4.2) and the caption vocabulary: the same scenes for the
same arguments, captions that say what the image shows (three grammar forms, reading order), boxes
that hold every digit's ink, the held-out combinations and where each split's handwriting comes from."""
import functools

import numpy as np
import pytest

import tiefnet.data.mnist as mnist_module
from tiefnet.data.captions import SPECIALS, Box, Vocabulary
from tiefnet.data.mnist import SHIPPED_DIR, read_idx
from tiefnet.data.scenes import COLOURS, HELD_OUT, PLACES, SIZES, SYNONYMS, captions_for, make_scenes
from tiefnet.errors import CheckpointError, ConfigError

COUNT = 40  # scenes per split in the shared fixture


@pytest.fixture(scope="module", autouse=True)
def mnist_once():
    """make_scenes reads MNIST on every call: read it once for this module."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mnist_module, "load_mnist", functools.cache(mnist_module.load_mnist))
        yield


@pytest.fixture(scope="module")
def scenes():
    return {split: make_scenes(split, COUNT, seed=5) for split in ("train", "validation", "test", "compositional")}


def parse(words: list[str]) -> list[tuple[int, int, str, str]]:
    """An absolute-form caption back to its digits (digit, place index, size, colour)."""
    layout = []
    for part in " ".join(words).split(" and "):
        a, size, colour, digit, in_, the, *place = part.split()
        assert (a, in_, the) == ("a", "in", "the") and size in SIZES and colour in COLOURS and digit.isdigit()
        layout.append((int(digit), PLACES.index(" ".join(place)), size, colour))
    return layout


def quadrant(box: Box, half: int) -> tuple[int, int]:
    """(row, column) of the quadrant a box lies in."""
    return int(box.y0 >= half), int(box.x0 >= half)


# --- determinism, shapes -------------------------------------------------------------------------

def test_same_arguments_same_scenes_and_another_seed_others(scenes):
    first = scenes["train"]
    again = make_scenes("train", COUNT, seed=5)
    np.testing.assert_array_equal(again.images, first.images)
    assert again.captions == first.captions and again.boxes == first.boxes and again.digits == first.digits
    assert again.names == first.names == [f"train-5-{n}" for n in range(COUNT)]
    other = make_scenes("train", COUNT, seed=6)
    assert not np.array_equal(other.images, first.images) and other.captions != first.captions
    # the split is part of the seed: the test scenes are not the train layouts with other handwriting
    assert scenes["test"].captions != first.captions


def test_images_shape_dtype_and_info(scenes):
    for split, data in scenes.items():
        assert data.images.shape == (COUNT, 64, 64, 3) and data.images.dtype == np.uint8
        assert len(data) == COUNT and data.info == {"format": "scenes", "split": split, "seed": 5, "canvas": 64}
        assert data.images.max() > 200  # bright ink on black
    wide = make_scenes("test", 3, seed=1, canvas=80)
    assert wide.images.shape == (3, 80, 80, 3)
    smallest = make_scenes("test", 3, seed=1, canvas=56)  # a large digit exactly fills a quadrant
    assert smallest.images.shape == (3, 56, 56, 3)
    assert all(b.x1 <= 56 and b.y1 <= 56 for scene in smallest.boxes for b in scene)


# --- captions -----------------------------------------------------------------------------------

def test_three_references_name_the_same_digits_in_reading_order(scenes):
    for data in scenes.values():
        half = data.images.shape[1] // 2
        for refs, boxes, count in zip(data.captions, data.boxes, data.digits):
            assert len(refs) == 3
            layout = parse(refs[0])
            assert refs == captions_for(layout)
            assert len(layout) == len(boxes) == count
            places = [p for _, p, _, _ in layout]
            assert places == sorted(set(places))  # reading order, one digit per quadrant
            for (digit, place, _, _), box in zip(layout, boxes):
                assert box.word == str(digit) and quadrant(box, half) == divmod(place, 2)
            # every reference names the same digits, colours and sizes, in the same order
            for ref in refs:
                things = [ref[i + 1:i + 4] for i, w in enumerate(ref) if w == "a"]
                assert things == [[s, c, str(d)] for d, _, s, c in layout]
            # the relative form says "below it" / "to the right of it" exactly when the boxes lie so
            relative = " ".join(refs[2]).split(" and ")
            for k in range(1, len(boxes)):
                (r0, c0), (r1, c1) = quadrant(boxes[k - 1], half), quadrant(boxes[k], half)
                below, right = (c1 == c0 and r1 == r0 + 1), (r1 == r0 and c1 == c0 + 1)
                assert relative[k].endswith(" below it") == below
                assert relative[k].endswith(" to the right of it") == right
                if not (below or right):
                    assert relative[k] == " ".join(refs[0]).split(" and ")[k]


def test_the_three_grammar_forms_of_hand_made_layouts():
    absolute, synonyms, relative = captions_for([(7, 0, "large", "red"), (3, 3, "small", "green")])
    assert " ".join(absolute) == "a large red 7 in the upper left and a small green 3 in the lower right"
    assert " ".join(synonyms) == "a large red 7 at the top left and a small green 3 at the bottom right"
    assert relative == absolute  # diagonal: neither below nor to the right of the last digit
    _, _, relative = captions_for([(7, 0, "large", "red"), (3, 2, "small", "green")])
    assert " ".join(relative) == "a large red 7 in the upper left and a small green 3 below it"
    _, _, relative = captions_for([(1, 0, "small", "blue"), (2, 1, "large", "white")])
    assert " ".join(relative) == "a small blue 1 in the upper left and a large white 2 to the right of it"
    # lower left follows upper right in reading order, but lies neither below nor right of it
    absolute, _, relative = captions_for([(1, 1, "small", "blue"), (2, 2, "large", "yellow")])
    assert relative == absolute
    absolute, synonyms, relative = captions_for([(0, 0, "small", "red"), (5, 2, "small", "red"),
                                                 (9, 3, "large", "white")])
    assert " ".join(relative) == ("a small red 0 in the upper left and a small red 5 below it "
                                  "and a large white 9 to the right of it")
    assert " ".join(synonyms).endswith("at the bottom left and a large white 9 at the bottom right")
    absolute, synonyms, relative = captions_for([(4, 3, "large", "green")])
    assert " ".join(absolute) == "a large green 4 in the lower right" and relative == absolute  # one digit
    assert " ".join(synonyms) == "a large green 4 at the bottom right"
    # every ordered pair of quadrants: relative exactly when the geometry says so
    for p in range(4):
        for q in range(p + 1, 4):
            _, _, rel = captions_for([(1, p, "small", "red"), (2, q, "small", "red")])
            (rp, cp), (rq, cq) = divmod(p, 2), divmod(q, 2)
            tail = " ".join(rel).split(" and ")[1]
            assert tail.endswith("below it") == (cq == cp and rq == rp + 1)
            assert tail.endswith("to the right of it") == (rq == rp and cq == cp + 1)
    assert set(SYNONYMS) == set(PLACES)


# --- boxes and ink --------------------------------------------------------------------------------

def test_boxes_inside_the_canvas_of_their_size_and_holding_all_ink(scenes):
    for data in scenes.values():
        S = data.images.shape[1]
        for image, refs, boxes in zip(data.images, data.captions, data.boxes):
            union = np.zeros((S, S), dtype=bool)
            for (_, _, size, _), box in zip(parse(refs[0]), boxes):
                assert 0 <= box.x0 < box.x1 <= S and 0 <= box.y0 < box.y1 <= S
                assert box.x1 - box.x0 == box.y1 - box.y0 == SIZES[size] and box.area == SIZES[size] ** 2
                assert image[box.y0:box.y1, box.x0:box.x1].any()  # the digit is there
                union[box.y0:box.y1, box.x0:box.x1] = True
            ink = image.any(axis=2)
            assert not (ink & ~union).any()  # no ink outside every box


def test_digit_counts(scenes):
    assert {len(b) for data in scenes.values() for b in data.boxes} == {1, 2, 3}
    two = make_scenes("train", 20, seed=2, digit_counts=(2,))
    assert two.digits == [2] * 20 and all(len(b) == 2 and len(parse(c[0])) == 2 for b, c in zip(two.boxes, two.captions))
    odd = make_scenes("validation", 30, seed=2, digit_counts=(1, 3))
    assert set(odd.digits) == {1, 3} and [len(b) for b in odd.boxes] == odd.digits


# --- held-out combinations ---------------------------------------------------------------------------

def test_held_out_combinations_only_in_compositional_scenes(scenes):
    assert len(HELD_OUT) == 10 and {d for d, _, _ in HELD_OUT} == set(range(10))
    assert (4, "upper left", "small") in HELD_OUT and (0, "upper left", "large") in HELD_OUT
    for split, data in scenes.items():
        for refs in data.captions:
            held = [(d, PLACES[p], s) in HELD_OUT for d, p, s, _ in parse(refs[0])]
            assert any(held) if split == "compositional" else not any(held), (split, refs[0])


# --- where the handwriting comes from --------------------------------------------------------------

@pytest.fixture(scope="module")
def mnist_parts():
    """The raw MNIST images by their bytes: {bytes: (part, label)}, train[:50000] / train[50000:] / test."""
    train = read_idx(SHIPPED_DIR / "train-images-idx3-ubyte.gz")
    train_labels = read_idx(SHIPPED_DIR / "train-labels-idx1-ubyte.gz")
    test = read_idx(SHIPPED_DIR / "t10k-images-idx3-ubyte.gz")
    test_labels = read_idx(SHIPPED_DIR / "t10k-labels-idx1-ubyte.gz")
    parts = {"train": (train[:50000], train_labels[:50000]), "validation": (train[50000:], train_labels[50000:]),
             "test": (test, test_labels)}
    found: dict[bytes, set] = {}
    for part, (images, labels) in parts.items():
        for image, label in zip(images, labels):
            found.setdefault(image.tobytes(), set()).add((part, int(label)))
    return found


def test_each_split_takes_its_handwriting_from_its_part_of_mnist(scenes, mnist_parts):
    for split, data in scenes.items():
        expected = "test" if split == "compositional" else split
        checked = 0
        for image, refs, boxes in zip(data.images, data.captions, data.boxes):
            for (digit, _, size, colour), box in zip(parse(refs[0]), boxes):
                if (size, colour) != ("large", "white"):
                    continue
                patch = image[box.y0:box.y1, box.x0:box.x1]  # white ink (1, 1, 1): the MNIST grey levels
                assert patch.shape == (28, 28, 3)
                assert (patch == patch[:, :, :1]).all()
                assert mnist_parts.get(np.ascontiguousarray(patch[:, :, 0]).tobytes()) == {(expected, digit)}
                checked += 1
        assert checked >= 2, split  # the fixture's seed gives a few large white digits per split


# --- bad arguments ------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    ({"split": "dev"}, "split='dev'"),
    ({"count": 0}, "count=0"),
    ({"count": 1_000_001}, "count=1000001"),
    ({"canvas": 55}, "canvas=55"),
    ({"canvas": 513}, "canvas=513"),
    ({"digit_counts": ()}, "digit_counts"),
    ({"digit_counts": (1, 4)}, "digit_counts"),
    ({"digit_counts": (0,)}, "digit_counts"),
])
def test_bad_arguments_are_config_errors(kwargs, match):
    arguments = {"split": "train", "count": 2, **kwargs}
    with pytest.raises(ConfigError, match=match):
        make_scenes(**arguments)


# --- the caption vocabulary -----------------------------------------------------------------------------

CAPTIONS = [[["a", "dog", "runs", "a"], ["a", "cat"]], [["the", "dog", "sits"], ["a", "<end>", "cat"]]]


def test_vocabulary_build_min_count_order_and_unk():
    vocab = Vocabulary.build(CAPTIONS)  # a 4, cat 2, dog 2, runs 1, sits 1, the 1; <end> is no word
    assert vocab.words == [*SPECIALS, "a", "cat", "dog", "runs", "sits", "the"] and len(vocab) == 10
    vocab = Vocabulary.build(CAPTIONS, min_count=2)
    assert vocab.words == [*SPECIALS, "a", "cat", "dog"]  # most frequent first, ties by spelling
    assert vocab.encode(["a", "dog", "sits", "zebra"]) == [4, 6, 3, 3]  # rare and unseen words: UNK
    assert Vocabulary.build(CAPTIONS, min_count=5).words == list(SPECIALS)
    with pytest.raises(ConfigError, match="min_count=0"):
        Vocabulary.build(CAPTIONS, min_count=0)


def test_vocabulary_decode_stops_at_end_and_skips_pad_and_start():
    vocab = Vocabulary.build(CAPTIONS, min_count=2)
    assert vocab.decode([1, 4, 0, 6, 3, 2, 5, 5]) == ["a", "dog", "<unk>"]
    assert vocab.decode(np.array([5, 99, 4])) == ["cat", "a"]  # ids past the vocabulary skipped too
    assert vocab.decode([2, 4]) == [] and vocab.decode([]) == []
    assert vocab.decode(vocab.encode(["cat", "a", "dog"])) == ["cat", "a", "dog"]


def test_vocabulary_sequences_teacher_forcing():
    vocab = Vocabulary.build(CAPTIONS, min_count=2)  # a 4, cat 5, dog 6
    inputs, targets = vocab.sequences([["a", "dog"], ["cat"], ["a", "zebra", "cat"]], max_length=10)
    assert inputs.dtype == targets.dtype == np.int64 and inputs.shape == targets.shape == (3, 4)
    np.testing.assert_array_equal(inputs, [[1, 4, 6, 0], [1, 5, 0, 0], [1, 4, 3, 5]])
    np.testing.assert_array_equal(targets, [[4, 6, 2, 0], [5, 2, 0, 0], [4, 3, 5, 2]])
    words = targets[:, :-1] > 2  # the inputs are the targets shifted by START, END and padding aside
    np.testing.assert_array_equal(inputs[:, 1:][words], targets[:, :-1][words])
    inputs, targets = vocab.sequences([["a", "dog"], ["cat"], ["a", "zebra", "cat"]], max_length=2)
    np.testing.assert_array_equal(inputs, [[1, 4, 6], [1, 5, 0], [1, 4, 3]])
    np.testing.assert_array_equal(targets, [[4, 6, 2], [5, 2, 0], [4, 3, 2]])  # cut, then END
    inputs, targets = vocab.sequences([["dog", "a", "cat"]], max_length=1)
    np.testing.assert_array_equal(inputs, [[1, 6]])
    np.testing.assert_array_equal(targets, [[6, 2]])


@pytest.mark.parametrize("words", [
    ["a", "b"],
    ["<start>", "<pad>", "<end>", "<unk>", "a"],
    [*SPECIALS[:3], "a"],
    [*SPECIALS, "a", "b", "a"],
    [*SPECIALS, "<pad>"],
    [*SPECIALS, ""],
])
def test_vocabulary_refuses_bad_word_lists(words):
    with pytest.raises(CheckpointError, match="must start with"):
        Vocabulary(words)


def test_vocabulary_from_its_words():
    vocab = Vocabulary([*SPECIALS, "x", "y"])
    assert vocab.index == {"<pad>": 0, "<start>": 1, "<end>": 2, "<unk>": 3, "x": 4, "y": 5}
    assert Vocabulary(vocab.words).words == vocab.words
