"""PyTorch state dicts (``torch.save(model.state_dict(), ...)``) read without pickle and without PyTorch.

A ``.pth`` file keeps its structure as a pickle: the zip format (torch >= 1.6) in ``data.pkl`` beside
one raw file per storage, the legacy format (torchvision's 2017 weights) as five pickles in a row
followed by the raw storages. Unpickling runs code named by the file, so this module never unpickles:
it walks the pickle's opcodes with :func:`pickletools.genops` (a parser, it executes nothing) on a
small stack machine that knows only what a state dict needs — dicts, lists, tuples, strings, numbers
and the three names ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2`` and
``torch.<Type>Storage``. Any other name is refused with that name ("holds pickled Python objects").

Each tensor comes back as a :class:`TensorRef`: its shape and dtype are known from the pickle, and its
numbers are read only by :meth:`TensorRef.read`, after its view was checked to lie inside a storage
whose declared size the file really holds — so a crafted file cannot make tiefnet allocate more than
the file's own size.
"""
from __future__ import annotations

import io
import pickletools
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable

import numpy

from tiefnet.errors import DataError

STORAGE_DTYPES = {
    "FloatStorage": numpy.float32, "DoubleStorage": numpy.float64, "HalfStorage": numpy.float16,
    "BFloat16Storage": "bfloat16", "LongStorage": numpy.int64, "IntStorage": numpy.int32,
    "ShortStorage": numpy.int16, "CharStorage": numpy.int8, "ByteStorage": numpy.uint8, "BoolStorage": numpy.bool_,
}
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
MAX_PICKLE_BYTES = 64 * 2**20  # a state dict's structure: names and shapes (VGG-19's is 3 kB)
MAX_OPS = 10_000_000


class _Global:
    """A name the pickle refers to (``GLOBAL module name``), allowed or not only when it is used."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    @property
    def full(self) -> str:
        return f"{self.module}.{self.name}"


@dataclass
class _Storage:
    """A storage declared by the pickle: its element type, its number of elements, and where its bytes are."""

    dtype: Any
    numel: int
    read_bytes: Callable[[], bytes]  # exactly numel * itemsize bytes


class _Mark:
    pass


@dataclass
class TensorRef:
    """One tensor of the state dict: shape and dtype from the pickle; :meth:`read` gives its numbers."""

    storage: _Storage
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def dtype(self) -> str:
        return self.storage.dtype if isinstance(self.storage.dtype, str) else numpy.dtype(self.storage.dtype).name

    @property
    def is_float(self) -> bool:
        return self.dtype in ("float16", "float32", "float64", "bfloat16")

    def read(self) -> numpy.ndarray:
        """The tensor's numbers as a new array (bfloat16 widened to float32)."""
        raw = self.storage.read_bytes()
        if self.storage.dtype == "bfloat16":
            values = (numpy.frombuffer(raw, "<u2").astype(numpy.uint32) << 16).view(numpy.float32)
        else:
            values = numpy.frombuffer(raw, numpy.dtype(self.storage.dtype).newbyteorder("<"))
        view = numpy.lib.stride_tricks.as_strided(
            values[self.offset:], self.shape, [s * values.itemsize for s in self.stride], writeable=False)
        return numpy.array(view, dtype=values.dtype.newbyteorder("="))


def _storage_dtype(path: Path, kind: Any):
    if not isinstance(kind, _Global) or kind.module != "torch" or kind.name not in STORAGE_DTYPES:
        shown = kind.full if isinstance(kind, _Global) else type(kind).__name__
        raise DataError(f"{path}: not a readable PyTorch state dict (unknown storage type {shown[:80]})")
    return STORAGE_DTYPES[kind.name]


