"""The README's quickstart, .ci/run and the data dictionary stay in step with the code."""

from __future__ import annotations

import ast
import doctest
import importlib
import pkgutil
import re
import subprocess
import sys
from typing import Any

import pandas as pd
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
    # the README's command (the fast tier), then the hardening tier
    # (serial: its timing and memory bounds want the machine to themselves)
    assert ci[-3:] == [tests, ci[-2], "python -m pytest -m hardening -n 0"]
    assert ci[-2].startswith("#")


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
def test_docstring_examples_run(module: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every module's docstring examples pass as doctests (from the root, where their
    data/seed paths point); the analytics modules have some."""
    monkeypatch.chdir(ROOT)
    result = doctest.testmod(module, extraglobs={"pd": pd},
                             optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0
    analytics = ("billing", "costs", "finops", "inventory", "lifecycle", "quality", "storage",
                 "timeline", "plots", "load")
    if module.__name__.rsplit(".", 1)[-1] in analytics:
        assert result.attempted >= 1


#: Which parts each part may import (docs/architecture.md); the top-level modules (errors,
#: config, _common, _files) are open to all.
_MAY_IMPORT = {"ingest": set(), "analytics": {"ingest"}, "live": {"ingest"},
               "output": {"ingest", "analytics", "live"},
               "testing": {"ingest", "analytics", "live"}}


def test_the_parts_import_one_way() -> None:
    """ingest imports no other part; analytics and live only ingest; nothing imports testing."""
    package = ROOT / "shadeanalytics"
    seen: dict[str, set[str]] = {part: set() for part in _MAY_IMPORT}
    for part in _MAY_IMPORT:
        for path in (package / part).glob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.ImportFrom) and node.level == 2 and node.module:
                    seen[part].add(node.module.split(".")[0])
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    names = node.module.split(".")
                    if names[0] == "shadeanalytics" and len(names) > 1:
                        seen[part].add(names[1])
    for part, imported in seen.items():
        assert imported & set(_MAY_IMPORT) <= _MAY_IMPORT[part], (part, sorted(imported))
    assert seen["ingest"] & set(_MAY_IMPORT) == set()
    for path in package.glob("*.py"):  # cli, config, errors, _common, _files, __init__
        if path.name == "demo.py":  # `shadeanalytics demo`: the kit's fake API, collected
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert "testing" not in (node.module or "").split("."), path.name


def test_the_readme_store_example_runs_in_an_empty_folder(tmp_path: Any) -> None:
    """The README's `Store("history.db", create=False)` example runs as written, from a
    folder holding nothing (a fresh checkout has no history.db)."""
    readme = (ROOT / "README.md").read_text()
    blocks = [b for b in re.findall(r"```python\n(.+?)\n```", readme, flags=re.DOTALL)
              if 'Store("history.db", create=False)' in b]
    assert len(blocks) == 1
    code = blocks[0] + "\nprint(sorted(set(history.polls['endpoint']))[:3], len(history.instances))"
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=tmp_path, timeout=120)
    assert (run.returncode, run.stderr) == (0, "")
    assert run.stdout == "['/clusters', '/clusters/types', '/instances'] 5\n"
    assert (tmp_path / "history.db").is_file()


def test_report_budgets_is_in_the_readme() -> None:
    """`report --budgets` is in the README's command table, with the file it writes."""
    readme = (ROOT / "README.md").read_text()
    assert "| `shadeanalytics report SOURCE... --out DIR [--budgets FILE]` |" in readme
    assert "| `budgets.csv` | (with `--budgets FILE`)" in readme
