"""``tiefnet caption train|describe|evaluate|scenes`` with tiny budgets: the run folder, resume, the
user's Flickr8k and COCO files, and one clear line for every bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from tiefnet.cli import main

TINY = ["--train-scenes", "24", "--eval-scenes", "6", "--hidden", "12", "--embed", "6", "--channels", "4,4,8",
        "--attention-units", "6", "--batch-size", "8", "--no-progress"]


def metrics(folder):
    return [{k: v for k, v in json.loads(line).items() if k != "seconds"}
            for line in (folder / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """An attention model and a Show-and-Tell model, two epochs each."""
    root = tmp_path_factory.mktemp("caption")
    assert main(["caption", "train", "--attention", *TINY, "--epochs", "2", "--out", str(root / "att")]) == 0
    assert main(["caption", "train", *TINY, "--epochs", "2", "--out", str(root / "st")]) == 0
    assert main(["caption", "scenes", "--out", str(root / "scenes"), "--count", "3"]) == 0
    return root


def test_train_writes_the_run_folder(trained):
    folder = trained / "att"
    for name in ("config.json", "metrics.jsonl", "checkpoint.npz", "model.npz", "model.json", "summary.json",
                 "loss.png", "samples.png"):
        assert (folder / name).is_file(), name
    entries = metrics(folder)
    assert [e["epoch"] for e in entries] == [1, 2] and {"train_loss", "bleu4", "cider"} <= set(entries[0])
    summary = json.loads((folder / "summary.json").read_text())
    assert {"test", "compositional"} <= set(summary) and "attention_in_box" in summary["test"]
    assert "attention_in_box" not in json.loads((trained / "st" / "summary.json").read_text())["test"]
    for model in ("att", "st"):  # every model on scenes: how often it names a digit wrongly, overall and by count
        test = json.loads((trained / model / "summary.json").read_text())["test"]
        assert 0 <= test["digits_wrong"] <= 1 and test["digits"] > 0 and "digits_wrong (1 digit)" in test


def test_scenes_are_written_at_the_size_asked_for(tmp_path):
    from PIL import Image

    assert main(["caption", "scenes", "--out", str(tmp_path), "--count", "2", "--size", "88"]) == 0
    assert [Image.open(p).size for p in sorted(tmp_path.glob("*.png"))] == [(88, 88)] * 2
    captions = json.loads((tmp_path / "captions.json").read_text())
    assert sorted(captions) == ["test-0-0.png", "test-0-1.png"] and all(len(c) == 3 for c in captions.values())


def test_a_resumed_run_ends_as_an_uninterrupted_one(trained, tmp_path):
    out = tmp_path / "resumed"
    assert main(["caption", "train", "--attention", *TINY, "--epochs", "1", "--out", str(out)]) == 0
    assert main(["caption", "train", "--resume", "--out", str(out), "--epochs", "2", "--no-progress"]) == 0
    assert metrics(out) == metrics(trained / "att")
    with np.load(out / "model.npz") as a, np.load(trained / "att" / "model.npz") as b:
        assert set(a.files) == set(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)


def test_describe_prints_a_caption_per_image_and_draws_the_attention(trained, capsys):
    images = sorted(str(p) for p in (trained / "scenes").glob("*.png"))
    assert len(images) == 3
    capsys.readouterr()
    assert main(["caption", "describe", "--model", str(trained / "att"), *images, "--attention-map",
                 str(trained / "maps.png"), "--beam", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in lines[:3]] == images
    assert Image.open(trained / "maps.png").size[0] > 100
    assert main(["caption", "describe", "--model", str(trained / "st"), images[0]]) == 0


def test_evaluate_scores_a_split(trained, tmp_path, capsys):
    out = tmp_path / "scores.json"
    assert main(["caption", "evaluate", "--model", str(trained / "att"), "--split", "compositional", "--no-meteor",
                 "--json", str(out)]) == 0
    scores = json.loads(out.read_text())
    assert scores["split"] == "compositional" and scores["images"] == 6
    assert 0 <= scores["BLEU-4"] <= 1 and "uniform_in_box" in scores
    assert "BLEU-4" in capsys.readouterr().out


def _photos(folder, names):
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in names:
        Image.fromarray(rng.integers(0, 255, (20, 30, 3), dtype=np.uint8)).save(folder / name)


def test_a_flickr8k_folder_and_a_coco_file_train_and_describe(tmp_path, capsys):
    names = [f"img{i}.png" for i in range(10)]
    _photos(tmp_path / "flickr" / "Images", names)
    lines = ["image,caption"] + [f"{n},a dog runs on the grass number {i}" for i, n in enumerate(names)] + \
            [f"{n},\"a brown dog, playing\"" for n in names]
    (tmp_path / "flickr" / "captions.txt").write_text("\n".join(lines) + "\n")
    _photos(tmp_path / "coco" / "pics", names)
    coco = {"images": [{"id": i, "file_name": n} for i, n in enumerate(names)],
            "annotations": [{"image_id": i, "caption": f"A cat sits on a mat {i}."} for i in range(10)]}
    (tmp_path / "coco" / "captions.json").write_text(json.dumps(coco))
    small = ["--size", "16", "--channels", "4,8", "--hidden", "8", "--embed", "4", "--epochs", "1", "--no-progress",
             "--batch-size", "4", "--held-out", "0.2"]
    for data, extra in ((tmp_path / "flickr", []), (tmp_path / "coco" / "captions.json", ["--images", str(tmp_path / "coco" / "pics")])):
        out = tmp_path / f"run-{data.name}"
        assert main(["caption", "train", "--data", str(data), *extra, *small, "--out", str(out)]) == 0
        capsys.readouterr()
        image = tmp_path / "flickr" / "Images" / names[0]
        assert main(["caption", "describe", "--model", str(out), str(image)]) == 0
        assert capsys.readouterr().out.startswith(str(image))
        assert main(["caption", "evaluate", "--model", str(out), "--no-meteor"]) == 0


def _bad_flickr(tmp_path, kind):
    folder = tmp_path / kind
    _photos(folder / "Images", ["a.png", "b.png"])
    lines = {"unknown": "image,caption\na.png,a dog\nzzz.png,a cat\n", "empty": "image,caption\na.png,a dog\nb.png,!!\n",
             "none": "image,caption\n"}.get(kind, "image,caption\na.png,a dog\n")
    (folder / "captions.txt").write_text(lines)
    if kind == "missing":
        (folder / "Images" / "a.png").unlink()
    return folder


@pytest.mark.parametrize("kind, fragment", [("unknown", "zzz.png"), ("empty", "line 3"), ("missing", "a.png"),
                                            ("none", "no captions")])
def test_bad_flickr_folders_give_one_line(tmp_path, capsys, kind, fragment):
    folder = _bad_flickr(tmp_path, kind)
    assert main(["caption", "train", "--data", str(folder), "--out", str(tmp_path / "out"), "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and fragment in err, err


@pytest.mark.parametrize("argv, fragment", [
    (["caption", "train", "--data", "{tmp}/nothing.json"], "nothing.json"),
    (["caption", "train", "--data", "{tmp}/broken.json"], "broken.json"),
    (["caption", "train", "--channels", "4,x"], "channels"),
    (["caption", "train", "--size", "60", "--channels", "4,4,4"], "divisible"),
    (["caption", "train", "--start", "middle"], "start"),
    (["caption", "train", "--images", "{tmp}"], "give data too"),
    (["caption", "describe", "--model", "{tmp}", "{tmp}/x.png"], "model"),
    (["caption", "evaluate", "--model", "{tmp}/nowhere"], "nowhere"),
    (["caption", "scenes", "--out", "{tmp}/s", "--split", "holiday"], "holiday"),
    (["caption", "scenes", "--out", "{tmp}/s", "--count", "0"], "count"),
    (["caption", "scenes", "--out", "{tmp}/s", "--seed", "-1"], "seed"),
    (["caption", "scenes", "--out", "{tmp}/s", "--size", "20"], "canvas"),
    (["caption", "train", "--penalty", "1"], "--attention"),
    (["caption", "train", "--eval-scenes", "1"], "eval_scenes"),
])
def test_bad_options_give_one_line(tmp_path, capsys, argv, fragment):
    (tmp_path / "broken.json").write_text("{not json")
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    if argv[1] == "train":
        argv += ["--out", str(tmp_path / "out"), "--no-progress"]
    assert main(argv) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and fragment in err, err


def test_describe_errors(trained, tmp_path, capsys):
    (tmp_path / "not-an-image.png").write_text("hello")
    for argv, fragment in (
            (["--model", str(trained / "st"), str(trained / "scenes" / "test-0-0.png"), "--attention-map",
              str(tmp_path / "m.png")], "no attention"),
            (["--model", str(trained / "att"), str(tmp_path / "not-an-image.png")], "not-an-image.png"),
            (["--model", str(trained / "att"), str(trained / "scenes" / "test-0-0.png"), "--beam", "0"], "beam")):
        assert main(["caption", "describe", *argv]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and fragment in err, err


@pytest.mark.parametrize("change, fragment", [
    (lambda info: info["data"].update(eval=10**9), "data entry"),
    (lambda info: info["data"].update(format="http"), "no data"),
    (lambda info: info["data"].update(canvas=32), "data entry"),
    (lambda info: info.update(words=info["words"][:-1]), "words"),
    (lambda info: info.update(size="64"), "size"),
    (lambda info: info.update(size=32), "canvas=32"),  # the attention model itself takes any size
    (lambda info: info["words"].__setitem__(4, ["x"]), "vocabulary"),
    (lambda info: info.update(words=info["words"][:4] + [1] + info["words"][5:]), "vocabulary"),
])
def test_a_crafted_model_json_is_refused_with_one_line(trained, tmp_path, capsys, change, fragment):
    import shutil

    folder = tmp_path / "crafted"
    shutil.copytree(trained / "att", folder)
    from tiefnet.checkpoint import read_npz, write_npz

    arrays, meta = read_npz(folder / "model.npz")
    change(meta["info"])
    if meta["info"].get("size") == 32:
        meta["info"]["data"]["canvas"] = 32  # a consistent data entry: the model itself must refuse
    write_npz(folder / "model.npz", arrays, meta)
    (folder / "model.json").write_text(json.dumps(meta))
    assert main(["caption", "evaluate", "--model", str(folder), "--no-meteor"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and fragment in err, err


@pytest.mark.parametrize("change", [
    lambda arch: arch.update(init={"type": "ReLU"}),
    lambda arch: arch.update(embed={"type": "Dense", "n_in": 3, "n_out": 4, "init": "scaled"}),
    lambda arch: arch["encoder"]["layers"].append({"type": "Flatten"}),
])
def test_a_crafted_architecture_is_refused_with_one_line(trained, tmp_path, capsys, change):
    import shutil

    from tiefnet.checkpoint import read_npz, write_npz

    folder = tmp_path / "crafted"
    shutil.copytree(trained / "att", folder)
    arrays, meta = read_npz(folder / "model.npz")
    change(meta["architecture"])
    write_npz(folder / "model.npz", arrays, meta)
    (folder / "model.json").write_text(json.dumps(meta))
    assert main(["caption", "describe", "--model", str(folder), str(trained / "scenes" / "test-0-0.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and ("ShowAttendTell" in err or "does not take" in err), err


def test_a_show_and_tell_model_refuses_another_image_size(trained, tmp_path, capsys):
    import shutil

    from tiefnet.checkpoint import read_npz, write_npz

    folder = tmp_path / "resized"
    shutil.copytree(trained / "st", folder)
    arrays, meta = read_npz(folder / "model.npz")
    meta["info"]["size"] = meta["info"]["data"]["canvas"] = 128  # its init layer takes the 8 x 8 map of 64 x 64
    write_npz(folder / "model.npz", arrays, meta)
    (folder / "model.json").write_text(json.dumps(meta))
    assert main(["caption", "describe", "--model", str(folder), str(trained / "scenes" / "test-0-0.png")]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not take 128 x 128" in err, err
