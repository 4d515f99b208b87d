"""Flickr8k folders and COCO captions files become CaptionSets; every bad input is one clear DataError."""
import json
import os

import numpy as np
import pytest
from PIL import Image

import tiefnet.data.caption_files as caption_files
import tiefnet.data.image as image_module
from tiefnet.data.caption_files import load_caption_files, load_coco, load_flickr8k, read_image
from tiefnet.errors import ConfigError, DataError

COLOURS = {"a.jpg": (200, 30, 30), "b.png": (30, 200, 30), "c.jpg": (30, 30, 200), "d.png": (240, 240, 20),
           "e.jpg": (20, 20, 20)}
CSV = """image,caption
b.png,A green square.
a.jpg,"A red square, on its own."
b.png,a green thing
c.jpg,A blue square, very blue, quite small
a.jpg,red
d.png,Yellow!
e.jpg,a dark square
c.jpg,blue again
e.jpg,black
d.png,it's yellow
"""


def make_images(folder, names=COLOURS):
    """Small solid-colour pictures of different shapes, PNG or JPEG by their names."""
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        Image.new("RGB", (10 + 3 * k, 8 + k), COLOURS.get(name, (90, 90, 90))).save(folder / name)
    return folder


def flickr(tmp_path, captions=CSV, file="captions.txt"):
    folder = tmp_path / "flickr"
    make_images(folder / "Images")
    (folder / file).write_text(captions, encoding="utf-8")
    return folder


def coco(tmp_path, images=None, annotations=None, data=None):
    make_images(tmp_path / "coco")
    images = images if images is not None else [{"id": 10 + k, "file_name": n} for k, n in enumerate(COLOURS)]
    annotations = annotations if annotations is not None else [
        {"image_id": 12, "caption": "A blue square."}, {"image_id": 10, "caption": "red, red"},
        {"image_id": 12, "caption": "blue"}, {"image_id": 14, "caption": "Black."}]
    path = tmp_path / "coco" / "captions.json"
    path.write_text(json.dumps(data if data is not None else {"images": images, "annotations": annotations}))
    return path


def assert_colours(dataset):
    for name, picture in zip(dataset.names, dataset.images):
        assert np.abs(picture.astype(int) - COLOURS[name]).max() <= 12, name  # JPEG: nearly exact


def test_flickr8k_groups_captions_per_image_in_order_of_first_appearance(tmp_path):
    dataset = load_flickr8k(flickr(tmp_path), size=16)
    assert dataset.images.shape == (5, 16, 16, 3) and dataset.images.dtype == np.uint8
    assert dataset.names == ["b.png", "a.jpg", "c.jpg", "d.png", "e.jpg"]
    assert dataset.captions[0] == [["a", "green", "square"], ["a", "green", "thing"]]
    assert dataset.captions[1] == [["a", "red", "square", "on", "its", "own"], ["red"]]  # quoted, with a comma
    assert dataset.captions[2][0] == ["a", "blue", "square", "very", "blue", "quite", "small"]  # unquoted commas
    assert dataset.captions[3] == [["yellow"], ["it's", "yellow"]]
    assert dataset.boxes is None and dataset.digits is None
    assert dataset.info == {"format": "flickr8k", "source": str(tmp_path / "flickr"), "size": 16}
    assert_colours(dataset)


def test_limit_keeps_the_first_images_with_all_their_captions(tmp_path):
    dataset = load_flickr8k(flickr(tmp_path), size=8, limit=2)
    assert dataset.names == ["b.png", "a.jpg"] and dataset.images.shape == (2, 8, 8, 3)
    assert len(dataset.captions[1]) == 2
    assert len(load_coco(coco(tmp_path), size=8, limit=1)) == 1


def test_the_original_token_file_when_captions_txt_is_absent(tmp_path):
    tokens = "a.jpg#0\tA red square .\r\na.jpg#1\tred\nc.jpg#0\tBlue, blue.\n\n"
    dataset = load_flickr8k(flickr(tmp_path, tokens, "Flickr8k.token.txt"), size=4)
    assert dataset.names == ["a.jpg", "c.jpg"]
    assert dataset.captions == [[["a", "red", "square"], ["red"]], [["blue", "blue"]]]


def test_coco_skips_images_without_captions_and_keeps_the_images_order(tmp_path):
    path = coco(tmp_path)
    dataset = load_coco(path, size=12)
    assert dataset.names == ["a.jpg", "c.jpg", "e.jpg"] and dataset.images.shape == (3, 12, 12, 3)
    assert dataset.captions == [[["red", "red"]], [["a", "blue", "square"], ["blue"]], [["black"]]]
    assert dataset.info == {"format": "coco", "source": str(path), "size": 12}
    assert_colours(dataset)
    elsewhere = tmp_path / "elsewhere" / "captions.json"  # the images in a folder of their own
    elsewhere.parent.mkdir()
    elsewhere.write_text(path.read_text())
    assert load_coco(elsewhere, images=path.parent, size=12).names == dataset.names
    with pytest.raises(DataError, match="image 'a.jpg' is not in"):
        load_coco(elsewhere, size=12)


