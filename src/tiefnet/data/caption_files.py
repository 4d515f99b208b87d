"""Image-captioning datasets in the two formats they are shared in, read into a :class:`CaptionSet`.

Flickr8k: a folder with ``Images/*.jpg`` and ``captions.txt``, a CSV file with the header
``image,caption`` and one line per caption (the Kaggle edition, five captions per image), or, where
``captions.txt`` is absent, the original ``Flickr8k.token.txt``, one ``name.jpg#0<TAB>caption`` a line.

COCO captions: a JSON file ``{"images": [{"id": 1, "file_name": "x.jpg"}, ...], "annotations":
[{"image_id": 1, "caption": "..."}, ...]}`` (captions_train2017.json and the like); the images lie in a
folder of their own, by default the JSON file's.

Both come from someone else: every problem is a :class:`DataError` of one line that names the file
(and the line or entry). An image name must be a plain file name, and the file it names (symbolic
links followed) must lie inside the images folder. Only the images kept (``limit``) are opened.
"""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Hashable, Iterable, Iterator

import numpy
from PIL import Image, ImageOps

from tiefnet.data.captions import CaptionSet, tokenize
from tiefnet.data.image import _grey_levels, opened_image
from tiefnet.errors import ConfigError, DataError
from tiefnet.files import parse_json, read_text
from tiefnet.limits import check_allocation

MAX_CAPTIONS = 2_000_000  # captions in one file (Flickr8k: 40,455; COCO train2017: 591,753)
MAX_CAPTION_BYTES = 2**28  # 256 MiB (captions_train2017.json: 92 MB)
MAX_SIZE = 1024  # the largest image side asked for
FLICKR_CSV, FLICKR_TOKENS, FLICKR_IMAGES = "captions.txt", "Flickr8k.token.txt", "Images"
_FLICKR_FORM = f"a Flickr8k folder holds {FLICKR_IMAGES}/ and {FLICKR_CSV}"


def load_flickr8k(folder: str | Path, size: int = 64, limit: int | None = None) -> CaptionSet:
    """The Flickr8k folder's images (squashed to ``size`` x ``size``) with their captions, images in
    the order the captions file first names them; only the first ``limit`` images if given.

    Shapes:
        returns a CaptionSet with images (N, size, size, 3) uint8, N <= limit
    """
    _check_settings(size, limit)
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"{folder}: {'not a folder' if folder.exists() else 'folder not found'} ({_FLICKR_FORM})")
    images = folder / FLICKR_IMAGES
    if not images.is_dir():
        raise DataError(f"{folder}: no {FLICKR_IMAGES}/ folder ({_FLICKR_FORM})")
    csv_path, token_path = folder / FLICKR_CSV, folder / FLICKR_TOKENS
    if _present(csv_path):
        path, rows = csv_path, _csv_rows(csv_path)
    elif _present(token_path):
        path, rows = token_path, _token_rows(token_path)
    else:
        raise DataError(f"{folder}: no {FLICKR_CSV} (nor {FLICKR_TOKENS}) ({_FLICKR_FORM})")
    groups = _group(((_plain_name(name, f"{path} line {n}"), f"{path} line {n}", caption)
                     for n, name, caption in rows), path)
    entries = [(name, where, captions) for name, (where, captions) in groups.items()]
    return _caption_set(entries, images, size, limit, {"format": "flickr8k", "source": str(folder), "size": size})


def load_coco(json_path: str | Path, images: str | Path | None = None, size: int = 64,
              limit: int | None = None) -> CaptionSet:
    """The images of a COCO captions file that have a caption (squashed to ``size`` x ``size``), in
    the order of its ``images`` list, read from the folder ``images`` (default: the JSON file's);
    only the first ``limit`` of them if given.

    Shapes:
        returns a CaptionSet with images (N, size, size, 3) uint8, N <= limit
    """
    _check_settings(size, limit)
    json_path = Path(json_path)
    data = parse_json(_read_text(json_path), str(json_path), DataError)
    folder = json_path.parent if images is None else Path(images)
    if not folder.is_dir():
        what = "not a folder" if folder.exists() else "folder not found"
        raise DataError(f"{folder}: {what} (the images of {json_path})")
    if not isinstance(data, dict) or not isinstance(data.get("images"), list) \
            or not isinstance(data.get("annotations"), list):
        raise DataError(f"{json_path}: not a COCO captions file (expected an object with the lists "
                        f"'images' and 'annotations')")
    files: dict[int, tuple[str, str]] = {}  # image id -> (file name, where)
    for i, image in enumerate(data["images"]):
        where = f"{json_path} images[{i}]"
        if not isinstance(image, dict) or not _is_id(image.get("id")) or not isinstance(image.get("file_name"), str):
            raise DataError(f"{where}: expected an object with an integer 'id' and a string 'file_name'")
        if image["id"] in files:
            raise DataError(f"{where}: image id {image['id']} appears twice")
        files[image["id"]] = (_plain_name(image["file_name"], where), where)
    groups = _group(_annotation_rows(data["annotations"], files, json_path), json_path)
    entries = [(name, where, groups[key][1]) for key, (name, where) in files.items() if key in groups]
    return _caption_set(entries, folder, size, limit, {"format": "coco", "source": str(json_path), "size": size})


