"""The README's quickstart, .ci/run and the data dictionary stay in step with the code."""

from __future__ import annotations

import ast
import doctest
import functools
import importlib
import pkgutil
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import ROOT

import shadeanalytics
from shadeanalytics.ingest.schema import data_dictionary

#: Every module of the package: their docstring examples run here.
MODULES = [importlib.import_module(info.name)
           for info in pkgutil.walk_packages(shadeanalytics.__path__, "shadeanalytics.")
           if not info.name.endswith("__main__")]


def _quickstart() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```bash\n(.+?)\n```", section)


def test_quickstart_is_two_commands_and_ci_runs_the_same_tests() -> None:
    """Install + main job, then the test command, which is the command .ci/run runs."""
    install, tests = _quickstart()
    assert install.startswith('pip install -e ".[dev]" && shadeanalytics report ')
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert tests == "python -m pytest"
    # the README's command (the fast tier), then the hardening tier (on every core too)
    assert ci[-1] == "python -m pytest -m hardening"
    assert ci[-2].startswith("#") and all(c.startswith("#") for c in ci[ci.index(tests) + 1:-1])


def test_data_dictionary_matches_the_schema() -> None:
    """docs/data-dictionary.md is exactly what `shadeanalytics columns` prints."""
    assert (ROOT / "docs" / "data-dictionary.md").read_text() == data_dictionary()


def test_public_names_are_sorted_and_exported() -> None:
    """__all__ lists exactly the public names, sorted."""
    names = shadeanalytics.__all__
    assert names == sorted(names)
    public = {n for n in vars(shadeanalytics) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(shadeanalytics, n)).__name__ == "module"}
    lazy = set(shadeanalytics._LAZY)  # loaded on first use
    assert set(names) == (public - modules - {"annotations"}) | lazy
    for name in names:
        assert getattr(shadeanalytics, name) is not None


def test_one_import_has_the_toolkit_without_matplotlib() -> None:
    """`import shadeanalytics as sa` gives loaders, helpers and the sample; matplotlib only
    with the first plot helper, requests only with the live client or collector."""
    code = ("import sys, shadeanalytics as sa; t = sa.read(sa.sample_path()); "
            "sa.cost_breakdown(t, as_of='2026-11-20T00:00:00Z'); "
            "print('matplotlib' in sys.modules, 'requests' in sys.modules); "
            "sa.plot_gpu_inventory; sa.collect; "
            "print('matplotlib' in sys.modules, 'requests' in sys.modules)")
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert run.stdout.split() == ["False", "False", "True", "True"]
    assert (shadeanalytics.sample_path() / "instances.jsonl").is_file()


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.__name__)
def test_docstring_examples_run(module: Any, monkeypatch: pytest.MonkeyPatch,
                                tmp_path: Path) -> None:
    """Every module's docstring examples pass as doctests from any folder (they read the
    bundled sample, sa.sample_path()), as `pytest --doctest-modules shadeanalytics` runs them;
    the analytics modules have some."""
    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    analytics = ("billing", "costs", "finops", "inventory", "lifecycle", "quality", "storage",
                 "timeline", "plots", "load")
    if module.__name__.rsplit(".", 1)[-1] in analytics:
        assert result.attempted >= 1


#: The layers of the package, lowest first (docs/architecture.md): a module imports only
#: modules of its own unit (the same part, or itself) or of a lower layer. Two units in one
#: layer do not import each other (analytics and live; output and testing). The package's
#: ``__init__`` (what ``import shadeanalytics`` gives a user) is imported by no module.
_LAYERS: tuple[tuple[str, ...], ...] = (
    ("_text", "_version", "_compat"),  # text made safe per medium: below errors, which uses it
    ("errors",),
    ("_common", "_files", "_storeurl"),
    ("ingest",),
    ("config",),  # reads files through ingest.load; live and output read it
    ("analytics",),
    ("live",),  # live.check evaluates the alert rules of analytics.alerts
    ("output", "testing"),
    ("demo",),  # `shadeanalytics demo`: the kit's fake API, collected and reported
    ("cli",),
    ("__main__", "__init__"),
)
_RANK = {unit: rank for rank, units in enumerate(_LAYERS) for unit in units}


