"""One calling convention for the analytics helpers (the fleet first, as ``fleet``; ``as_of``
and the rest keyword-only), the renamed helpers, and the old spellings kept for one release
with a ``DeprecationWarning`` (``shadeanalytics._compat``)."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from conftest import ROOT, cli_env, envelope, make_instance

import shadeanalytics as sa
from shadeanalytics._compat import old_spellings
from shadeanalytics.analytics import alerts, billing, finops, lifecycle, market, timeline
from shadeanalytics.errors import ReportError
from shadeanalytics.live import check, notify
from shadeanalytics.output import report

# a: A6000 at $2.10/h, active from 00:00; b: 4 x H100 at $8.40/h, active from 06:00
POLLS = ["2026-11-01T00:00:00Z", "2026-11-01T06:00:00Z", "2026-11-01T12:00:00Z"]
AT = pd.Timestamp(POLLS[-1])


def _a() -> dict[str, Any]:
    return make_instance("a", created_at="2026-10-31T23:50:00Z", active_at="2026-11-01T00:00:00Z")


def _b() -> dict[str, Any]:
    return make_instance(
        "b",
        cloud="nebius",
        region="us-central1",
        shade_instance_type="H100x4",
        gpu_type="H100",
        num_gpus=4,
        hourly_price=840,
        created_at="2026-11-01T05:50:00Z",
        active_at="2026-11-01T06:00:00Z",
    )


@pytest.fixture(scope="module")
def tables() -> sa.Tables:
    """Three polls: a alone, then a and b."""
    listed = [[_a()], [_a(), _b()], [_a(), _b()]]
    return sa.read(
        [
            envelope({"instances": rows}, when, "/instances")
            for when, rows in zip(POLLS, listed, strict=True)
        ]
    )


@pytest.fixture(scope="module")
def billed(tables: sa.Tables) -> sa.Bill:
    """The fleet billed at 12:00."""
    return sa.bill_fleet(tables, as_of=AT)


def _silent(call: Callable[[], Any]) -> Any:
    """``call()``, failing on any DeprecationWarning: the new spelling is silent."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        return call()


def _same(old: Any, new: Any) -> None:
    if isinstance(new, sa.Bill):
        old, new = old.instances, new.instances
    if isinstance(new, pd.DataFrame):
        pd.testing.assert_frame_equal(old, new)
    else:
        assert old == new


def test_a_bill_carries_its_history(tables: sa.Tables, billed: sa.Bill) -> None:
    """A Bill is a fleet: the helpers take it first, and billing it at another as_of bills
    its own history again (hand-computed dollars)."""
    # 12 h of a at $2.10 + 6 h of b at $8.40 = 25.20 + 50.40
    assert _silent(lambda: sa.cost_breakdown(billed, by="cloud"))[["cloud", "accrued_usd"]].to_dict(
        "records"
    ) == [
        {"cloud": "nebius", "accrued_usd": pytest.approx(50.40)},
        {"cloud": "hyperstack", "accrued_usd": pytest.approx(25.20)},
    ]
    assert billed.history is tables
    earlier = _silent(lambda: sa.bill_fleet(billed, as_of="2026-11-01T09:00:00Z"))
    # 9 h of a + 3 h of b
    assert earlier.instances.set_index("instance_id")["accrued_usd"].to_dict() == {
        "a": pytest.approx(18.90),
        "b": pytest.approx(25.20),
    }
    forecast = _silent(lambda: sa.month_forecast(billed))
    # month to date: the 75.60 accrued; the burn $10.50/h for the 708 h left of November
    assert forecast.loc[0, "month_to_date_usd"] == pytest.approx(75.60)
    assert forecast.loc[0, "forecast_usd"] == pytest.approx(75.60 + 10.50 * 708)
    hand_made = billing.Bill(
        as_of=AT,
        instances=billed.instances,
        clusters=billed.clusters,
        instance_tags=billed.instance_tags,
        intervals=billed.intervals,
        snapshots=3,
    )
    with pytest.raises(
        ValueError,
        match="price_history needs the Tables this Bill was billed from; this one carries none",
    ):
        sa.price_history(hand_made)


