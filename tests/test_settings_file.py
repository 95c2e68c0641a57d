"""The settings file (shadeanalytics.toml): where it is found, flags over the environment over
the file, `shadeanalytics config` and its redaction, the warning for a readable file holding
a secret, bad files named without their values, and the commands taking their settings from
it; and the fast clock (SHADEANALYTICS_CLOCK)."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import SAMPLE_DIR, Captured

from shadeanalytics import config
from shadeanalytics.cli import main
from shadeanalytics.testing.fakeapi import FakeShadeformAPI, default_scenario

SECRET = "sk-live-canary-7Qz"
HOOK = "https://hooks.example.test/services/canary-hook-token"



@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory and a user config directory of their own, no setting in the
    environment."""
    for name in list(os.environ):
        if name.startswith(("SHADEFORM_", "SHADEANALYTICS_")):
            monkeypatch.delenv(name)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    return work


def _write(path: Path, text: str, mode: int = 0o600) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)
    return path


def _run(*args: str) -> tuple[int, str, str]:
    out, err = Captured(), Captured()
    code = main(list(args), stdout=out, stderr=err)
    return code, out.text, err.text


def test_flags_override_the_environment_which_overrides_the_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each setting from the highest of flag, variable, file, default; file paths relative to
    the file's folder."""
    file = _write(
        home / "shadeanalytics.toml",
        'store = "from-file.db"\ninfo_budget = 5\ninfo_max_age_hours = 2.5\n'
        'budgets = "b/budgets.toml"\nas_of = "now"\nreport_dir = "/srv/report"\n',
    )
    monkeypatch.setenv("SHADEANALYTICS_INFO_BUDGET", "7")
    monkeypatch.setenv("SHADEANALYTICS_STORE", "env.db")
    values = config.settings({"store": "flag.db", "info_budget": None})
    name = str(file)
    assert {key: (s.value, s.source) for key, s in values.items()} == {
        "api_key": (None, "default"),
        "api_key_file": (None, "default"),
        "base_url": (None, "default"),
        "store": ("flag.db", "--store"),
        "info_budget": (7, "SHADEANALYTICS_INFO_BUDGET"),
        "info_max_age_hours": (2.5, name),
        "budgets": (home / "b" / "budgets.toml", name),
        "webhook": (None, "default"),
        "as_of": ("now", name),
        "report_dir": (Path("/srv/report"), name),
    }
    monkeypatch.delenv("SHADEANALYTICS_INFO_BUDGET")
    assert config.settings()["info_budget"] == config.Setting(5, name)
    assert config.settings()["store"] == config.Setting(Path("env.db"), "SHADEANALYTICS_STORE")