def load_caption_files(source: str | Path, images: str | Path | None = None, size: int = 64,
                       limit: int | None = None) -> CaptionSet:
    """A Flickr8k folder (one with captions.txt or Flickr8k.token.txt) or a COCO captions .json file
    (``images``: its images' folder, default the JSON file's); see :func:`load_flickr8k`, :func:`load_coco`.

    Shapes:
        returns a CaptionSet with images (N, size, size, 3) uint8
    """
    source = Path(source)
    if source.is_dir() and (_present(source / FLICKR_CSV) or _present(source / FLICKR_TOKENS)):
        if images is not None:
            raise ConfigError(f"{source}: a Flickr8k folder keeps its images in {FLICKR_IMAGES}/ "
                              f"(images= is for a COCO captions file)")
        return load_flickr8k(source, size, limit)
    if source.suffix.lower() == ".json" and not source.is_dir():
        return load_coco(source, images, size, limit)
    what = "not found" if not source.exists() else f"a folder without {FLICKR_CSV}" if source.is_dir() \
        else "not a .json file"
    raise DataError(f"{source}: {what}; expected a Flickr8k folder ({FLICKR_IMAGES}/ and {FLICKR_CSV}) "
                    f"or a COCO captions .json file")


def read_image(path: str | Path, size: int) -> numpy.ndarray:
    """A photo as RGB, upright (its EXIF orientation applied), transparency over white, squashed to
    ``size`` x ``size`` (bilinear). Larger than MAX_PIXELS: refused before it is decoded.

    Shapes:
        returns (size, size, 3) uint8
    """
    _check_settings(size, None)
    path = Path(path)
    with opened_image(path) as img:  # every problem of the file one DataError
        img.draft("RGB", (size, size))  # a JPEG decodes at 1/2, 1/4 or 1/8 scale if still >= size
        upright = ImageOps.exif_transpose(img)  # a loaded copy
        if upright.mode.startswith("I") or upright.mode == "F":  # 16-bit, 32-bit or float grey levels
            upright = Image.fromarray(numpy.round(_grey_levels(upright, path) * 255).astype(numpy.uint8))
        if upright.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in upright.info:
            rgba = upright.convert("RGBA")
            upright = Image.alpha_composite(Image.new("RGBA", rgba.size, "white"), rgba)
        rgb = upright.convert("RGB").resize((size, size), Image.BILINEAR, reducing_gap=3.0)
        return numpy.asarray(rgb, dtype=numpy.uint8)


def _check_settings(size: int, limit: int | None) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_SIZE:
        raise ConfigError(f"size={size!r} must be an integer from 1 to {MAX_SIZE}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit={limit!r} must be a positive integer (or None: all images)")


def _present(path: Path) -> bool:
    return path.exists() or path.is_symlink()  # a broken link too: reading it gives the error


def _is_id(value: object) -> bool:  # an integer, not True/False
    return isinstance(value, int) and not isinstance(value, bool)