#: The helpers of the convention: the fleet first, named ``fleet``, everything else by keyword.
CONVENTION = [
    sa.bill_fleet,
    sa.cost_breakdown,
    sa.cluster_summary,
    sa.gpu_inventory,
    sa.instance_lifecycle,
    sa.boot_stats,
    sa.quality_checks,
    sa.status_timeline,
    sa.fleet_over_time,
    sa.cost_over_time,
    sa.month_forecast,
    sa.market_compare,
    sa.price_history,
    finops.billed_items,
    finops.billed_cost_between,
    market.latest_catalog,
    alerts.evaluate,
    alerts.budget_state,
    alerts.billed_usd_between,
    alerts.month_figures,
]


@pytest.mark.parametrize("helper", CONVENTION, ids=lambda f: f.__name__)
def test_the_fleet_first_and_the_rest_by_keyword(helper: Callable[..., Any]) -> None:
    """Each helper's first parameter is ``fleet``; every other one is keyword-only."""
    params = list(inspect.signature(helper).parameters.values())
    assert params[0].name == "fleet"
    assert params[0].kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    assert [p.name for p in params[1:] if p.kind is not inspect.Parameter.KEYWORD_ONLY] == []


#: The old spellings, called through ``Any``: a type checker rightly refuses them.
old_sa: Any = sa
old_report: Any = report
old_alerts: Any = alerts
old_billing: Any = billing
old_finops: Any = finops
old_lifecycle: Any = lifecycle
old_market: Any = market
old_timeline: Any = timeline


def _cases(
    tables: sa.Tables, billed: sa.Bill
) -> list[tuple[str, Callable[[], Any], Callable[[], Any]]]:
    """(what the warning says, the old spelling, the new one)."""
    life = sa.instance_lifecycle(tables, as_of=AT)
    spans = sa.status_timeline(tables, as_of=AT)
    return [
        (
            "bill() is deprecated",
            lambda: old_billing.bill(tables, AT),
            lambda: sa.bill_fleet(tables, as_of=AT),
        ),
        (
            "cost_breakdown() with positional by",
            lambda: old_sa.cost_breakdown(tables, "cloud"),
            lambda: sa.cost_breakdown(tables, by="cloud"),
        ),
        (
            "cost_breakdown(source=...)",
            lambda: old_sa.cost_breakdown(source=tables),
            lambda: sa.cost_breakdown(tables),
        ),
        (
            "gpu_inventory() with positional by",
            lambda: old_sa.gpu_inventory(tables, "cloud"),
            lambda: sa.gpu_inventory(tables, by="cloud"),
        ),
        (
            "lifecycle() is deprecated",
            lambda: old_lifecycle.lifecycle(tables, as_of=AT),
            lambda: sa.instance_lifecycle(tables, as_of=AT),
        ),
        (
            "boot_stats(<a lifecycle result>)",
            lambda: old_sa.boot_stats(life),
            lambda: sa.boot_stats(lifecycle=life),
        ),
        (
            "boot_stats(instances_or_lifecycle=...)",
            lambda: old_sa.boot_stats(instances_or_lifecycle=tables, as_of=AT),
            lambda: sa.boot_stats(tables, as_of=AT),
        ),
        (
            "cost_over_time() with positional freq, by",
            lambda: old_sa.cost_over_time(tables, "1h", "cloud", as_of=AT),
            lambda: sa.cost_over_time(tables, freq="1h", by="cloud", as_of=AT),
        ),
        (
            "billed_cost_between() with positional start, end",
            lambda: old_finops.billed_cost_between(tables, POLLS[1], AT, as_of=AT),
            lambda: finops.billed_cost_between(tables, start=POLLS[1], end=AT, as_of=AT),
        ),
        (
            "month_forecast(tables, billed=...)",
            lambda: old_sa.month_forecast(tables, billed=billed),
            lambda: sa.month_forecast(billed),
        ),
        (
            "market_compare(tables, billed=...)",
            lambda: old_sa.market_compare(tables, billed=billed),
            lambda: sa.market_compare(billed),
        ),
        (
            "price_history(history=...)",
            lambda: old_sa.price_history(history=tables),
            lambda: sa.price_history(tables),
        ),
        (
            "latest_catalog() with positional as_of",
            lambda: old_market.latest_catalog(tables, AT),
            lambda: market.latest_catalog(tables, as_of=AT),
        ),
        (
            "status_timeline(history=...)",
            lambda: old_sa.status_timeline(history=tables),
            lambda: sa.status_timeline(tables),
        ),
        (
            "time_in_status() with positional by",
            lambda: old_timeline.time_in_status(spans, "cloud"),
            lambda: timeline.time_in_status(spans, by="cloud"),
        ),
        (
            "evaluate() with positional budgets",
            lambda: old_alerts.evaluate(tables, [], as_of=AT),
            lambda: alerts.evaluate(tables, budgets=[], as_of=AT),
        ),
        (
            "evaluate(tables, billed=...)",
            lambda: old_alerts.evaluate(tables, billed=billed),
            lambda: alerts.evaluate(billed),
        ),
        (
            "cluster_summary(clusters, instances)",
            lambda: old_sa.cluster_summary(tables.clusters, tables.instances.iloc[-2:]),
            lambda: sa.cluster_summary(tables.latest()),
        ),
        (
            "shadeanalytics.usd is deprecated",
            lambda: old_sa.usd(1234.5),
            lambda: sa.format_usd(1234.5),
        ),
        (
            "shadeanalytics.total_monthly_saving is deprecated",
            lambda: old_sa.total_monthly_saving(sa.market_compare(billed)),
            lambda: sa.potential_monthly_saving_usd(sa.market_compare(billed)),
        ),
        (
            "shadeanalytics.lifecycle is deprecated",
            lambda: old_sa.lifecycle(tables, as_of=AT),
            lambda: sa.instance_lifecycle(tables, as_of=AT),
        ),
        (
            "analytics.alerts.send_webhook is deprecated",
            lambda: old_alerts.send_webhook,
            lambda: notify.send_webhook,
        ),
        (
            "analytics.alerts.run_check is deprecated",
            lambda: old_alerts.run_check,
            lambda: check.run_check,
        ),
    ]