def test_the_file_is_found_by_flag_variable_working_directory_then_user_directory(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """--config, SHADEANALYTICS_CONFIG, ./shadeanalytics.toml, $XDG_CONFIG_HOME/shadeanalytics/."""
    assert config.find_file() == (None, "none")
    user = _write(tmp_path / "xdg" / "shadeanalytics" / "shadeanalytics.toml", "")
    assert config.find_file() == (user, "user config directory")
    here = _write(home / "shadeanalytics.toml", "")
    assert config.find_file() == (here, "working directory")
    named = _write(tmp_path / "named.toml", "")
    monkeypatch.setenv("SHADEANALYTICS_CONFIG", str(named))
    assert config.find_file() == (named, "SHADEANALYTICS_CONFIG")
    flag = _write(tmp_path / "flag.toml", "")
    assert config.find_file(flag) == (flag, "--config")
    with pytest.raises(config.ConfigError) as caught:
        config.find_file(tmp_path / "missing.toml")
    assert str(caught.value) == (
        f"{tmp_path / 'missing.toml'}: no such settings file (named by --config)"
    )


def test_config_prints_each_setting_and_its_source_with_secrets_redacted(home: Path) -> None:
    """`config`: values with their source; api_key and webhook only as set (from FILE); a
    readable file holding them is warned about without the values."""
    file = _write(
        home / "shadeanalytics.toml",
        f'api_key = "{SECRET}"\nwebhook = "{HOOK}"\nstore = "h.db"\n',
        mode=0o644,
    )
    code, out, err = _run("config")
    assert code == 0, err
    assert out == (
        f"settings file: {file} (working directory)\n"
        f"api_key             set (from {file})\n"
        "api_key_file        not set\n"
        "base_url            not set\n"
        f"store               {home / 'h.db'} (from {file})\n"
        "info_budget         50 (from default)\n"
        "info_max_age_hours  24.0 (from default)\n"
        "budgets             not set\n"
        f"webhook             set (from {file})\n"
        "as_of               latest (from default)\n"
        "report_dir          not set\n"
    )
    assert err == (
        f"Warning: {file}: the settings file holds api_key and webhook and other users "
        f"may read it (mode 0644); run chmod 600 {file}\n"
    )
    file.chmod(0o640)  # the group is other users too: the same rule as a key file
    assert _run("config")[2].endswith("(mode 0640); run chmod 600 " f"{file}\n")
    file.chmod(0o600)
    code, out, err = _run("config")
    assert (code, err) == (0, "")
    assert SECRET not in out + err and "canary-hook-token" not in out + err


def test_the_environment_key_is_shown_as_set_from_its_variable(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """SHADEFORM_API_KEY over the file's key: `set (from SHADEFORM_API_KEY)`."""
    _write(home / "shadeanalytics.toml", f'api_key = "{SECRET}"\n')
    monkeypatch.setenv("SHADEFORM_API_KEY", "env-" + SECRET)
    code, out, _ = _run("config")
    assert code == 0
    assert "api_key             set (from SHADEFORM_API_KEY)\n" in out
    assert SECRET not in out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            'stor = "x.db"\n',
            "unknown setting 'stor' (known: api_key, api_key_file, base_url, store, "
            "info_budget, info_max_age_hours, budgets, webhook, as_of, report_dir)",
        ),
        (f'info_budget = "{SECRET}"\n', "info_budget: expected a whole number, 0 or more"),
        (
            f"info_max_age_hours = -{len(SECRET)}\n",
            "info_max_age_hours: expected a number of hours, 0 or more",
        ),
        ("api_key = 42\n", "api_key: expected a non-empty text"),
        ('store = ""\n', "store: expected a non-empty text"),
        (f'api_key = "{SECRET}\n', "not a valid TOML file (at line 1, column 30)"),
        (f'[api_key]\n"{SECRET}" = 1\n', "api_key: expected a non-empty text"),
    ],
)
def test_a_bad_file_names_the_file_and_setting_never_the_value(
    home: Path, text: str, message: str
) -> None:
    """A bad settings file: exit 1, `Error: FILE: ...`, the value (maybe a key) never shown."""
    file = _write(home / "shadeanalytics.toml", text)
    code, out, err = _run("config")
    assert (code, out) == (1, "")
    assert err == f"Error: {file}: {message}\n"
    assert SECRET not in err


def test_a_file_too_large_or_not_text_is_refused(home: Path) -> None:
    """Over 64 KiB, or not UTF-8: an error naming the file."""
    file = home / "shadeanalytics.toml"
    file.write_text("# " + "x" * 70_000 + "\n")
    assert _run("config")[2] == (
        f"Error: {file}: cannot read the settings file (larger than "
        "the 65,536-byte limit for a settings file; refused)\n"
    )
    file.write_bytes(b'store = "\xff.db"\n')
    assert _run("config")[2] == (f"Error: {file}: cannot read the settings file (not UTF-8 text)\n")


