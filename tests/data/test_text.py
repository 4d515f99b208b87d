"""The shipped text corpus, the vocabulary and the held-out split (chapter 4 data)."""
import numpy as np
import pytest

from tiefnet.data.text import SHIPPED, TINY_SHAKESPEARE, Vocabulary, load_text, split
from tiefnet.errors import ConfigError, DataError


def test_tiny_shakespeare_ships_with_its_checksum():
    text = load_text()
    assert len(text) == 1_115_394 and text.startswith("First Citizen:")
    assert len(Vocabulary.of(text)) == 65


def test_a_modified_copy_fails_the_checksum_of_the_shipped_name(tmp_path, monkeypatch):
    import tiefnet.data.text as module

    fake = tmp_path / "text"
    fake.mkdir()
    (fake / TINY_SHAKESPEARE).write_text("First Citizen: changed")
    (fake / "SHA256SUMS").write_text((SHIPPED / "SHA256SUMS").read_text())
    monkeypatch.setattr(module, "SHIPPED", fake)
    with pytest.raises(DataError, match="checksum mismatch"):
        load_text()


def test_user_text_and_errors(tmp_path):
    own = tmp_path / "hallo.txt"
    own.write_text("hallo hallo")
    assert load_text(own) == "hallo hallo"
    with pytest.raises(DataError, match="file not found"):
        load_text(tmp_path / "missing.txt")
    with pytest.raises(DataError, match="a folder"):
        load_text(tmp_path)
    (tmp_path / "bin.txt").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(DataError, match="not UTF-8"):
        load_text(tmp_path / "bin.txt")


def test_vocabulary_round_trip_and_split():
    vocab = Vocabulary.of("hallo")  # the lecture's vocabulary {h, a, l, o}
    assert vocab.chars == "ahlo"
    ids = vocab.encode("hallo")
    np.testing.assert_array_equal(ids, [1, 0, 2, 2, 3])
    assert vocab.decode(ids) == "hallo"
    with pytest.raises(ConfigError, match="not in the vocabulary"):
        vocab.encode("hello")
    train, held_out = split(np.arange(100), 0.1)
    assert len(train) == 90 and held_out[0] == 90