def test_old_spellings_warn_and_give_the_same_result(tables: sa.Tables, billed: sa.Bill) -> None:
    """Each old spelling (positional as_of or by, an old parameter or function name, a moved
    name) warns with DeprecationWarning and gives what the new, silent spelling gives."""
    for says, old, new in _cases(tables, billed):
        with pytest.warns(DeprecationWarning, match=re.escape(says)):
            before = old()
        _same(before, _silent(new))


def test_old_load_budgets_path(tmp_path: Path) -> None:
    """``analytics.alerts.load_budgets`` still reads a budgets file, with a warning; the file
    is read by config and checked by alerts (``sa.load_budgets``)."""
    path = tmp_path / "budgets.toml"
    path.write_text('[[budget]]\nname = "burn"\nmeasure = "hourly_usd"\nlimit = 10\n')
    expected = [alerts.Budget("burn", "hourly_usd", 10.0)]
    assert _silent(lambda: sa.load_budgets(path)) == expected
    with pytest.warns(DeprecationWarning, match="use shadeanalytics.load_budgets"):
        assert old_alerts.load_budgets(path) == expected


def test_old_spellings_refuse_what_is_ambiguous(tables: sa.Tables) -> None:
    """Too many positional arguments, or an old and a new name at once: a TypeError."""
    with pytest.raises(
        TypeError,
        match=r"cost_breakdown\(\) takes 1 positional argument "
        "but 3 were given",
    ):
        old_sa.cost_breakdown(tables, "cloud", "region")
    with pytest.raises(TypeError, match="cost_breakdown\\(\\) got both 'source' and 'fleet'"):
        old_sa.cost_breakdown(tables, source=tables)
    with pytest.raises(TypeError, match="boot_stats\\(\\) takes a fleet"):
        sa.boot_stats()

    @old_spellings(positional=("by",))
    def helper(fleet: Any, *, by: str = "x") -> str:
        return by

    with pytest.raises(TypeError, match="got multiple values for argument 'by'"):
        old_helper: Any = helper
        old_helper(1, "a", by="b")


def _no_deprecation(tmp_path: Path, *commands: list[str]) -> None:
    """Each command, in a subprocess under ``-W error::DeprecationWarning``, exits 0 and says
    nothing on stderr."""
    for args in commands:
        run = subprocess.run(
            [
                sys.executable,
                "-W",
                "error::DeprecationWarning",
                "-m",
                "shadeanalytics",
                *args,
                "--as-of",
                "2026-11-20T00:00:00Z",
            ],
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=120,
            cwd=tmp_path,
        )
        assert (run.returncode, run.stderr) == (0, ""), args


_SAMPLE = str(ROOT / "shadeanalytics" / "sample")