def test_collect_takes_store_url_and_key_from_the_file_and_the_environment_wins(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """collect with no flag: the file's store, base URL and key; SHADEFORM_API_KEY over the
    file's key (a 401 naming the variable); --api-key-file over the variable."""
    monkeypatch.setenv("SHADEANALYTICS_NOW", "2026-03-02T10:00:00Z")
    with FakeShadeformAPI("file-key") as api:
        _write(
            home / "shadeanalytics.toml",
            f'store = "data/h.db"\nbase_url = "{api.url}"\napi_key = "file-key"\ninfo_budget = 0\n',
        )
        code, out, err = _run("collect", "--quiet")
        assert (code, err) == (0, "")
        assert out.startswith("poll 1 ok in ") and "0 instance details" in out
        assert (home / "data" / "h.db").is_file()
        monkeypatch.setenv("SHADEFORM_API_KEY", "wrong-key")
        code, out, err = _run("collect", "--quiet")
        assert code == 1
        assert "check SHADEFORM_API_KEY" in err and "wrong-key" not in err
        key_file = _write(home / "key.txt", "file-key\n")
        monkeypatch.setenv("SHADEANALYTICS_NOW", "2026-03-02T10:10:00Z")
        code, out, err = _run("collect", "--quiet", "--api-key-file", str(key_file))
        assert (code, err) == (0, "")
        assert out.startswith("poll 3 ok in ")


def test_collect_without_any_store_is_a_usage_error(home: Path) -> None:
    """No --store, variable or file setting: exit 2 naming the three ways."""
    code, _, err = _run("collect")
    assert code == 2
    assert err.endswith(
        "Error: no store: pass --store PATH, set SHADEANALYTICS_STORE or set "
        "store in shadeanalytics.toml\n"
    )


def test_report_takes_its_folder_and_as_of_from_the_file(home: Path) -> None:
    """report SOURCE with report_dir and as_of from the file; a bad as_of names the file."""
    file = _write(
        home / "shadeanalytics.toml", 'report_dir = "out"\nas_of = "2026-03-02T12:00:00Z"\n'
    )
    code, out, err = _run("report", str(SAMPLE_DIR), "--no-charts", "--no-html", "--quiet")
    assert code == 0, err
    assert out.startswith("wrote ") and out.endswith(
        f" files to {home / 'out'} (265 cluster rows, 1958 instance rows; as of "
        "2026-03-02T12:00:00Z)\n"
    ), out
    assert (home / "out" / "instances.csv").is_file()
    _write(file, 'report_dir = "out"\nas_of = "yesterday"\n')
    code, _, err = _run("report", str(SAMPLE_DIR), "--no-charts", "--quiet")
    assert code == 2
    assert err.endswith(
        f"Error: {file}: as_of: expected an ISO-8601 time with a zone, e.g. 2026-11-20T00:00:00Z\n"
    )


def test_check_takes_its_budgets_from_the_file(home: Path) -> None:
    """check SOURCE with budgets from the file (relative to it): the breach, exit 10."""
    _write(
        home / "rules" / "budgets.toml",
        '[[budget]]\nname = "tiny"\nmeasure = "running_instances"\nlimit = 1\n',
    )
    _write(home / "shadeanalytics.toml", 'budgets = "rules/budgets.toml"\nas_of = "latest"\n')
    code, out, err = _run("check", str(SAMPLE_DIR), "--dry-run", "--quiet")
    assert code == 10, err
    assert out.startswith("budget: 'tiny': running_instances is 102, above the limit 1\n")


def test_the_fast_clock_runs_speed_times_the_wall_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """SHADEANALYTICS_CLOCK: START at EPOCH, 3600 times faster; a bad value is named."""
    start = datetime(2026, 3, 2, 10, tzinfo=UTC)
    monkeypatch.delenv(config.NOW_ENV, raising=False)
    monkeypatch.setenv(config.CLOCK_ENV, config.clock_text(start, 3600, time.time() - 2.0))
    assert abs(config.now() - (start + timedelta(hours=2))) < timedelta(minutes=10)
    assert config.clock_text(start, 3600, 1.5) == "2026-03-02T10:00:00+00:00 3600 1.5"
    monkeypatch.setenv(config.CLOCK_ENV, "2026-03-02T10:00:00 3600 1.5")
    with pytest.raises(config.ConfigError) as caught:
        config.now()
    assert str(caught.value) == (
        "SHADEANALYTICS_CLOCK: expected START SPEED EPOCH (an "
        "ISO-8601 instant with a zone, a positive speed, a Unix time)"
    )
    monkeypatch.setenv(config.NOW_ENV, "2026-03-02T10:00:00Z")  # the fixed clock wins
    assert config.now() == start
    assert default_scenario()[0].at == start
