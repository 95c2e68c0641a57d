"""Configuration: one rule for an API key (library, environment, key file) and one clock."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from shadeanalytics import config
from shadeanalytics.cli import main
from shadeanalytics.live.client import ShadeformClient
from shadeanalytics.testing.fakeapi import FakeShadeformAPI

KEY = "sk-test-4f1c"


@pytest.mark.parametrize("given", [KEY + "\n", "  " + KEY + "\r\n", "\ufeff" + KEY + "\n"])
def test_a_key_with_a_newline_or_bom_works_from_the_library_and_the_environment(
        given: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """What the command line accepts (it always stripped) the library accepts too."""
    with FakeShadeformAPI(api_key=KEY) as api:
        with ShadeformClient(api_key=given, base_url=api.url) as client:
            assert "instances" in client.instances()
        monkeypatch.setenv(config.API_KEY_ENV, given)
        with ShadeformClient(base_url=api.url) as client:
            assert "instances" in client.instances()
    assert config.clean_key(given) == KEY


def test_where_a_key_came_from(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """api_key() says where the key came from: variable, argument or key file."""
    monkeypatch.setenv(config.API_KEY_ENV, KEY + "\n")
    assert config.api_key() == (KEY, "SHADEFORM_API_KEY")
    assert config.api_key("x ") == ("x", "api_key=")
    path = tmp_path / "key"
    path.write_bytes(b"\xef\xbb\xbf" + KEY.encode() + b"\n")
    path.chmod(0o600)
    assert config.api_key(key_file=path) == (KEY, f"--api-key-file {path}")
    path.write_text("\n")
    with pytest.raises(config.ConfigError) as info:
        config.api_key(key_file=path)
    assert str(info.value) == f"{path}: the API key file is empty"
    monkeypatch.delenv(config.API_KEY_ENV)
    assert config.api_key() == ("", "SHADEFORM_API_KEY")


def test_base_url_and_webhook_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    """base_url() and webhook_url() read the argument, then the variable, then the default."""
    monkeypatch.delenv(config.BASE_URL_ENV, raising=False)
    monkeypatch.delenv(config.WEBHOOK_URL_ENV, raising=False)
    assert config.base_url() == (None, "default")
    assert config.webhook_url() is None
    monkeypatch.setenv(config.BASE_URL_ENV, "http://127.0.0.1:9/v1")
    assert config.base_url() == ("http://127.0.0.1:9/v1", "SHADEFORM_BASE_URL")
    assert config.base_url("http://x/v1") == ("http://x/v1", "--base-url")
    monkeypatch.setenv(config.WEBHOOK_URL_ENV, "http://127.0.0.1:9/hook")
    assert config.webhook_url() == "http://127.0.0.1:9/hook"


def test_now_is_the_wall_clock_unless_shadeanalytics_now_sets_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """SHADEANALYTICS_NOW (any zone) is the instant, in UTC; unset is the wall clock; a time
    without a zone is refused, naming the variable."""
    monkeypatch.delenv(config.NOW_ENV, raising=False)
    before = datetime.now(UTC)
    assert before <= config.now() <= datetime.now(UTC)
    monkeypatch.setenv(config.NOW_ENV, "2026-03-02T12:30:00+02:00")
    assert config.now() == datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
    assert config.now().tzinfo is UTC
    for bad in ("2026-03-02T10:30:00", "yesterday"):
        monkeypatch.setenv(config.NOW_ENV, bad)
        with pytest.raises(config.ConfigError, match=r"^SHADEANALYTICS_NOW: not an ISO-8601 "
                                                     r"instant with a zone"):
            config.now()


def test_a_bad_clock_stops_collect_before_the_store_exists(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """collect with a SHADEANALYTICS_NOW that is not an instant: exit 1, one Error line naming
    the variable (not its value), no store file, no request."""
    monkeypatch.setenv(config.NOW_ENV, "tomorrow-ish")
    monkeypatch.setenv(config.API_KEY_ENV, KEY)
    out, err = io.StringIO(), io.StringIO()
    with FakeShadeformAPI(api_key=KEY) as api:
        code = main(["collect", "--store", str(tmp_path / "h.db"), "--base-url", api.url],
                    stdout=out, stderr=err)
        assert api.requests == []
    assert (code, out.getvalue()) == (1, "")
    assert err.getvalue() == ("Error: SHADEANALYTICS_NOW: not an ISO-8601 instant with a zone "
                              "(e.g. 2026-03-02T10:00:00Z)\n")
    assert list(tmp_path.iterdir()) == []