def test_load_caption_files_tells_the_formats_apart(tmp_path):
    assert load_caption_files(flickr(tmp_path), size=4).info["format"] == "flickr8k"
    assert load_caption_files(coco(tmp_path), size=4, limit=2).info["format"] == "coco"
    with pytest.raises(ConfigError, match="images= is for a COCO"):
        load_caption_files(tmp_path / "flickr", images=tmp_path)
    for other in (tmp_path, tmp_path / "flickr" / "captions.txt", tmp_path / "missing"):
        with pytest.raises(DataError, match="expected a Flickr8k folder .* or a COCO captions .json file"):
            load_caption_files(other)


def test_read_image_turns_the_photo_upright_and_puts_transparency_on_white(tmp_path):
    picture = Image.new("RGB", (8, 4), (255, 0, 0))
    picture.paste((0, 0, 255), (4, 0, 8, 4))  # left half red, right half blue
    exif = picture.getexif()
    exif[0x0112] = 6  # shown turned 90 degrees clockwise: the left half on top
    picture.save(tmp_path / "turned.jpg", exif=exif, quality=95)
    upright = read_image(tmp_path / "turned.jpg", 8)
    assert upright.shape == (8, 8, 3) and upright.dtype == np.uint8
    assert upright[0, 4, 0] > 200 and upright[0, 4, 2] < 60  # red on top
    assert upright[7, 4, 2] > 200 and upright[7, 4, 0] < 60  # blue below
    Image.new("RGBA", (5, 3), (0, 0, 0, 0)).save(tmp_path / "clear.png")
    assert (read_image(tmp_path / "clear.png", 3) == 255).all()
    Image.new("L", (3, 5), 100).save(tmp_path / "grey.png")
    assert (read_image(tmp_path / "grey.png", 2) == 100).all()
    Image.fromarray(np.full((4, 4), 30000, np.uint16)).save(tmp_path / "deep.png")  # 16-bit grey levels
    assert (read_image(tmp_path / "deep.png", 2) == round(30000 / 65535 * 255)).all()


def test_read_image_refuses_non_images_and_too_many_pixels(tmp_path, monkeypatch):
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(DataError, match="not an image Pillow can read"):
        read_image(tmp_path / "text.png", 4)
    with pytest.raises(DataError, match="file not found"):
        read_image(tmp_path / "missing.png", 4)
    Image.new("RGB", (5, 4)).save(tmp_path / "big.png")
    monkeypatch.setattr(image_module, "MAX_PIXELS", 19)
    with pytest.raises(DataError, match=r"20 pixels \(5x4\).*decompression bomb"):
        read_image(tmp_path / "big.png", 4)


def write(folder, name, text):
    (folder / name).write_text(text, encoding="utf-8")


@pytest.mark.parametrize("damage, message", [
    (lambda f: write(f, "captions.txt", CSV.replace("c.jpg,blue again", "zzz.jpg,blue again")),
     r"captions.txt line 9: image 'zzz.jpg' is not in .*Images/"),
    (lambda f: write(f, "captions.txt", CSV.replace("Yellow!", "!!! ...")), "captions.txt line 7: the caption is empty"),
    (lambda f: write(f, "captions.txt", "image,caption\n\n"), "captions.txt: holds no captions"),
    (lambda f: write(f, "captions.txt", ""), "line 1: expected the header 'image,caption', found nothing"),
    (lambda f: write(f, "captions.txt", "a.jpg,red\n"), "line 1: expected the header 'image,caption'"),
    (lambda f: write(f, "captions.txt", "image,caption\na.jpg red\n"), "line 2: expected 'image,caption'"),
    (lambda f: write(f, "captions.txt", "image,caption\n../a.jpg,red\n"), "line 2: image name '../a.jpg' is not a plain"),
    (lambda f: write(f, "captions.txt", "image,caption\n/etc/passwd,red\n"), "line 2: .* not a plain file name"),
    (lambda f: (f / "captions.txt").write_bytes(b"image,caption\na.jpg,r\xe9d\n"), "captions.txt is not UTF-8"),
    (lambda f: write(f, "captions.txt", "image,caption\na.jpg," + "red " * 40_000), "line 2: field larger than"),
    (lambda f: (f / "captions.txt").unlink(), "no captions.txt"),
    (lambda f: [p.unlink() for p in (f / "Images").iterdir()] and (f / "Images").rmdir(), "no Images/ folder"),
    (lambda f: write(f / "Images", "d.png", "not a picture"), r"d.png: not an image Pillow can read"),
    (lambda f: (f / "captions.txt").unlink() or write(f, "Flickr8k.token.txt", "a.jpg#0 red\n"),
     "Flickr8k.token.txt line 1: expected 'name.jpg#0<TAB>caption'"),
], ids=["unknown-image", "empty-caption", "no-captions", "empty-file", "no-header", "no-comma", "dotdot",
        "absolute", "not-utf8", "huge-caption", "no-captions-file", "no-images-folder", "not-an-image", "token-no-tab"])
