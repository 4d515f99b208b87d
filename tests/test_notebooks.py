"""The lecture as notebooks (notebooks/, one per chapter or section group, and notebooks/solutions/):
stored without outputs, each chapter with its solutions, every one executed top to bottom in a fresh
kernel on a small budget (TIEFNET_NOTEBOOK_BUDGET=small, which the notebooks read), and every tiefnet
function a notebook calls documented with its equation and lecture section."""
from __future__ import annotations

import ast
import importlib
import re
import sys
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="the notebook tests need nbformat (pip install '.[test]')")

ROOT = Path(__file__).resolve().parents[1] / "notebooks"
CHAPTERS = sorted(ROOT.glob("*.ipynb"))
SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EVERY = CHAPTERS + SOLUTIONS


def name(path: Path) -> str:
    return str(path.relative_to(ROOT))


def read(path: Path):
    return nbformat.read(path, as_version=4)


def code(path: Path) -> list[str]:
    return [cell.source for cell in read(path).cells if cell.cell_type == "code"]


def test_the_lecture_is_there_in_its_order():
    assert [p.name[:2] for p in CHAPTERS] == [f"{k:02d}" for k in range(1, len(CHAPTERS) + 1)]
    assert len(CHAPTERS) >= 10


def test_every_chapter_has_its_solutions():
    assert [p.name for p in SOLUTIONS] == [p.name for p in CHAPTERS]


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_stored_without_outputs(path):
    """Outputs belong in the rendered HTML (docs/render_notebooks.py), not in git."""
    nbformat.validate(read(path))
    for cell in read(path).cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name(path)}: a cell with outputs"


@pytest.mark.parametrize("path", CHAPTERS, ids=name)
def test_each_chapter_cites_the_lecture_and_ends_with_exercises(path):
    text = "\n".join(cell.source for cell in read(path).cells if cell.cell_type == "markdown")
    assert "$" in text, "the lecture's equations"
    assert "Übungen" in text and "solutions/" in text, "exercises, and where their answers are"


def tiefnet_names(source: str) -> set[str]:
    """The tiefnet objects the code uses: ``from tiefnet.x import y`` and ``tn.y`` / ``tiefnet.y``."""
    names, aliases = set(), {}
    tree = ast.parse("\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))))
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "tiefnet":
            names |= {f"{node.module}:{alias.name}" for alias in node.names}
        elif isinstance(node, ast.Import):
            aliases |= {alias.asname or alias.name: alias.name for alias in node.names
                        if alias.name.split(".")[0] == "tiefnet"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            names.add(f"{aliases[node.value.id]}:{node.attr}")
    return names


# What a notebook calls to load data, configure a run, convert or judge, rather than to compute one of the
# lecture's formulas: these need a docstring, not an equation. Everything else states its equation ("=", or the
# lecture's arrow of an update) and names its lecture section (in its docstring or its module's).
HELPERS = {
    "default_dtype", "thread_limit", "relative_error",  # float64 for the checks, threads, a scale-free difference
    "load_mnist", "load_text", "read_picture", "fit", "content_photos", "make_scenes", "Vocabulary", "split_of",
    "as_input", "make_env", "GymEnv", "make_game",  # data, pictures, environments and games
    "Config", "DQNConfig", "make_config", "topology",  # settings of a run and their description
    "load_agent", "load_captioner", "load_sampler",  # a trained run folder read back
    "JudgePlayer", "match",  # the perfect opponent and a series of games
}
EQUATION = re.compile(r"=|->|→|≈")
SECTION = re.compile(r"\b[2-5]\.[0-9](\.[0-9])?\b|\(BP[1-4]")


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_every_tiefnet_function_a_notebook_calls_is_public_and_documented(path):
    for entry in sorted(tiefnet_names("\n\n".join(code(path)))):  # the whole notebook: an alias imported once
        module, attribute = entry.split(":")
        assert not attribute.startswith("_"), f"{name(path)} uses the private {entry}"
        obj = getattr(importlib.import_module(module), attribute, None)
        if obj is None:  # a submodule
            obj = importlib.import_module(f"{module}.{attribute}")
        if callable(obj) or isinstance(obj, type(importlib)):
            doc = (obj.__doc__ or "").strip()
            assert doc, f"{name(path)} calls {entry}, which has no docstring"
            if attribute in HELPERS:
                continue
            assert EQUATION.search(doc), f"{name(path)} calls {entry}, whose docstring states no equation"
            module_doc = (sys.modules.get(getattr(obj, "__module__", "")) or importlib.import_module(module)).__doc__
            assert any(SECTION.search(text or "") for text in (doc, module_doc)), \
                f"{name(path)} calls {entry}: neither its docstring nor its module's names the lecture's section"


@pytest.mark.parametrize("path", EVERY, ids=name)
def test_runs_top_to_bottom_in_a_fresh_kernel(path, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient", reason="running the notebooks needs nbclient and ipykernel")
    pytest.importorskip("ipykernel")
    monkeypatch.setenv("TIEFNET_NOTEBOOK_BUDGET", "small")  # the kernel inherits it
    monkeypatch.setenv("MPLBACKEND", "Agg")
    notebook = read(path)
    # in a folder of its own: whatever a notebook writes stays in the test's temporary folder
    nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}}).execute()
