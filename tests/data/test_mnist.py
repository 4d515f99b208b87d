"""MNIST IDX reading, the lecture's 50,000 / 10,000 / 10,000 split, and every bad-data error."""

import gzip
import os

import numpy as np
import pytest

from tiefnet.data import Dataset, MnistSplits, load_mnist, one_hot, read_idx
from tiefnet.data.mnist import _FILES, SHIPPED_DIR
from tiefnet.errors import ConfigError, DataError, ShapeError

TRAIN_HISTOGRAM = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_HISTOGRAM = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
STEMS = [spec.stem for spec in _FILES.values()]


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file's bytes for a uint8 array of 1 (labels) or 3 (images) dimensions."""
    magic = {1: 2049, 3: 2051}[array.ndim]
    header = magic.to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + array.astype(np.uint8).tobytes()


def assert_one_line(excinfo, *parts):
    message = str(excinfo.value)
    assert "\n" not in message
    for part in parts:
        assert part in message, f"{part!r} not in {message!r}"


@pytest.fixture(scope="module")
def splits() -> MnistSplits:
    return load_mnist()


@pytest.fixture(scope="module")
def plain_dir(tmp_path_factory):
    """The four shipped files, uncompressed; train images under the Kaggle-style name."""
    folder = tmp_path_factory.mktemp("mnist_plain")
    for stem in STEMS:
        name = stem.replace("-idx", ".idx") if stem.startswith("train-images") else stem
        (folder / name).write_bytes(gzip.decompress((SHIPPED_DIR / f"{stem}.gz").read_bytes()))
    return folder


def linked_dir(tmp_path, source, skip=()):
    """A folder of symlinks to the files of `source`, except those named in skip."""
    for path in source.iterdir():
        if path.name not in skip:
            os.symlink(path, tmp_path / path.name)
    return tmp_path


# --- the shipped data ----------------------------------------------------------------


def test_shipped_split_sizes_shapes_and_range(splits):
    for data, n in [(splits.train, 50_000), (splits.validation, 10_000), (splits.test, 10_000)]:
        assert len(data) == n
        assert data.x.shape == (n, 784) and data.x.dtype == np.float32
        assert data.y.shape == (n,) and data.y.dtype == np.int64
        assert data.x.min() == 0.0 and data.x.max() == 1.0


def test_shipped_label_histograms(splits):
    train_file = np.concatenate([splits.train.y, splits.validation.y])
    assert np.bincount(train_file).tolist() == TRAIN_HISTOGRAM
    assert np.bincount(splits.test.y).tolist() == TEST_HISTOGRAM


def test_split_is_first_50000_then_last_10000(splits):
    images = read_idx(SHIPPED_DIR / "train-images-idx3-ubyte.gz")  # (60000, 28, 28)
    assert images.shape == (60_000, 28, 28) and images.dtype == np.uint8
    x = images.reshape(60_000, 784) / np.float32(255)
    np.testing.assert_array_equal(splits.train.x[[0, 49_999]], x[[0, 49_999]])
    np.testing.assert_array_equal(splits.validation.x[[0, -1]], x[[50_000, -1]])


def test_checksum_table_matches_shipped_SHA256SUMS():
    lines = (SHIPPED_DIR / "SHA256SUMS").read_text().split("\n")
    listed = dict(reversed(line.split()) for line in lines if line.strip())
    assert listed == {f"{spec.stem}.gz": spec.gz_sha256 for spec in _FILES.values()}


# --- read_idx --------------------------------------------------------------------------


@pytest.mark.parametrize("gzipped", [False, True])
@pytest.mark.parametrize("shape", [(3, 4, 5), (7,), (0,)])
def test_read_idx_round_trip(tmp_path, gzipped, shape):
    array = np.random.default_rng(0).integers(0, 256, size=shape, dtype=np.uint8)
    data = idx_bytes(array)
    path = tmp_path / "file.idx"
    path.write_bytes(gzip.compress(data) if gzipped else data)
    result = read_idx(path)
    assert result.dtype == np.uint8
    np.testing.assert_array_equal(result, array)