def _short(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")


def _read_text(path: Path) -> str:
    """:func:`tiefnet.files.read_text` (regular files only, size bounded, UTF-8) with DataErrors."""
    try:
        return read_text(path, MAX_CAPTION_BYTES).removeprefix("\ufeff")  # a byte-order mark is no caption
    except ConfigError as error:
        raise DataError(str(error)) from None
    except OSError as error:
        what = "file not found" if isinstance(error, FileNotFoundError) else f"cannot read it ({error.strerror})"
        raise DataError(f"{path}: {what}") from None


def _csv_rows(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line number, image name, caption) of the Kaggle ``captions.txt``; a caption may be quoted,
    and an unquoted one may hold commas (the line is split at its first comma)."""
    reader = csv.reader(io.StringIO(_read_text(path), newline=""))
    try:
        header = next(reader, None)
        if header is None or [field.strip().lower() for field in header] != ["image", "caption"]:
            found = "nothing" if header is None else _short(",".join(header))
            raise DataError(f"{path} line 1: expected the header 'image,caption', found {found}")
        for fields in reader:
            if not fields:  # a blank line
                continue
            if len(fields) < 2:
                raise DataError(f"{path} line {reader.line_num}: expected 'image,caption', found {_short(fields[0])}")
            yield reader.line_num, fields[0].strip(), ",".join(fields[1:])
    except csv.Error as error:  # a caption over the csv module's field limit (128 KiB); before 3.11 a NUL
        raise DataError(f"{path} line {reader.line_num}: {error}") from None


def _token_rows(path: Path) -> Iterator[tuple[int, str, str]]:
    """(line number, image name, caption) of the original ``Flickr8k.token.txt``: name.jpg#0<TAB>caption."""
    for number, line in enumerate(_read_text(path).split("\n"), 1):
        if not line.strip():
            continue
        head, tab, caption = line.rstrip("\r").partition("\t")
        if not tab:
            raise DataError(f"{path} line {number}: expected 'name.jpg#0<TAB>caption', found {_short(line)}")
        yield number, head.strip().rpartition("#")[0] or head.strip(), caption


def _annotation_rows(annotations: list, files: dict, json_path: Path) -> Iterator[tuple[int, str, str]]:
    """(image id, where, caption) of each COCO annotation, its image id one of ``files``."""
    for j, note in enumerate(annotations):
        where = f"{json_path} annotations[{j}]"
        if not isinstance(note, dict) or not _is_id(note.get("image_id")) or not isinstance(note.get("caption"), str):
            raise DataError(f"{where}: expected an object with an integer 'image_id' and a string 'caption'")
        if note["image_id"] not in files:
            raise DataError(f"{where}: image_id {note['image_id']} is not in the file's 'images' list")
        yield note["image_id"], where, note["caption"]


def _group(rows: Iterable[tuple[Hashable, str, str]], source: Path) -> dict[Hashable, tuple[str, list[list[str]]]]:
    """Tokenised captions per image key, keys in the order of first appearance, each with where it
    first appears: {key: (where, [tokens, ...])}."""
    groups: dict[Hashable, tuple[str, list[list[str]]]] = {}
    for count, (key, where, caption) in enumerate(rows, 1):
        if count > MAX_CAPTIONS:
            raise DataError(f"{source}: more than the {MAX_CAPTIONS:,} captions tiefnet reads from one file")
        words = tokenize(caption)
        if not words:
            raise DataError(f"{where}: the caption is empty (no words in {_short(caption)})")
        groups.setdefault(key, (where, []))[1].append(words)
    if not groups:
        raise DataError(f"{source}: holds no captions")
    return groups


def _plain_name(name: str, where: str) -> str:
    """``name`` if it is a plain file name: no folder in it, not '..', not absolute."""
    if not name or name in (".", "..") or "/" in name or "\\" in name or "\0" in name:
        raise DataError(f"{where}: image name {_short(name)} is not a plain file name (no folders, no '..')")
    return name


def _image_file(folder: Path, name: str, where: str) -> Path:
    """The file ``folder/name`` resolved, refused unless it exists and lies inside ``folder``."""
    path = folder / name
    if not path.exists():
        raise DataError(f"{where}: image {_short(name)} is not in {folder}/")
    resolved = path.resolve()
    if not resolved.is_relative_to(folder.resolve()):
        raise DataError(f"{where}: image {_short(name)} is a symbolic link to a file outside {folder}/")
    return resolved


def _caption_set(entries: list[tuple[str, str, list[list[str]]]], folder: Path, size: int, limit: int | None,
                 info: dict) -> CaptionSet:
    """The first ``limit`` entries (name, where it is named, captions), their images read from ``folder``.

    Shapes:
        returns a CaptionSet with images (N, size, size, 3) uint8
    """
    entries = entries[:limit]
    check_allocation(len(entries) * size * size * 3, f"{len(entries):,} images of {size} x {size} pixels")
    pixels = numpy.empty((len(entries), size, size, 3), dtype=numpy.uint8)
    for i, (name, where, _) in enumerate(entries):
        pixels[i] = read_image(_image_file(folder, name, where), size)
    names, _, captions = zip(*entries)  # never empty: _group refuses a file without captions
    return CaptionSet(pixels, list(captions), list(names), info=info)