def _rebuild_tensor(path: Path, args: tuple) -> TensorRef:
    """torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, hooks[, metadata]),
    the view checked against the storage."""
    if len(args) < 4 or not isinstance(args[0], _Storage):
        raise DataError(f"{path}: not a readable PyTorch state dict (a tensor without its storage)")
    storage, offset, shape, stride = args[:4]
    ints = lambda t: isinstance(t, tuple) and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in t)
    if not (isinstance(offset, int) and offset >= 0 and ints(shape) and ints(stride) and len(shape) == len(stride)):
        raise DataError(f"{path}: not a readable PyTorch state dict (a tensor of shape {str(shape)[:80]}, "
                        f"stride {str(stride)[:80]})")
    if all(shape):  # the last element the view touches must lie in the storage
        last = offset + sum((n - 1) * s for n, s in zip(shape, stride))
        if last >= storage.numel:
            raise DataError(f"{path}: a tensor of shape {shape} reaches past its storage of {storage.numel} elements")
    return TensorRef(storage, offset, tuple(shape), tuple(stride))


def _unpickle(path: Path, stream: BinaryIO, persistent_load: Callable[[tuple], _Storage]) -> Any:
    """The object a pickle of a state dict describes, built by a stack machine over its opcodes."""
    stack: list = []
    memo: dict = {}

    def pop_mark() -> list:
        for k in range(len(stack) - 1, -1, -1):
            if isinstance(stack[k], _Mark):
                items = stack[k + 1:]
                del stack[k:]
                return items
        raise ValueError("MARK missing")

    def refuse(what: _Global):
        raise DataError(f"{path}: holds pickled Python objects ({what.full[:80]}), not only tensors; "
                        f"tiefnet reads no pickle (save model.state_dict())")

    start = stream.tell()
    try:
        for count, (op, arg, _) in enumerate(pickletools.genops(stream)):
            if count > MAX_OPS or stream.tell() - start > MAX_PICKLE_BYTES:
                raise DataError(f"{path}: not a readable PyTorch state dict (its structure exceeds "
                                f"{MAX_PICKLE_BYTES // 2**20} MB)")
            name = op.name
            if name in ("PROTO", "FRAME"):
                continue
            if name == "STOP":
                if len(stack) != 1:
                    raise ValueError(f"STOP with a stack of {len(stack)}")
                return stack[0]
            if name == "MARK":
                stack.append(_Mark())
            elif name in ("BINUNICODE", "SHORT_BINUNICODE", "BINUNICODE8", "UNICODE", "BINSTRING",
                          "SHORT_BINSTRING", "STRING", "BININT", "BININT1", "BININT2", "LONG1", "LONG4",
                          "INT", "LONG", "BINFLOAT", "FLOAT", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8"):
                stack.append(arg)
            elif name == "NONE":
                stack.append(None)
            elif name in ("NEWTRUE", "NEWFALSE"):
                stack.append(name == "NEWTRUE")
            elif name == "EMPTY_DICT":
                stack.append({})
            elif name == "EMPTY_LIST":
                stack.append([])
            elif name == "EMPTY_TUPLE":
                stack.append(())
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                items = tuple(stack[-n:])
                if len(items) != n or any(isinstance(v, _Mark) for v in items):
                    raise ValueError(f"{name} on a short stack")
                del stack[-n:]
                stack.append(items)
            elif name == "TUPLE":
                stack.append(tuple(pop_mark()))
            elif name == "LIST":
                stack.append(pop_mark())
            elif name == "DICT":
                items = pop_mark()
                stack.append(dict(zip(items[::2], items[1::2])))
            elif name in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[arg] = stack[-1]
            elif name == "MEMOIZE":
                memo[len(memo)] = stack[-1]
            elif name in ("BINGET", "LONG_BINGET", "GET"):
                stack.append(memo[arg])
            elif name == "GLOBAL":
                module, _, attribute = arg.partition(" ")
                stack.append(_Global(module, attribute))
            elif name == "STACK_GLOBAL":
                attribute, module = stack.pop(), stack.pop()
                stack.append(_Global(str(module), str(attribute)))
            elif name == "BINPERSID":
                pid = stack.pop()
                if not isinstance(pid, tuple):
                    raise ValueError("a persistent id that is no tuple")
                stack.append(persistent_load(pid))
            elif name == "REDUCE":
                args, func = stack.pop(), stack.pop()
                if not isinstance(func, _Global) or not isinstance(args, tuple):
                    raise ValueError("REDUCE of no name")
                if func.full == "collections.OrderedDict" and not args:
                    stack.append({})
                elif func.full == "torch._utils._rebuild_tensor_v2":
                    stack.append(_rebuild_tensor(path, args))
                else:
                    refuse(func)
            elif name in ("NEWOBJ", "NEWOBJ_EX", "INST", "OBJ"):
                refuse(next((v for v in reversed(stack) if isinstance(v, _Global)), _Global("?", name)))
            elif name == "BUILD":
                state = stack.pop()  # an OrderedDict's attributes (a state dict's _metadata): not needed
                if not isinstance(stack[-1], dict) or not isinstance(state, (dict, tuple, type(None))):
                    raise ValueError("BUILD on no dict")
            elif name == "SETITEM":
                value, key = stack.pop(), stack.pop()
                _set(stack[-1], key, value)
            elif name == "SETITEMS":
                items = pop_mark()
                for key, value in zip(items[::2], items[1::2]):
                    _set(stack[-1], key, value)
            elif name == "APPEND":
                value = stack.pop()
                _append(stack[-1], [value])
            elif name == "APPENDS":
                items = pop_mark()
                _append(stack[-1], items)
            else:
                raise ValueError(f"unsupported pickle opcode {name}")
    except DataError:
        raise
    except (ValueError, KeyError, IndexError, TypeError, EOFError, struct.error, AttributeError) as error:
        raise DataError(f"{path}: not a readable PyTorch state dict ({str(error)[:200] or type(error).__name__})") \
            from None
    raise DataError(f"{path}: not a readable PyTorch state dict (the pickle ends without STOP)")


def _set(target: Any, key: Any, value: Any) -> None:
    if not isinstance(target, dict) or isinstance(key, (dict, list, _Global, TensorRef, _Mark)):
        raise ValueError("SETITEM on no dict")
    target[key] = value


def _append(target: Any, values: list) -> None:
    if not isinstance(target, list):
        raise ValueError("APPEND on no list")
    target.extend(values)


def _itemsize(dtype) -> int:
    return 2 if dtype == "bfloat16" else numpy.dtype(dtype).itemsize


def _read_zip(path: Path) -> Any:
    file_size = path.stat().st_size
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        pickles = [n for n in names if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise DataError(f"{path}: not a readable PyTorch state dict (no data.pkl in the zip file)")
        root = pickles[0][: -len("data.pkl")]
        order = f"{root}byteorder"
        if order in names and archive.read(order).strip() not in (b"little", b""):
            raise DataError(f"{path}: a big-endian PyTorch file; tiefnet reads little-endian ones")
        info = archive.getinfo(pickles[0])
        if info.file_size > MAX_PICKLE_BYTES:
            raise DataError(f"{path}: not a readable PyTorch state dict (data.pkl of {info.file_size:,} bytes)")

        def persistent_load(pid: tuple) -> _Storage:
            if len(pid) < 5 or pid[0] != "storage" or not isinstance(pid[2], str) or not isinstance(pid[4], int):
                raise ValueError(f"an unknown persistent id {str(pid)[:80]}")
            dtype, key, numel = _storage_dtype(path, pid[1]), pid[2], pid[4]
            entry = f"{root}data/{key}"
            if entry not in names:
                raise DataError(f"{path}: not a readable PyTorch state dict (storage {key[:40]} is missing)")
            size = numel * _itemsize(dtype)  # within the file's own size on disk: no compressed bomb either
            if numel < 0 or archive.getinfo(entry).file_size < size or size > file_size:
                raise DataError(f"{path}: storage {key[:40]} declares {numel:,} elements, the file holds fewer")
            return _Storage(dtype, numel, lambda: _zip_bytes(path, entry, size))

        with archive.open(pickles[0]) as stream:
            return _unpickle(path, _Bounded(io.BytesIO(stream.read(info.file_size)), info.file_size), persistent_load)


def _zip_bytes(path: Path, entry: str, size: int) -> bytes:
    with zipfile.ZipFile(path) as archive, archive.open(entry) as stream:
        data = stream.read(size)
    if len(data) != size:
        raise DataError(f"{path}: storage {entry} is shorter than declared")
    return data


class _Bounded:
    """A binary stream as genops reads it, no read longer than what is left of the file: a length field
    in a crafted pickle ("a string of 4 GB follows") allocates nothing."""

    def __init__(self, stream: BinaryIO, size: int) -> None:
        self._stream, self._size = stream, size

    def read(self, n: int = -1) -> bytes:
        left = max(0, self._size - self._stream.tell())
        return self._stream.read(left if n < 0 else min(n, left))

    def readline(self) -> bytes:
        return self._stream.readline(min(MAX_PICKLE_BYTES, max(0, self._size - self._stream.tell())))

    def tell(self) -> int:
        return self._stream.tell()

    def seek(self, offset: int) -> None:
        self._stream.seek(offset)


def _no_storage(pid: tuple) -> _Storage:
    raise ValueError("a storage in a header pickle")


def _read_legacy(path: Path) -> Any:
    """torch's format before 1.6: pickles of the magic number, the protocol version, sys_info, the
    state dict, the list of storage keys; then per storage its element count (int64) and its bytes."""
    size = path.stat().st_size
    with path.open("rb") as raw:
        stream = _Bounded(raw, size)
        if _unpickle(path, stream, _no_storage) != LEGACY_MAGIC:
            raise DataError(f"{path}: not a readable PyTorch state dict (neither a zip file nor torch's legacy format)")
        _unpickle(path, stream, _no_storage)  # the protocol version
        _unpickle(path, stream, _no_storage)  # sys_info
        declared: dict[str, _Storage] = {}

        def persistent_load(pid: tuple) -> _Storage:
            if len(pid) < 5 or pid[0] != "storage" or not isinstance(pid[2], str) or not isinstance(pid[4], int):
                raise ValueError(f"an unknown persistent id {str(pid)[:80]}")
            if pid[4] < 0:
                raise ValueError(f"a storage of {pid[4]} elements")
            if len(pid) > 5 and pid[5] is not None:
                raise ValueError("a storage view (torch < 1.0); save it again with a newer torch")
            if pid[2] not in declared:
                dtype = _storage_dtype(path, pid[1])
                declared[pid[2]] = _Storage(dtype, pid[4], lambda: b"")
            return declared[pid[2]]

        state = _unpickle(path, stream, persistent_load)
        keys = _unpickle(path, stream, _no_storage)
        if not isinstance(keys, list) or set(keys) != set(declared) or len(keys) != len(declared):
            raise DataError(f"{path}: not a readable PyTorch state dict (its storage list does not match)")
        at = stream.tell()
        for key in keys:
            storage = declared[key]
            stream.seek(at)
            header = stream.read(8)
            nbytes = storage.numel * _itemsize(storage.dtype)
            if len(header) != 8 or struct.unpack("<q", header)[0] != storage.numel or at + 8 + nbytes > size:
                raise DataError(f"{path}: storage {key[:40]} declares {storage.numel:,} elements, the file holds fewer")
            storage.read_bytes = _file_bytes(path, at + 8, nbytes)
            at += 8 + nbytes
    return state


def _file_bytes(path: Path, offset: int, size: int) -> Callable[[], bytes]:
    def read() -> bytes:
        with path.open("rb") as stream:
            stream.seek(offset)
            return stream.read(size)
    return read


def read_state_dict(path: Path) -> Any:
    """The object a ``torch.save`` file holds, for a state dict a dict of name -> :class:`TensorRef`;
    one DataError for anything else than plain containers, numbers, strings and tensors."""
    if zipfile.is_zipfile(path):
        try:
            return _read_zip(path)
        except (zipfile.BadZipFile, OSError) as error:
            raise DataError(f"{path}: not a readable PyTorch state dict ({str(error)[:200]})") from None
    return _read_legacy(path)


__all__ = ["TensorRef", "read_state_dict"]
