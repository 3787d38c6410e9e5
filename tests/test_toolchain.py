"""The package as shipped: stubs match the compiled module, twins match, imports stay lean."""

from __future__ import annotations

import ast
import inspect
import json
import pathlib
import subprocess
import sys

import pytest

import ringguard
from ringguard import _pycore

ROOT = pathlib.Path(ringguard.__file__).parent


def _stub_names() -> tuple[set[str], dict[str, set[str]]]:
    tree = ast.parse((ROOT / "_core.pyi").read_text())
    names: set[str] = set()
    methods: dict[str, set[str]] = {}
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ClassDef):
            names.add(node.name)
            methods[node.name] = {
                n.name for n in node.body
                if isinstance(n, ast.FunctionDef) and not n.name.startswith("__")
            }
    return names, methods


def _public(obj: object) -> set[str]:
    return {n for n in dir(obj) if not n.startswith("_")}


def test_pure_python_twin_has_the_stubbed_api() -> None:
    names, methods = _stub_names()
    assert names <= _public(_pycore), names - _public(_pycore)
    for cls, meths in methods.items():
        assert meths <= _public(getattr(_pycore, cls))


def test_compiled_module_matches_its_stub() -> None:
    core = pytest.importorskip("ringguard._core", reason="compiled core not built")
    names, methods = _stub_names()
    assert _public(core) - {"np"} >= names
    # Everything public in the extension is in the stub (drift fails here).
    assert {n for n in _public(core) if not inspect.ismodule(getattr(core, n))} <= names
    for cls, meths in methods.items():
        assert meths <= _public(getattr(core, cls))


def test_backend_is_reported() -> None:
    assert ringguard.BACKEND in ("c", "python")


def test_public_names_are_exported() -> None:
    for name in ringguard.__all__:
        assert hasattr(ringguard, name), name


def test_version_is_the_installed_metadata() -> None:
    from importlib.metadata import version

    assert ringguard.__version__ == version("ringguard")


def test_import_does_not_pull_optional_dependencies() -> None:
    code = (
        "import json, sys, ringguard;"
        "print(json.dumps(sorted(m for m in ('pandas', 'pyarrow', 'dask', 'redis') "
        "if m in sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert json.loads(out.stdout) == []


def test_py_typed_is_shipped() -> None:
    assert (ROOT / "py.typed").exists()
    assert (ROOT / "_core.pyi").exists()


def test_module_entry_point_prints_a_report() -> None:
    out = subprocess.run([sys.executable, "-m", "ringguard", "--keys", "20000", "--nodes", "4"],
                         capture_output=True, text=True, check=True)
    assert "all to the new node: True" in out.stdout
    assert "node3" in out.stdout
