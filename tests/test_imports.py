"""Every module of tiefnet imports on its own in a fresh interpreter, and the modules' imports —
deferred ones inside functions included — form no cycle (issue 9, acceptance 6)."""
from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
import textwrap
from pathlib import Path

import tiefnet

ROOT = Path(tiefnet.__file__).parent
MODULES = sorted(["tiefnet"] + [m.name for m in pkgutil.walk_packages([str(ROOT)], "tiefnet.")])


def _module_file(name: str) -> Path:
    path = ROOT.joinpath(*name.split(".")[1:])
    return path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"


def imports_of(name: str) -> set[str]:
    """The tiefnet modules ``name`` imports anywhere in its source (module level or in a function)."""
    tree = ast.parse(_module_file(name).read_text())
    package = name if _module_file(name).name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # "from tiefnet import backend" imports the module tiefnet.backend
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


def test_the_module_list_is_complete():
    assert {"tiefnet.nn.layer", "tiefnet.nn.registry", "tiefnet.train", "tiefnet.checkpoint"} <= set(MODULES)


def test_no_import_cycle():
    graph = {name: imports_of(name) - {"tiefnet"} for name in MODULES}
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name, path):
        state[name] = 1
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                cycle = path[path.index(other):] + [other]
                raise AssertionError("import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other, path + [other])
        state[name] = 2

    for name in MODULES:
        if name not in state:
            visit(name, [name])


def test_every_module_imports_on_its_own():
    """Each module imported first, with no other tiefnet module loaded before it."""
    script = textwrap.dedent("""
        import importlib, sys
        failed = []
        for name in sys.argv[1:]:
            for loaded in [m for m in sys.modules if m == "tiefnet" or m.startswith("tiefnet.")]:
                del sys.modules[loaded]
            try:
                importlib.import_module(name)
            except Exception as error:
                failed.append(f"{name}: {type(error).__name__}: {error}")
        print("\\n".join(failed))
        sys.exit(1 if failed else 0)
    """)
    result = subprocess.run([sys.executable, "-c", script, *MODULES], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
