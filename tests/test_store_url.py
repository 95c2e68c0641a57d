"""Store names as users write them: a path, sqlite:///PATH, postgresql://...; anything else is
a usage error that names the problem, never the password, and creates no file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import Captured

from shadeanalytics._storeurl import redact, target
from shadeanalytics.cli import main
from shadeanalytics.errors import StoreURLError
from shadeanalytics.live.locks import store_lock
from shadeanalytics.live.store import Store

SECRET = "SECRETPW-4417"
KNOWN = "give a path, sqlite:///PATH (sqlite:////ABSOLUTE/PATH) or postgresql://USER@HOST:PORT/DB"


def _run(*argv: str) -> tuple[int, str, str]:
    """``main(argv)`` in this process: (exit code, stdout, stderr)."""
    out, err = Captured(), Captured()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.text, err.text


@pytest.mark.parametrize(("store", "message"), [
    (f"mysql://u:{SECRET}@x/db", f"unsupported store URL scheme 'mysql': {KNOWN}"),
    ("sqlite://x", "an SQLite store URL is sqlite:///RELATIVE/PATH or sqlite:////ABSOLUTE/PATH "
                   "(three slashes, then the path)"),
    ("sqlite:///", "an SQLite store URL is sqlite:///RELATIVE/PATH or sqlite:////ABSOLUTE/PATH "
                   "(three slashes, then the path)"),
])
def test_a_store_url_naming_no_store_is_a_usage_error_and_creates_nothing(
        store: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """summary and collect exit 2 with the one message, no password, and no file made of it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SHADEFORM_API_KEY", "k")
    for command in ("summary", "collect"):
        code, out, err = _run(command, "--store", store)
        assert (code, out, err) == (2, "", f"Error: {message}\n"), command
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(StoreURLError, match=f"^{re.escape(message)}$"):
        target(store)
    with pytest.raises(StoreURLError, match=f"^{re.escape(message)}$"):  # the lock too
        store_lock(store, "busy").__enter__()
    assert list(tmp_path.iterdir()) == []


def test_an_empty_store_name_is_refused_by_every_command(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """--store '' (and store copy's SRC/DST ''): argparse's usage error, exit 2, nothing
    written (an empty name would be the working directory)."""
    monkeypatch.chdir(tmp_path)
    for argv in (["summary", "--store", ""], ["collect", "--store", " "],
                 ["store", "copy", "a.db", ""]):
        code, out, err = _run(*argv)
        err += capsys.readouterr().err  # argparse writes its usage error itself
        assert (code, out) == (2, ""), argv
        assert err.endswith(": the store name is empty: give a path, sqlite:///PATH or "
                            "postgresql://USER@HOST/DB\n"), err
    assert list(tmp_path.iterdir()) == []


def test_a_malformed_postgresql_url_never_shows_its_password() -> None:
    """A URL psycopg cannot parse: the driver's message quotes it; the error shows it with
    the password as ***."""
    code, out, err = _run("summary", "--store", f"postgresql://u:{SECRET}@[::1/db")
    pytest.importorskip("psycopg")
    assert code == 1 and out == ""
    assert SECRET not in err
    assert err.startswith("Error: postgresql://***@[::1/db: cannot open: "), err


def test_sqlite_urls_from_the_environment_and_settings_are_taken_as_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SHADEANALYTICS_STORE=sqlite:///h.db is the file h.db of the working directory (it was
    made into a folder 'sqlite:'); config shows it as written."""
    monkeypatch.chdir(tmp_path)
    with Store(tmp_path / "h.db"):
        pass
    monkeypatch.setenv("SHADEANALYTICS_STORE", "sqlite:///h.db")
    code, out, _ = _run("config")
    assert code == 0 and "store               sqlite:///h.db (from SHADEANALYTICS_STORE)\n" in out
    code, out, err = _run("summary")  # the empty store h.db, read
    assert (code, err) == (0, "") and "  running: 0 instances, 0 GPUs" in out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["h.db"]


def test_redact_masks_any_urls_password_and_keeps_the_rest_as_written() -> None:
    """The user part's password and a password= parameter become ***; %3D and paths stay."""
    assert redact("postgresql://u:pw@h:5/db?options=-csearch_path%3Dx&password=zz") == (
        "postgresql://u:***@h:5/db?options=-csearch_path%3Dx&password=***")
    assert redact(f"mysql://u:{SECRET}@x/db") == "mysql://u:***@x/db"
    assert redact("sqlite:///new.db") == "sqlite:///new.db"
    assert redact("reports/h.db") == "reports/h.db"
