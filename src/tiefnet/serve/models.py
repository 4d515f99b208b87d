"""The model folders one server answers with: each loaded once, by the application that wrote it
(model.json's "app"), and checked as that application's own loader checks it.

A folder may come from someone else: only tiefnet's own loaders read it (no module is imported by a
name from a file), and its name on the page is made of its folder's name, never a path.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from tiefnet.errors import TiefnetError

MAX_MODELS = 64  # model folders one server loads at the most
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.")


def _digits(name: str, folder: Path):
    from tiefnet.serve.predictors import DigitPredictor

    return DigitPredictor.load(name, folder)


def _agent(name: str, folder: Path):
    from tiefnet.serve.games import Agent

    return Agent.load(name, folder)


def _sampler(name: str, folder: Path):
    from tiefnet.serve.text import TextSampler

    return TextSampler.load(name, folder)


def _captioner(name: str, folder: Path):
    from tiefnet.serve.pictures import CaptionModel

    return CaptionModel.load(name, folder)


def _stylizer(name: str, folder: Path):
    from tiefnet.serve.pictures import Stylizer

    return Stylizer.load(name, folder)


# model.json's "app" -> the loader of its folders, for the page's views
LOADERS: dict[str, Callable[[str, Path], Any]] = {
    "mnist": _digits,          # Handwriting
    "alphazero": _agent,       # Play
    "charrnn": _sampler,       # Text
    "caption": _captioner,     # Captions
    "fast-style": _stylizer,   # Style
}


def app_of(folder: Path) -> str | None:
    """The application that wrote the model folder (model.json's "app"; guessed from the info for
    folders written before it was recorded), None where there is no readable model.json."""
    from tiefnet.checkpoint import _guess_app
    from tiefnet.files import read_json

    try:
        meta = read_json(folder / "model.json")
    except (TiefnetError, OSError):
        return None
    if not isinstance(meta, dict):
        return None
    if isinstance(meta.get("app"), str):
        return meta["app"]
    info = meta.get("info")
    if isinstance(info, dict) and info.get("kind") == "alphazero":
        return "alphazero"
    return _guess_app(info) or "mnist"  # the oldest folders: tiefnet mnist's


def find_models(models: list[str | Path], runs: str | Path | None = None,
                warn: Callable[[str], None] | None = None) -> dict[str, Any]:
    """The models of the folders given and of the model folders directly under ``runs``, by a name
    made of the folder's name. A folder named that does not load, or whose application the page does
    not show, is an error. Under ``runs`` such folders are skipped, each one told to ``warn``."""
    folders: list[tuple[Path, str | None]] = [(Path(m), app_of(Path(m))) for m in models]
    named = len(folders)
    if runs is not None:
        root = Path(runs)
        if not root.is_dir():
            raise TiefnetError(f"--runs {root}: not a folder")
        given = {folder for folder, _ in folders}
        for sub in sorted(root.iterdir()):
            if sub.is_dir() and not sub.is_symlink() and sub not in given:
                app = app_of(sub)
                if app in LOADERS:
                    folders.append((sub, app))
    if len(folders) > MAX_MODELS:
        raise TiefnetError(f"{len(folders)} model folders: a server loads at most {MAX_MODELS}")
    found: dict[str, Any] = {}
    for i, (folder, app) in enumerate(folders):
        if app is not None and app not in LOADERS:
            raise TiefnetError(f"{folder}: a model of tiefnet {app[:40]}; tiefnet serve shows models of "
                               f"{', '.join(LOADERS)}")
        name = "".join(c if c in NAME_CHARS else "-" for c in folder.resolve().name) or "model"
        base, k = name, 2
        while name in found:
            name, k = f"{base}-{k}", k + 1
        try:  # no readable model.json: tiefnet mnist's loader says what is wrong with the folder
            found[name] = LOADERS[app or "mnist"](name, folder)
        except TiefnetError as error:
            if i < named:
                raise
            if warn is not None:
                warn(f"skipped {folder}: {error}")
    return found