@functools.cache
def _module_names() -> dict[str, Any]:
    """Every module of the package by dotted name (a package by its own name) -> its path."""
    package = ROOT / "shadeanalytics"
    out = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _is_main_block(node: ast.stmt) -> bool:
    """``if __name__ == "__main__":``: a script's entry point, not an import of the module."""
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


@functools.cache
def _imports() -> tuple[tuple[str, str, str, int], ...]:
    """(module, imported module, imported name or "", line) of every import of the package by
    the package: at the top, inside functions and under ``TYPE_CHECKING`` alike."""
    modules = _module_names()
    found = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        here = name.split(".") if is_package else name.split(".")[:-1]
        tree = ast.parse(path.read_text(), str(path))
        entry = {id(n) for block in tree.body if _is_main_block(block)
                 for n in ast.walk(block)}  # `if __name__ == "__main__":` runs as __main__
        for node in ast.walk(tree):
            if id(node) in entry:
                continue
            if isinstance(node, ast.Import):
                found += [(name, a.name, "", node.lineno) for a in node.names
                          if a.name.split(".")[0] == "shadeanalytics"]
            elif isinstance(node, ast.ImportFrom):
                base = here[:len(here) - node.level + 1] if node.level else []
                target = ".".join([*base, *([node.module] if node.module else [])])
                if target.split(".")[0] != "shadeanalytics":
                    continue
                for alias in node.names:
                    if f"{target}.{alias.name}" in modules:  # `from . import config`
                        found.append((name, f"{target}.{alias.name}", "", node.lineno))
                    else:
                        found.append((name, target, alias.name, node.lineno))
    return tuple(found)


def _unit(module: str) -> str:
    """``shadeanalytics.live.store`` -> ``live``; ``shadeanalytics.cli`` -> ``cli``;
    ``shadeanalytics`` -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_the_parts_import_one_way() -> None:
    """No module imports a higher layer, a unit beside its own, the package's __init__ or
    (outside the test kit) the test kit."""
    upward = []
    for module, target, name, line in _imports():
        mine, theirs = _unit(module), _unit(target)
        if mine not in _RANK or theirs not in _RANK:
            upward.append(f"{module}:{line}: {mine} or {theirs} has no layer in _LAYERS")
        elif mine != theirs and _RANK[theirs] >= _RANK[mine]:
            upward.append(f"{module}:{line} imports {target} {name}".rstrip())
        elif theirs == "testing" and mine not in ("testing", "demo"):  # for tests (and the demo)
            upward.append(f"{module}:{line} imports the test kit ({target})")
    assert not upward, "\n".join(upward)


def test_no_import_circle_between_modules() -> None:
    """No module reaches itself through the modules it imports (function-level imports too)."""
    edges: dict[str, set[str]] = {m: set() for m in _module_names()}
    for module, target, _, _ in _imports():
        if target != module and target in edges:
            edges[module].add(target)
    circles = []
    for start in edges:  # a depth-first walk from each module: the package is small
        stack: list[tuple[str, tuple[str, ...]]] = [(start, (start,))]
        seen: set[str] = set()
        while stack:
            module, path = stack.pop()
            for target in edges[module]:
                if target == start:
                    circles.append(" -> ".join((*path, start)))
                elif target not in seen:
                    seen.add(target)
                    stack.append((target, (*path, target)))
    assert not circles, "\n".join(circles)


#: What analytics (pure: frames in, frames out) may not import: network, database, files.
_IO_MODULES = ("requests", "urllib3", "sqlite3", "socket", "http", "ssl", "urllib.request",
               "tomllib", "subprocess", "shutil")
#: Calls that open, read or write a file: ``open(...)``, ``Path.read_*``/``write_*``, and a
#: frame's ``to_csv``/``to_parquet``/... .
_IO_CALLS = re.compile(r"open|read_\w+|write_\w+|to_(csv|parquet|json|excel|pickle|sql)")


def _io_in(source: str) -> list[str]:
    """The I/O of a module's source, one ``line: what`` each: imports of ``_IO_MODULES`` (at
    any depth, in functions too) and calls matching ``_IO_CALLS``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if not node.level else [])
            for name in names:
                if any(name == m or name.startswith(f"{m}.") for m in _IO_MODULES):
                    found.append(f"{node.lineno}: imports {name}")
        elif isinstance(node, ast.Call):
            func = node.func
            name = (func.id if isinstance(func, ast.Name)
                    else func.attr if isinstance(func, ast.Attribute) else "")
            if _IO_CALLS.fullmatch(name):
                found.append(f"{node.lineno}: calls {name}()")
    return sorted(found, key=lambda line: int(line.split(":")[0]))


