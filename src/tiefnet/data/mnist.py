"""MNIST from its IDX files, split the way the lecture (and Nielsen's book) splits it.

The 60,000 training images become 50,000 for training (`train`) and the last 10,000
for choosing hyper-parameters (`validation`); the 10,000 t10k images are `test`.
The four original gzipped IDX files ship with the package, so `load_mnist()` works
offline; a user's own copy (gzipped or not) is checked against the same checksums.

IDX format (big-endian): 4-byte magic (2051 images, 2049 labels), then one 4-byte
count per dimension, then the bytes of a uint8 array in C order.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tiefnet.errors import ConfigError, DataError, ShapeError

IMAGES_MAGIC = 2051  # 0x00000803: unsigned bytes, 3 dimensions (n, rows, cols)
LABELS_MAGIC = 2049  # 0x00000801: unsigned bytes, 1 dimension (n,)
GZIP_MAGIC = b"\x1f\x8b"
VALIDATION_SIZE = 10_000  # the last 10,000 training images (lecture 2.7.3, Nielsen ch. 3)
MAX_BYTES = 2**30  # an IDX file (after gunzip) larger than this is refused: 1.3 million 28x28 images
SHIPPED_DIR = Path(__file__).parent / "mnist"


@dataclass(frozen=True)
class _MnistFile:
    """One of the four MNIST files and its checksums, gzipped and uncompressed."""

    stem: str  # e.g. "train-images-idx3-ubyte"
    gz_sha256: str
    raw_sha256: str

    @property
    def names(self) -> tuple[str, ...]:
        """File names accepted in a data folder, in order of preference."""
        dotted = self.stem.replace("-idx", ".idx")  # "train-images.idx3-ubyte" (Kaggle copies)
        return (self.stem + ".gz", self.stem, dotted)


_FILES = {
    "train_images": _MnistFile(
        "train-images-idx3-ubyte",
        "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    ),
    "train_labels": _MnistFile(
        "train-labels-idx1-ubyte",
        "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    ),
    "test_images": _MnistFile(
        "t10k-images-idx3-ubyte",
        "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    ),
    "test_labels": _MnistFile(
        "t10k-labels-idx1-ubyte",
        "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ),
}


@dataclass(frozen=True, eq=False)  # eq=False: `==` on arrays has no single truth value
class Dataset:
    """Samples as rows: the matrix form of lecture 2.6.

    Shapes:
        x: (N, 784) float32, pixel intensities in [0, 1], each image flattened row by row
        y: (N,) int64, the digit 0..9 of each row of x
    """

    x: np.ndarray  # (N, 784) float32 in [0, 1]
    y: np.ndarray  # (N,) int64 labels

    def __post_init__(self) -> None:
        if self.x.ndim != 2 or self.y.ndim != 1 or len(self.x) != len(self.y):
            raise ShapeError(
                f"Dataset: x must be (N, D) and y (N,), got x {self.x.shape} and y {self.y.shape}"
            )

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, n: int) -> Dataset:
        """The first n samples (views, no copy). Raises ConfigError unless 1 <= n <= len."""
        if not 1 <= n <= len(self):
            raise ConfigError(f"subset size {n} is out of range: choose 1 to {len(self)}")
        return Dataset(self.x[:n], self.y[:n])


@dataclass(frozen=True)
class MnistSplits:
    """The lecture's three sets: 50,000 train, 10,000 validation, 10,000 test."""

    train: Dataset
    validation: Dataset
    test: Dataset


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file of MNIST images or labels, gzipped or plain.

    Gzip is recognised by its magic bytes, not by the file name.

    Shapes:
        returns (n, rows, cols) uint8 for images (magic 2051), (n,) uint8 for labels (magic 2049)

    Raises DataError for a missing file, corrupt gzip data, an unknown magic number,
    or a size that does not match the header.
    """
    path = Path(path)
    return _parse_idx(_decompress(_read_bytes(path), path.name), path.name)


def load_mnist(data_dir: str | Path | None = None, verify: bool = True) -> MnistSplits:
    """Load MNIST and split it 50,000 / 10,000 / 10,000 (train / validation / test).

    Each sample is the lecture's input x in [0, 1]^784 (2.5: 28 x 28 grey values, row by row) and
    its digit; :func:`one_hot` turns the digit into the desired output y(x) in {0, 1}^10.

    data_dir: None for the copy shipped with tiefnet, else a folder holding the four
        files, each either gzipped (`train-images-idx3-ubyte.gz`) or not
        (`train-images-idx3-ubyte` or `train-images.idx3-ubyte`).
    verify: check each file's sha256 against the published MNIST files.

    Shapes:
        train.x (50000, 784), validation.x (10000, 784), test.x (10000, 784), float32 in [0, 1];
        the y of each is (N,) int64.
    """
    if data_dir is None and verify and _shipped:  # read once per process: a search trains many networks
        return _shipped[0]
    folder = SHIPPED_DIR if data_dir is None else Path(data_dir)
    if not folder.is_dir():
        what = "a file, not a folder" if folder.exists() else "no such folder"
        raise DataError(f"{folder}: {what} (it should hold the four MNIST IDX files)")
    paths = _find_files(folder)
    arrays = {key: _load_file(paths[key], spec, verify) for key, spec in _FILES.items()}
    train_all = _to_dataset(arrays, "train_images", "train_labels", paths)
    test = _to_dataset(arrays, "test_images", "test_labels", paths)
    if len(train_all) <= VALIDATION_SIZE:
        raise DataError(
            f"{paths['train_images'].name}: only {len(train_all)} images; "
            f"need more than {VALIDATION_SIZE} to split off the validation set"
        )
    n_train = len(train_all) - VALIDATION_SIZE  # 50,000 for the real MNIST
    train = Dataset(train_all.x[:n_train], train_all.y[:n_train])
    validation = Dataset(train_all.x[n_train:], train_all.y[n_train:])
    splits = MnistSplits(train=train, validation=validation, test=test)
    if data_dir is None and verify:  # the shipped, verified copy is kept, read-only, for the next call
        for part in (train, validation, test):  # the views too: a view keeps its own write flag
            for array in (part.x, part.y):
                array.setflags(write=False)
        _shipped[:] = [splits]
    return splits


_shipped: list[MnistSplits] = []  # the shipped copy, once loaded


def one_hot(y: np.ndarray, k: int = 10) -> np.ndarray:
    """The lecture's desired output y(x) in {0, 1}^k (2.5): 1.0 at the label's position, 0.0 elsewhere,
    e.g. y(x) = (0, 0, 0, 0, 0, 0, 1, 0, 0, 0) for a 6.

    Shapes:
        y: (N,) integer labels in 0..k-1  ->  returns (N, k) float32
    """
    y = np.asarray(y)
    if k < 1:
        raise ConfigError(f"one_hot: k must be at least 1, got {k}")
    if y.ndim != 1:
        raise ShapeError(f"one_hot: labels must be a 1-D array (N,), got shape {y.shape}")
    if y.size and (y.min() < 0 or y.max() >= k):
        raise DataError(f"one_hot: labels must lie in 0..{k - 1}, found {y.min()}..{y.max()}")
    out = np.zeros((len(y), k), dtype=np.float32)  # (N, k)
    out[np.arange(len(y)), y] = 1.0
    return out


# --- helpers -------------------------------------------------------------------------


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise DataError(f"{path}: {'a folder, not a file' if path.is_dir() else 'file not found'}")
    try:
        if path.stat().st_size > MAX_BYTES:
            raise DataError(f"{path}: {path.stat().st_size:,} bytes, more than the {MAX_BYTES:,} of an IDX file "
                            f"tiefnet reads")
        return path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read file ({exc.strerror or exc})") from exc


def _decompress(raw: bytes, name: str) -> bytes:
    """Gunzip raw if it starts with the gzip magic bytes, else return it unchanged; at most MAX_BYTES
    come out (a small file that unpacks to gigabytes is refused, not unpacked)."""
    if not raw.startswith(GZIP_MAGIC):
        return raw
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            data = f.read(MAX_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:  # gzip.BadGzipFile is an OSError
        raise DataError(f"{name}: corrupt gzip data ({exc})") from exc
    if len(data) > MAX_BYTES:
        raise DataError(f"{name}: unpacks to more than {MAX_BYTES:,} bytes: not an MNIST IDX file")
    return data


def _parse_idx(data: bytes, name: str) -> np.ndarray:
    """Check an IDX header against the data's length; return the array it describes."""
    if len(data) < 8:
        raise DataError(f"{name}: truncated: {len(data)} bytes, too short for an IDX header")
    magic, n = int.from_bytes(data[0:4], "big"), int.from_bytes(data[4:8], "big")
    if magic == LABELS_MAGIC:
        header, dims, what = 8, (n,), f"{n} labels"
    elif magic == IMAGES_MAGIC:
        if len(data) < 16:
            raise DataError(f"{name}: truncated: {len(data)} bytes, too short for an image header")
        rows, cols = int.from_bytes(data[8:12], "big"), int.from_bytes(data[12:16], "big")
        header, dims, what = 16, (n, rows, cols), f"{n} images of {rows}x{cols}"
    else:
        raise DataError(
            f"{name}: not an MNIST IDX file: magic number {magic}, "
            f"expected {IMAGES_MAGIC} (images) or {LABELS_MAGIC} (labels)"
        )
    expected = header + int(np.prod(dims))
    if len(data) != expected:
        problem = "truncated" if len(data) < expected else "too long"
        raise DataError(
            f"{name}: {problem}: header says {what} ({expected} bytes), file has {len(data)}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims).copy()


def _find_files(folder: Path) -> dict[str, Path]:
    """Map each of the four files to its path in folder; DataError naming what is missing."""
    found, missing = {}, []
    for key, spec in _FILES.items():
        hits = [folder / name for name in spec.names if (folder / name).is_file()]
        if hits:
            found[key] = hits[0]
        else:
            missing.append(" or ".join(spec.names))
    if missing:
        raise DataError(f"{folder}: missing MNIST files: looked for {'; '.join(missing)}")
    return found


def _load_file(path: Path, spec: _MnistFile, verify: bool) -> np.ndarray:
    """Read one file, check its checksum (if verify), and parse it."""
    raw = _read_bytes(path)
    data = _decompress(raw, path.name)
    if verify:
        _check_sha256(path.name, raw, data, spec)
    return _parse_idx(data, path.name)


def _check_sha256(name: str, raw: bytes, data: bytes, spec: _MnistFile) -> None:
    """A gzipped file passes if its own hash or (if recompressed) its content's hash matches."""
    is_gzip = raw.startswith(GZIP_MAGIC)
    raw_hash = hashlib.sha256(raw).hexdigest()
    if raw_hash == (spec.gz_sha256 if is_gzip else spec.raw_sha256):
        return
    if is_gzip and hashlib.sha256(data).hexdigest() == spec.raw_sha256:
        return
    expected = spec.gz_sha256 if is_gzip else spec.raw_sha256
    raise DataError(
        f"{name}: checksum mismatch (sha256 {raw_hash[:12]}…, expected {expected[:12]}…); "
        "pass --no-verify to use a modified copy"
    )


def _to_dataset(arrays: dict, images_key: str, labels_key: str, paths: dict) -> Dataset:
    """Check that images and labels fit together; scale pixels to [0, 1] and flatten."""
    images, labels = arrays[images_key], arrays[labels_key]  # (n, 28, 28), (n,)
    images_name, labels_name = paths[images_key].name, paths[labels_key].name
    if images.ndim != 3:
        raise DataError(f"{images_name}: holds labels, expected images (IDX magic {IMAGES_MAGIC})")
    if labels.ndim != 1:
        raise DataError(f"{labels_name}: holds images, expected labels (IDX magic {LABELS_MAGIC})")
    if images.shape[1:] != (28, 28):
        rows, cols = images.shape[1:]
        raise DataError(f"{images_name}: images are {rows}x{cols}, MNIST images are 28x28")
    if len(images) != len(labels):
        raise DataError(
            f"{images_name}: {len(images)} images, but {labels_name} has {len(labels)} labels"
        )
    if labels.size and labels.max() > 9:
        raise DataError(f"{labels_name}: label {labels.max()} found, digits are 0..9")
    x = images.reshape(len(images), 28 * 28).astype(np.float32)  # (n, 784)
    x /= 255.0
    return Dataset(x, labels.astype(np.int64))
