"""Run every notebook of notebooks/ (and notebooks/solutions/) at its full budget and write it with
its outputs as HTML to docs/notebooks/, for the README's links. The notebooks in git stay without
outputs (tests/test_notebooks.py checks that).

    python3 -m pip install ".[notebooks]"
    python3 docs/render_notebooks.py                 # all of them, a few minutes each
    python3 docs/render_notebooks.py 08_gridworld    # the ones whose names start so (and their solutions)
    python3 docs/render_notebooks.py solutions/08 08_gridworld.ipynb   # only the solutions / the chapter
    TIEFNET_NOTEBOOK_BUDGET=small python3 docs/render_notebooks.py   # the tests' small budget
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="only the notebooks whose file names start with these (solutions/NAME or NAME.ipynb: that one only)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "notebooks", help="folder for the HTML files")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one cell may take")
    args = parser.parse_args(argv)
    import nbclient
    import nbformat
    from nbconvert import HTMLExporter

    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb")) + sorted((ROOT / "notebooks" / "solutions").glob("*.ipynb"))
    def named(path: Path) -> bool:  # "08": the chapter and its solutions; "08_gridworld.ipynb", "solutions/08": one
        relative = path.relative_to(ROOT / "notebooks").as_posix()
        return any(relative.startswith(name) if "/" in name or name.endswith(".ipynb") else path.name.startswith(name)
                   for name in args.names)

    chosen = [p for p in notebooks if not args.names or named(p)]
    if not chosen:
        print(f"no notebook starts with {' or '.join(args.names)}", file=sys.stderr)
        return 2
    exporter = HTMLExporter()
    for path in chosen:
        started = time.perf_counter()
        notebook = nbformat.read(path, as_version=4)
        with tempfile.TemporaryDirectory() as work:  # what a notebook writes stays out of the checkout
            nbclient.NotebookClient(notebook, timeout=args.timeout, kernel_name="python3",
                                    resources={"metadata": {"path": work}}).execute()
        html, _ = exporter.from_notebook_node(notebook)
        target = args.out / path.relative_to(ROOT / "notebooks").with_suffix(".html")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(shared_styles(html, target, args.out), encoding="utf-8")
        print(f"{path.relative_to(ROOT)} -> {target}  ({time.perf_counter() - started:.0f} s)", flush=True)
    return 0


STYLE = re.compile(r"<style[^>]*>(.*?)</style>", re.S)


def shared_styles(html: str, target: Path, out: Path) -> str:
    """The template's 260 kB of CSS in the page's head, the same for every notebook, moved into one
    notebook.css beside them (styles in the outputs stay where they are)."""
    end = html.find("</head>")
    head = html[:end]
    first = STYLE.search(head)
    if end < 0 or first is None:
        return html
    css, shared = "\n".join(STYLE.findall(head)), out / "notebook.css"
    if not shared.exists() or shared.read_text(encoding="utf-8") != css:  # the same for every page: written once
        shared.write_text(css, encoding="utf-8")
    link = f'<link rel="stylesheet" href="{os.path.relpath(out / "notebook.css", target.parent)}">'
    return head[:first.start()] + link + STYLE.sub("", head[first.start():]) + html[end:]


if __name__ == "__main__":
    sys.exit(main())