def test_bad_flickr8k_folders(tmp_path, damage, message):
    folder = flickr(tmp_path)
    damage(folder)
    with pytest.raises(DataError, match=message):
        load_flickr8k(folder, size=4)


def test_missing_folders_and_files(tmp_path):
    with pytest.raises(DataError, match="missing: folder not found"):
        load_flickr8k(tmp_path / "missing")
    with pytest.raises(DataError, match="missing.json: file not found"):
        load_coco(tmp_path / "missing.json")
    with pytest.raises(DataError, match="nowhere: folder not found"):
        load_coco(coco(tmp_path), images=tmp_path / "nowhere")


IMAGES = [{"id": 1, "file_name": "a.jpg"}]
NOTES = [{"image_id": 1, "caption": "red"}]


@pytest.mark.parametrize("data, message", [
    ("{not json", "not valid JSON"),
    ("[" * 300 + "]" * 300, "nested"),
    ([], "not a COCO captions file"),
    ({"images": IMAGES}, "not a COCO captions file"),
    ({"images": {"1": "a.jpg"}, "annotations": NOTES}, "not a COCO captions file"),
    ({"images": [{"id": "1", "file_name": "a.jpg"}], "annotations": NOTES}, r"images\[0\]: expected .* integer 'id'"),
    ({"images": [{"id": 1}], "annotations": NOTES}, r"images\[0\]: expected .* string 'file_name'"),
    ({"images": IMAGES * 2, "annotations": NOTES}, r"images\[1\]: image id 1 appears twice"),
    ({"images": [{"id": 1, "file_name": "sub/a.jpg"}], "annotations": NOTES}, "not a plain file name"),
    ({"images": IMAGES, "annotations": [NOTES[0], {"image_id": 7, "caption": "x"}]},
     r"annotations\[1\]: image_id 7 is not in the file's 'images' list"),
    ({"images": IMAGES, "annotations": [{"image_id": 1, "caption": ["red"]}]}, r"annotations\[0\]: .* string 'caption'"),
    ({"images": IMAGES, "annotations": ["red"]}, r"annotations\[0\]: expected an object"),
    ({"images": IMAGES, "annotations": [NOTES[0], {"image_id": 1, "caption": " ."}]},
     r"annotations\[1\]: the caption is empty"),
    ({"images": IMAGES, "annotations": []}, "holds no captions"),
    ({"images": [{"id": 1, "file_name": "zzz.png"}], "annotations": NOTES}, r"images\[0\]: image 'zzz.png' is not in"),
], ids=["invalid", "deep", "a-list", "no-annotations", "images-not-a-list", "string-id", "no-file-name", "twice",
        "subfolder", "unknown-id", "caption-list", "annotation-string", "empty-caption", "none", "missing-image"])
def test_bad_coco_files(tmp_path, data, message):
    path = coco(tmp_path)
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    with pytest.raises(DataError, match=message):
        load_coco(path, size=4)


def test_no_file_name_reaches_outside_the_images_folder(tmp_path):
    path = coco(tmp_path)
    outside = make_images(tmp_path, ["outside.png"]) / "outside.png"  # beside the images folder
    os.symlink(outside, tmp_path / "coco" / "link.png")
    os.symlink("a.jpg", tmp_path / "coco" / "inside.jpg")  # a link within the folder is fine
    for name, message in [("../outside.png", "not a plain file name"), (str(outside), "not a plain file name"),
                          ("link.png", "symbolic link to a file outside")]:
        path.write_text(json.dumps({"images": [{"id": 1, "file_name": name}], "annotations": NOTES}))
        with pytest.raises(DataError, match=message):
            load_coco(path, size=4)
    path.write_text(json.dumps({"images": [{"id": 1, "file_name": "inside.jpg"}], "annotations": NOTES}))
    assert load_coco(path, size=4).names == ["inside.jpg"]


def test_too_many_captions_and_bad_settings(tmp_path, monkeypatch):
    folder = flickr(tmp_path)
    monkeypatch.setattr(caption_files, "MAX_CAPTIONS", 3)
    with pytest.raises(DataError, match="more than the 3 captions"):
        load_flickr8k(folder)
    for settings in ({"size": 0}, {"size": 2.5}, {"limit": 0}, {"limit": True}):
        with pytest.raises(ConfigError):
            load_flickr8k(folder, **settings)
    with pytest.raises(ConfigError, match="size=0"):
        read_image(folder / "Images" / "a.jpg", 0)
