"""tiefnet.vision.pth: PyTorch state dicts read from the pickle's opcodes, never unpickled. Files made by
hand here (no torch needed) and by torch.save where torch is installed."""
from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from tiefnet.errors import DataError
from tiefnet.vision.pth import read_state_dict


def _int(n: int) -> bytes:  # LONG1: any integer
    raw = n.to_bytes((n.bit_length() + 8) // 8 or 1, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def _str(text: str) -> bytes:  # BINUNICODE
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _tuple(items: list[bytes]) -> bytes:
    return b"(" + b"".join(items) + b"t"


def state_pickle(tensors: dict) -> bytes:
    """The data.pkl of {name: (storage key, numel, offset, shape, stride)}, written opcode by opcode as torch
    writes it."""
    out = [b"\x80\x02}("]
    for name, (key, numel, offset, shape, stride) in tensors.items():
        storage = _tuple([_str("storage"), b"ctorch\nFloatStorage\n", _str(key), _str("cpu"), _int(numel)]) + b"Q"
        args = _tuple([storage, _int(offset), _tuple([_int(n) for n in shape]), _tuple([_int(s) for s in stride]),
                       b"\x89", b"}"])
        out.append(_str(name) + b"ctorch._utils\n_rebuild_tensor_v2\n" + args + b"R")
    out.append(b"u.")
    return b"".join(out)


def write_zip(path, data_pkl: bytes, storages: dict[str, bytes]):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", data_pkl)
        archive.writestr("archive/byteorder", b"little")
        for key, raw in storages.items():
            archive.writestr(f"archive/data/{key}", raw)
    return path


def test_a_hand_made_file_and_strided_views(tmp_path):
    storage = np.arange(8, dtype=np.float32)
    path = write_zip(tmp_path / "w.pth", state_pickle({"a": ("0", 8, 0, (2, 4), (4, 1)),
                                                         "view": ("0", 8, 2, (2, 3), (1, 2))}), {"0": storage.tobytes()})
    state = read_state_dict(path)
    np.testing.assert_array_equal(state["a"].read(), storage.reshape(2, 4))
    expected = np.array([[storage[2 + i + 2 * j] for j in range(3)] for i in range(2)], np.float32)
    np.testing.assert_array_equal(state["view"].read(), expected)
    assert state["view"].shape == (2, 3) and state["view"].dtype == "float32" and state["view"].is_float


def test_sizes_the_file_does_not_hold_are_refused_before_reading(tmp_path):
    path = write_zip(tmp_path / "big.pth", state_pickle({"w": ("0", 10**12, 0, (10**6, 10**6), (10**6, 1))}),
                     {"0": b"\0" * 32})
    with pytest.raises(DataError, match="declares 1,000,000,000,000 elements, the file holds fewer"):
        read_state_dict(path)
    bomb = tmp_path / "bomb.pth"  # 40 MB of zeros, compressed to a few kB: declared, but not in the file
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("archive/data.pkl", state_pickle({"w": ("0", 10**7, 0, (10**7,), (1,))}))
        archive.writestr("archive/data/0", b"\0" * 4 * 10**7)
    assert bomb.stat().st_size < 10**6
    with pytest.raises(DataError, match="declares 10,000,000 elements, the file holds fewer"):
        read_state_dict(bomb)
    path = write_zip(tmp_path / "past.pth", state_pickle({"w": ("0", 8, 4, (2, 4), (4, 1))}), {"0": b"\0" * 32})
    with pytest.raises(DataError, match="reaches past its storage of 8 elements"):
        read_state_dict(path)
    path = write_zip(tmp_path / "gone.pth", state_pickle({"w": ("7", 8, 0, (8,), (1,))}), {"0": b"\0" * 32})
    with pytest.raises(DataError, match="storage 7 is missing"):
        read_state_dict(path)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_code_in_the_pickle_is_never_run(tmp_path):
    marker = tmp_path / "ran"
    data = pickle.dumps({"features.0.weight": _Payload(marker)}, protocol=2)
    legacy = io.BytesIO()
    for part in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}):  # the legacy format's headers
        pickle.dump(part, legacy, protocol=2)
    (tmp_path / "evil_legacy.pth").write_bytes(legacy.getvalue() + data)
    for path in (write_zip(tmp_path / "evil.pth", data, {}), tmp_path / "evil_legacy.pth"):
        with pytest.raises(DataError, match=r"holds pickled Python objects \((posix|os)\.system\)"):
            read_state_dict(path)
    assert not marker.exists()


def test_length_fields_that_the_file_cannot_fill_allocate_nothing(tmp_path):
    legacy = io.BytesIO()
    for part in (0x1950A86A20F9469CFC6C, 1001, {}):
        pickle.dump(part, legacy, protocol=2)
    path = tmp_path / "long.pth"  # the state dict pickle announces a string of 2^63 bytes and ends
    path.write_bytes(legacy.getvalue() + b"\x80\x04\x8d" + struct.pack("<Q", 2**63) + b"abc")
    with pytest.raises(DataError, match="not a readable PyTorch state dict"):
        read_state_dict(path)


def test_garbage_is_one_clear_error(tmp_path):
    for content in (b"\x80\x04 not a weights file" * 10, b"", b"PK\x03\x04", pickle.dumps([1, 2], protocol=2)):
        path = tmp_path / "g.pth"
        path.write_bytes(content)
        with pytest.raises(DataError, match="not a readable PyTorch state dict"):
            read_state_dict(path)


@pytest.mark.parametrize("zip_format", [True, False])
def test_the_same_numbers_as_torch(zip_format, tmp_path):
    torch = pytest.importorskip("torch")
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(6, 5, generator=generator, dtype=torch.float64)
    state = {"f64": base, "f32": base.float(), "f16": base.half(), "bf16": base.bfloat16(),
             "transposed": base.float().t(), "slice": base.float()[1:4, ::2], "long": torch.arange(7),
             "scalar": torch.tensor(3.5), "empty": torch.zeros(0, 3)}
    torch.save(state, tmp_path / "t.pth", _use_new_zipfile_serialization=zip_format)
    read = read_state_dict(tmp_path / "t.pth")
    for name, tensor in state.items():
        expected = tensor.float().numpy() if name == "bf16" else tensor.numpy()
        assert read[name].shape == tuple(tensor.shape), name
        np.testing.assert_array_equal(read[name].read(), expected, err_msg=name)
    assert [read[n].dtype for n in ("f64", "f16", "bf16", "long")] == ["float64", "float16", "bfloat16", "int64"]
    assert not read["long"].is_float


def test_a_truncated_legacy_file_is_refused(tmp_path):
    torch = pytest.importorskip("torch")
    torch.save({"w": torch.zeros(1000)}, tmp_path / "old.pth", _use_new_zipfile_serialization=False)
    data = (tmp_path / "old.pth").read_bytes()
    (tmp_path / "cut.pth").write_bytes(data[:-100])
    with pytest.raises(DataError, match="declares 1,000 elements, the file holds fewer"):
        read_state_dict(tmp_path / "cut.pth")