def test_read_idx_detects_gzip_by_content_not_name(tmp_path):
    array = np.arange(12, dtype=np.uint8).reshape(1, 3, 4)
    (tmp_path / "plain.gz").write_bytes(idx_bytes(array))
    (tmp_path / "packed.idx").write_bytes(gzip.compress(idx_bytes(array)))
    np.testing.assert_array_equal(read_idx(tmp_path / "plain.gz"), array)
    np.testing.assert_array_equal(read_idx(str(tmp_path / "packed.idx")), array)


@pytest.mark.parametrize(
    "cut, problem", [(-1, "truncated"), (None, "too long")], ids=["short", "long"]
)
def test_read_idx_size_must_match_header(tmp_path, cut, problem):
    data = idx_bytes(np.zeros((3, 4, 5), dtype=np.uint8))  # 16 + 60 bytes
    data = data[:cut] if cut else data + b"\0\0"
    path = tmp_path / "images.idx"
    path.write_bytes(gzip.compress(data))
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    expected_size = "75" if cut else "78"
    assert_one_line(
        excinfo, "images.idx", problem, "header says 3 images of 4x5 (76 bytes)", expected_size
    )


@pytest.mark.parametrize("data", [b"", b"\0\0\x08", b"\0\0\x08\x03\0\0\0\1\0\0"])
def test_read_idx_short_header_is_truncated(tmp_path, data):
    (tmp_path / "tiny").write_bytes(data)
    with pytest.raises(DataError) as excinfo:
        read_idx(tmp_path / "tiny")
    assert_one_line(excinfo, "tiny", "truncated")


def test_read_idx_wrong_magic(tmp_path):
    data = bytearray(idx_bytes(np.zeros(4, dtype=np.uint8)))
    data[3] = 0x02  # 2050: a 2-D array, not MNIST images or labels
    (tmp_path / "odd.idx").write_bytes(bytes(data))
    with pytest.raises(DataError) as excinfo:
        read_idx(tmp_path / "odd.idx")
    assert_one_line(excinfo, "odd.idx", "magic number 2050", "2051", "2049")


def _truncated_gzip(packed: bytes) -> bytes:
    return packed[: len(packed) // 2]


def _flipped_gzip(packed: bytes) -> bytes:
    corrupt = bytearray(packed)
    for i in range(12, len(corrupt) - 8, 7):
        corrupt[i] ^= 0xFF
    return bytes(corrupt)


def _bad_crc_gzip(packed: bytes) -> bytes:
    return packed[:-8] + bytes([packed[-8] ^ 0xFF]) + packed[-7:]


@pytest.mark.parametrize("damage", [_truncated_gzip, _flipped_gzip, _bad_crc_gzip])
def test_read_idx_corrupt_gzip(tmp_path, damage):
    data = idx_bytes(np.random.default_rng(1).integers(0, 256, (20, 28, 28), dtype=np.uint8))
    path = tmp_path / "broken.gz"
    path.write_bytes(damage(gzip.compress(data)))
    with pytest.raises(DataError) as excinfo:
        read_idx(path)
    assert_one_line(excinfo, "broken.gz", "corrupt gzip")


def test_read_idx_missing_file(tmp_path):
    with pytest.raises(DataError) as excinfo:
        read_idx(tmp_path / "nothing-here.gz")
    assert_one_line(excinfo, "nothing-here.gz", "not found")


# --- load_mnist from a user's folder ---------------------------------------------------


def test_user_folder_with_uncompressed_files_loads(plain_dir, splits):
    user = load_mnist(plain_dir)
    for mine, shipped in [(user.train, splits.train), (user.test, splits.test)]:
        np.testing.assert_array_equal(mine.x, shipped.x)
        np.testing.assert_array_equal(mine.y, shipped.y)


def test_user_folder_checksum_mismatch(tmp_path, plain_dir):
    folder = linked_dir(tmp_path, plain_dir, skip={"t10k-images-idx3-ubyte"})
    data = bytearray((plain_dir / "t10k-images-idx3-ubyte").read_bytes())
    data[16 + 5 * 28 + 5] ^= 0xFF  # one pixel of the first test image
    (folder / "t10k-images-idx3-ubyte").write_bytes(bytes(data))
    with pytest.raises(DataError) as excinfo:
        load_mnist(folder)
    assert_one_line(
        excinfo,
        "t10k-images-idx3-ubyte",
        "checksum mismatch",
        "expected 0fa7898d5092",
        "--no-verify",
    )
    modified = load_mnist(folder, verify=False)
    assert modified.test.x[0, 5 * 28 + 5] != load_mnist(plain_dir).test.x[0, 5 * 28 + 5]


def test_user_folder_gzip_checksums(tmp_path, plain_dir):
    folder = linked_dir(tmp_path, plain_dir, skip={"t10k-labels-idx1-ubyte"})
    labels = (plain_dir / "t10k-labels-idx1-ubyte").read_bytes()
    # Recompressed, same content: the gzip bytes differ but the data is MNIST's.
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(labels, compresslevel=1))
    assert np.bincount(load_mnist(folder).test.y).tolist() == TEST_HISTOGRAM
    changed = labels[:8] + bytes([(labels[8] + 1) % 10]) + labels[9:]
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(changed))
    with pytest.raises(DataError) as excinfo:
        load_mnist(folder)
    assert_one_line(
        excinfo, "t10k-labels-idx1-ubyte.gz", "checksum mismatch", "expected f7ae60f92e00"
    )


