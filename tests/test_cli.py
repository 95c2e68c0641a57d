"""The command line: exit codes, one-line errors, help for every command."""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, SEED_PATH

from shadeanalytics import Store
from shadeanalytics.cli import _parser, main


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_report_success_prints_one_line(tmp_path: Path) -> None:
    """report exits 0 and says what it wrote."""
    code, out, err = _run("report", str(SEED_PATH), "--out", str(tmp_path), "--as-of",
                          "2026-11-20T00:00:00Z")
    assert (code, err) == (0, "")
    # the count is of the files it wrote (its hidden marker aside), whatever they are
    written = sum(1 for path in tmp_path.rglob("[!.]*") if path.is_file())
    assert out == (f"wrote {written} files to {tmp_path} (1 cluster rows, 1 instance rows; "
                   "as of 2026-11-20T00:00:00Z)\n")


def test_project_error_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """A missing file: exit 1 and exactly one Error line."""
    code, out, err = _run("report", str(tmp_path / "nope.json"), "--out", str(tmp_path))
    assert (code, out) == (1, "")
    assert err == f"Error: {tmp_path / 'nope.json'}: no such file\n"


def test_usage_error_exits_2() -> None:
    """Missing arguments are a usage error (exit 2)."""
    code, _, _ = _run("report")
    assert code == 2


def test_warnings_go_to_stderr(tmp_path: Path) -> None:
    """Data warnings are printed as Warning lines and the report still runs."""
    bad = tmp_path / "x.json"
    bad.write_text(SEED_PATH.read_text().replace('"hourly_price": 210', '"hourly_price": "210"'))
    code, _, err = _run("report", str(bad), "--out", str(tmp_path / "out"), "--as-of", "now")
    assert code == 0
    assert err.startswith("Warning: $.instances[*].hourly_price: a numeric string")


def test_python_dash_m_and_console_script_run() -> None:
    """python -m shadeanalytics runs the same command line, without a traceback."""
    result = subprocess.run([sys.executable, "-m", "shadeanalytics", "report", "/nonexistent",
                             "--out", "/tmp/x"], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr == "Error: /nonexistent: no such file\n"


def test_every_command_has_help_and_is_in_the_docs() -> None:
    """Each subcommand has help text and a mention on the command line's docs page."""
    readme = (ROOT / "docs" / "command-line.md").read_text()
    action = _parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
    commands: dict[str, argparse.ArgumentParser] = action.choices  # type: ignore[assignment]
    for name, sub in commands.items():
        assert sub.description, name
        assert f"shadeanalytics {name}" in readme, name


def test_usage_error_prints_the_subcommands_usage() -> None:
    """A usage error the command finds itself shows that command's usage, then one Error line."""
    code, out, err = _run("summary")
    assert (code, out) == (2, "")
    assert err.startswith("usage: shadeanalytics summary [-h] [--store PATH]")
    assert err.endswith("\nError: give SOURCE files or --store PATH (one of the two)\n")
    code, _, err = _run("export", "--format", "focus", "--since", "2026-11-01T00:00:00Z",
                        "--out", "x", str(SEED_PATH))
    assert code == 2
    assert err.startswith("usage: shadeanalytics export [-h]")
    assert err.endswith("\nError: --since is only for --format parquet\n")


def test_help_has_no_literal_percent_escapes() -> None:
    """Every command's --help reads "50 %", never the "%%" of an unformatted description."""
    action = _parser()._subparsers._group_actions[0]  # type: ignore[union-attr]
    commands: dict[str, argparse.ArgumentParser] = action.choices  # type: ignore[assignment]
    for name, sub in commands.items():
        text = sub.format_help()
        assert "%%" not in text, name
    assert "burn rate up 50 % on its 7-day mean" in " ".join(
        commands["check"].format_help().split())


def test_summary_of_a_store_without_polls_shows_none_not_an_empty_frame(tmp_path: Path) -> None:
    """A store that holds no poll yet: zero figures and "(none)" for each table, exit 0."""
    with Store(tmp_path / "new.db"):
        pass
    code, out, err = _run("summary", "--store", str(tmp_path / "new.db"), "--as-of",
                          "2026-11-20T00:00:00Z")
    assert (code, err) == (0, "")
    assert "Empty DataFrame" not in out
    assert out.count("\n  (none)\n") == 2
    assert "  running: 0 instances, 0 GPUs (of 0 instances not deleted)\n" in out


def test_the_command_line_takes_arrows_jemalloc_pool_unless_told(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The command line sets Arrow's jemalloc pool; ARROW_DEFAULT_MEMORY_POOL, when set,
    keeps the pool it chose."""
    import pyarrow as pa

    before = pa.default_memory_pool()
    try:
        pa.set_memory_pool(pa.system_memory_pool())
        monkeypatch.setenv("ARROW_DEFAULT_MEMORY_POOL", "system")
        assert main(["columns"], stdout=io.StringIO()) == 0
        assert pa.default_memory_pool().backend_name == "system"
        monkeypatch.delenv("ARROW_DEFAULT_MEMORY_POOL")
        assert main(["columns"], stdout=io.StringIO()) == 0
        assert pa.default_memory_pool().backend_name == "jemalloc"
    finally:
        pa.set_memory_pool(before)