@pytest.mark.hardening  # two CLI subprocesses; the fast tier errs on any package deprecation
def test_the_sample_report_and_summary_emit_no_deprecation_warning(tmp_path: Path) -> None:
    """``report`` (its CSV files) and ``summary`` of the sample under
    ``-W error::DeprecationWarning``: the package calls only the new spellings."""
    _no_deprecation(
        tmp_path,
        ["report", _SAMPLE, "--out", str(tmp_path / "report"), "--no-charts", "--no-html"],
        ["summary", _SAMPLE],
    )


@pytest.mark.hardening
def test_the_full_sample_report_emits_no_deprecation_warning(tmp_path: Path) -> None:
    """The whole report (charts and page too) under ``-W error::DeprecationWarning``."""
    _no_deprecation(tmp_path, ["report", _SAMPLE, "--out", str(tmp_path / "report")])


def _files(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its path there, with its bytes."""
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_write_report_takes_the_fleet_or_its_bill(tables: sa.Tables, billed: sa.Bill,
                                                  tmp_path: Path) -> None:
    """write_report(fleet, out): a Bill writes its history's report as of its own instant;
    the old keyword tables= warns; anything else, or a third positional, is refused."""
    options: dict[str, Any] = {"charts": False, "html": False}
    sa.write_report(tables, tmp_path / "tables", as_of=AT, **options)
    sa.write_report(billed, tmp_path / "bill", **options)
    expected = _files(tmp_path / "tables")
    assert "costs_by_cloud.csv" in expected
    assert _files(tmp_path / "bill") == expected
    # the old keyword reaches the report's own checks (a folder no report wrote: refused)
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "notes.txt").write_text("mine")
    with pytest.warns(DeprecationWarning,
                      match=r"^write_report\(tables=\.\.\.\) is deprecated and will be removed "
                            r"in 0\.3; use write_report\(fleet=\.\.\.\)$"), \
            pytest.raises(ReportError, match=r"holds 1 file\(s\) no report wrote"):
        old_sa.write_report(tables=tables, out=tmp_path / "old", as_of=AT, **options)
    with pytest.raises(TypeError, match=r"^write_report needs a Tables \(from shadeanalytics"
                                        r"\.read\(\) or Store\.read\(\)\) or a Bill, not a "
                                        r"DataFrame$"):
        sa.write_report(tables.instances, tmp_path / "frame")
    with pytest.raises(TypeError, match=r"^write_report\(\) takes 2 positional arguments but 3 "
                                        r"were given$"):
        old_sa.write_report(tables, tmp_path / "three", AT)
    assert not (tmp_path / "frame").exists() and not (tmp_path / "three").exists()


def test_report_frames_take_the_fleet_or_its_bill(tables: sa.Tables, billed: sa.Bill) -> None:
    """history_frames and analytics take the fleet first (a Bill: at its instant); the old
    spellings (tables=, billed=) warn and give the same frames."""
    expected = report.history_frames(tables, as_of=AT)
    assert list(expected) == ["timeline", "fleet_over_time", "costs_daily", "costs_monthly"]
    for name, frame in report.history_frames(billed).items():
        pd.testing.assert_frame_equal(frame, expected[name])
    with pytest.warns(DeprecationWarning,
                      match=r"^history_frames\(tables, billed=bill\) is deprecated and will be "
                            r"removed in 0\.3; use history_frames\(bill\)$"):
        old = old_report.history_frames(tables, billed=billed)
    for name, frame in old.items():
        pd.testing.assert_frame_equal(frame, expected[name])
    with pytest.warns(DeprecationWarning, match=r"^analytics\(tables=\.\.\.\) is deprecated"):
        old_frames = old_report.analytics(tables=tables, as_of=AT, only=["costs_by_cloud"])
    pd.testing.assert_frame_equal(old_frames["costs_by_cloud"],
                                  report.analytics(billed, only=["costs_by_cloud"])[
                                      "costs_by_cloud"])


def test_summary_text_takes_the_fleet_or_its_bill(tables: sa.Tables, billed: sa.Bill) -> None:
    """summary_text(fleet): a Bill that carries its history prints its history's summary at
    its instant, forecast included; tables= warns and prints the same."""
    expected = report.summary_text(tables, as_of=AT)
    assert "forecast" in expected
    assert report.summary_text(billed) == expected
    with pytest.warns(DeprecationWarning, match=r"^summary_text\(tables=\.\.\.\) is deprecated"):
        assert old_report.summary_text(tables=tables, as_of=AT) == expected