def test_user_folder_missing_files_lists_names(tmp_path, plain_dir):
    folder = linked_dir(tmp_path, plain_dir, skip={"t10k-labels-idx1-ubyte"})
    with pytest.raises(DataError) as excinfo:
        load_mnist(folder)
    assert_one_line(
        excinfo,
        str(folder),
        "t10k-labels-idx1-ubyte.gz or t10k-labels-idx1-ubyte or t10k-labels.idx1-ubyte",
    )
    assert "train-images" not in str(excinfo.value)


def test_empty_or_absent_folder(tmp_path):
    with pytest.raises(DataError) as excinfo:
        load_mnist(tmp_path)
    assert_one_line(excinfo, "missing MNIST files", *STEMS)
    with pytest.raises(DataError) as excinfo:
        load_mnist(tmp_path / "absent")
    assert_one_line(excinfo, "absent", "no such folder")


def test_image_and_label_counts_must_agree(tmp_path, plain_dir):
    folder = linked_dir(tmp_path, plain_dir, skip={"t10k-labels-idx1-ubyte"})
    (folder / "t10k-labels-idx1-ubyte").write_bytes(idx_bytes(np.zeros(9_999, dtype=np.uint8)))
    with pytest.raises(DataError) as excinfo:
        load_mnist(folder, verify=False)
    assert_one_line(excinfo, "t10k-images-idx3-ubyte: 10000 images", "9999 labels")


def test_swapped_images_and_labels(tmp_path, plain_dir):
    folder = linked_dir(tmp_path, plain_dir, skip={"t10k-labels-idx1-ubyte"})
    os.symlink(plain_dir / "t10k-images-idx3-ubyte", folder / "t10k-labels-idx1-ubyte")
    with pytest.raises(DataError) as excinfo:
        load_mnist(folder, verify=False)
    assert_one_line(excinfo, "t10k-labels-idx1-ubyte", "expected labels")


# --- Dataset and one_hot ---------------------------------------------------------------


def test_subset_is_the_first_n(splits):
    small = splits.train.subset(100)
    assert len(small) == 100 and small.x.shape == (100, 784)
    np.testing.assert_array_equal(small.y, splits.train.y[:100])
    assert len(splits.train.subset(len(splits.train))) == 50_000
    for n in (0, -3, 50_001):
        with pytest.raises(ConfigError, match="subset size"):
            splits.train.subset(n)


def test_dataset_rejects_mismatched_arrays():
    with pytest.raises(ShapeError):
        Dataset(np.zeros((3, 784), np.float32), np.zeros(4, np.int64))


def test_one_hot():
    y = np.array([3, 0, 9, 3])
    encoded = one_hot(y)
    assert encoded.shape == (4, 10) and encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded.argmax(axis=1), y)
    np.testing.assert_array_equal(encoded.sum(axis=1), np.ones(4))
    assert one_hot(np.array([1]), k=2).tolist() == [[0.0, 1.0]]
    with pytest.raises(DataError, match="0..9"):
        one_hot(np.array([10]))
    with pytest.raises(ShapeError):
        one_hot(np.zeros((2, 2), dtype=int))