def test_analytics_does_no_io() -> None:
    """No analytics module imports a network, database or file module or opens, reads or
    writes a file: budgets files are read by config, webhooks sent and alert state kept by
    live."""
    found = [f"{name}:{where}" for name, path in _module_names().items()
             if _unit(name) == "analytics" for where in _io_in(path.read_text())]
    assert not found, "\n".join(found)


def test_the_io_check_catches_a_regression() -> None:
    """The analytics I/O check finds each kind of I/O in a module's source."""
    source = (
        "import socket\n"
        "from urllib3.util import Retry\n"
        "def f(path, frame):\n"
        "    import requests, sqlite3\n"
        "    with open(path) as handle:\n"
        "        handle.read()\n"
        "    path.read_text()\n"
        "    path.write_bytes(b'')\n"
        "    frame.to_csv(path)\n"
        "    from .costs import cost_breakdown\n"
    )
    assert _io_in(source) == [
        "1: imports socket", "2: imports urllib3.util", "4: imports requests",
        "4: imports sqlite3", "5: calls open()", "7: calls read_text()",
        "8: calls write_bytes()", "9: calls to_csv()"]


def test_no_private_name_is_imported_across_modules() -> None:
    """`from x import _y` only within x: a name another module needs is public where it lives."""
    private = [f"{module}:{line} imports {name} from {target}"
               for module, target, name, line in _imports()
               if name.startswith("_") and not name.startswith("__") and target != module]
    assert not private, "\n".join(private)


def test_every_test_function_has_a_docstring() -> None:
    """Every test function in tests/ says in a docstring what it checks."""
    bare = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                    and node.name.startswith("test") and not ast.get_docstring(node)):
                bare.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name}")
    assert not bare, "\n".join(bare)


def test_ci_lints_and_type_checks_before_the_tests() -> None:
    """.ci/run runs ruff and mypy on the package and the tests before the README's command."""
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    tests = ci.index("python -m pytest")
    assert ci.index("ruff check .") < tests
    assert ci.index("mypy shadeanalytics tests") < tests


def test_the_store_example_runs_in_an_empty_folder(tmp_path: Any) -> None:
    """The live-data page's `Store("history.db", create=False)` example runs as written, from
    a folder holding nothing (a fresh checkout has no history.db)."""
    readme = (ROOT / "docs" / "live-data.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.+?)\n```", readme, flags=re.DOTALL)
              if 'Store("history.db", create=False)' in b]
    assert len(blocks) == 1
    code = blocks[0] + "\nprint(sorted(set(history.polls['endpoint']))[:3], len(history.instances))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout == "['/clusters', '/clusters/types', '/instances'] 5\n"
    assert (tmp_path / "history.db").is_file()


def test_report_budgets_is_in_the_docs() -> None:
    """`report --budgets` is in the command line page's table, with the file it writes."""
    readme = (ROOT / "docs" / "command-line.md").read_text()
    assert "| `shadeanalytics report SOURCE... --out DIR [--budgets FILE]` |" in readme
    assert "| `budgets.csv` | (with `--budgets FILE`)" in readme


def test_no_project_file_names_a_path_of_the_machine_it_was_written_on() -> None:
    """No tracked text file names a build machine's folders (its work tree, the shared folder
    beside it): users do not have them. Data files may hold the API's own paths."""
    import subprocess

    files = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    pattern = re.compile("(?<![\\w.])/" + "work/|[.][.]/" + "shared\\b")
    found = [name for name in files
             if name.endswith((".py", ".md", ".toml", ".yml", ".yaml", ".ipynb", ".txt", ".cfg"))
             or name.startswith(".ci/")
             if pattern.search((ROOT / name).read_text(encoding="utf-8", errors="replace"))]
    assert found == []
