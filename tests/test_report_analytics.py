"""The report's analytics files and the summary give the library's numbers."""

from __future__ import annotations

import csv
import io
import struct
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import SAMPLE_DIR

import shadeanalytics as sa
from shadeanalytics.analytics.costs import cost_breakdown
from shadeanalytics.analytics.inventory import gpu_inventory
from shadeanalytics.cli import main
from shadeanalytics.output.plots import CHART_FILES
from shadeanalytics.output.report import ANALYTICS_FILES, resolve_as_of, summary_text, write_report

AS_OF = pd.Timestamp("2026-11-20T00:00:00Z")  # the sample's last poll


@pytest.fixture(scope="module")
def sample() -> sa.Tables:
    """The bundled sample fleet (every snapshot)."""
    return sa.read(SAMPLE_DIR)


@pytest.fixture(scope="module")
def summary(sample: sa.Tables) -> str:
    """The sample's summary as of its newest poll (computed once for the module)."""
    return summary_text(sample, as_of=AS_OF)


def _csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_report_writes_every_analytics_file(shared_sample_report: tuple[Path, list[str]]
                                            ) -> None:
    """Every file of ANALYTICS_FILES is written after the tables and their versions; each
    chart is a PNG of sane size without the software's name in its metadata."""
    files = shared_sample_report[1]  # write_report(sample, folder) returned, as of AS_OF
    for name in CHART_FILES:
        data = (shared_sample_report[0] / f"{name}.png").read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n"), name
        assert b"Software" not in data and b"Matplotlib" not in data, name
        width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk
        assert 500 <= width <= 2000 and 300 <= height <= 2000, (name, width, height)
    assert files == [
        "clusters.csv", "instances.csv", "instance_types.csv", "versions/clusters.parquet",
        "versions/instances.parquet", "versions/instance_types.parquet",
        *(f"{name}.csv" for name in ANALYTICS_FILES), "forecast.csv", "timeline.csv",
        "fleet_over_time.csv", "costs_daily.csv", "costs_monthly.csv", "savings.csv",
        "market_prices.csv",
        *(f"{name}.png" for name in CHART_FILES), "index.html"]


def test_no_charts_writes_csv_only_without_loading_matplotlib(tmp_path: Path) -> None:
    """report --no-charts writes no PNG, and matplotlib is never imported."""
    code = (
        "import sys\n"
        "from shadeanalytics.cli import main\n"
        f"assert main(['report', {str(SAMPLE_DIR)!r}, '--out', {str(tmp_path)!r}, "
        "'--no-charts']) == 0\n"
        "print('matplotlib' in sys.modules)\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert run.stdout.splitlines()[-1] == "False"
    assert not list(tmp_path.glob("*.png"))
    assert sorted(p.name for p in tmp_path.glob("*.csv")) == sorted([
        "clusters.csv", "instances.csv", "instance_types.csv",
        *(f"{name}.csv" for name in ANALYTICS_FILES), "forecast.csv", "timeline.csv",
        "fleet_over_time.csv", "costs_daily.csv", "costs_monthly.csv", "savings.csv",
        "market_prices.csv"])


def test_report_csv_equals_the_library(tmp_path: Path, sample: sa.Tables) -> None:
    """costs_by_cloud.csv and gpu_inventory.csv hold the library's figures, rounded to 1e-6."""
    write_report(sample, tmp_path, as_of=AS_OF, charts=False)
    library = cost_breakdown(sample, by="cloud", as_of=AS_OF)
    rows = _csv(tmp_path / "costs_by_cloud.csv")
    assert [r["cloud"] for r in rows] == library["cloud"].tolist()
    for row, (_, expected) in zip(rows, library.iterrows(), strict=True):
        for column in ("hourly_usd", "monthly_usd", "accrued_usd", "reported_cost_usd"):
            assert float(row[column]) == pytest.approx(expected[column], abs=1e-6)
        assert int(row["gpus"]) == expected["gpus"]
    inventory = gpu_inventory(sample, as_of=AS_OF)
    assert [int(r["gpus"]) for r in _csv(tmp_path / "gpu_inventory.csv")] == \
        inventory["gpus"].tolist()


def test_summary_saving_is_savings_csv_positive_rows(tmp_path: Path, sample: sa.Tables,
                                                    summary: str) -> None:
    """One sign, one figure: summary's saving is savings.csv's positive rows summed, by hand
    101,207.20 + 1,087.70 + 934.40 + 737.30 + 153.30 + 87.60 + 29.20 = 104,236.70."""
    from shadeanalytics.output.csvout import write_csv

    write_csv(sa.market_compare(sample, as_of=AS_OF), tmp_path / "savings.csv")
    saving = [float(r["monthly_saving_usd"]) for r in _csv(tmp_path / "savings.csv")]
    assert saving[0] == 101207.2  # the top row: not the total
    assert round(sum(v for v in saving if v > 0), 2) == 104236.70
    line = [t for t in summary.splitlines() if "elsewhere" in t]
    assert line == ["  the same GPUs elsewhere: $104,236.70/month to save (7 of 13 running "
                    "instance types have a cheaper available on-demand offer: their "
                    "monthly_saving_usd in savings.csv summed)"]


def test_summary_shows_the_library_totals(sample: sa.Tables, summary: str) -> None:
    """The summary's burn rate, month projection and accrued total are the library's."""
    costs = cost_breakdown(sample, by="cloud", as_of=AS_OF)
    hourly = costs["hourly_usd"].sum()
    text = summary
    assert f"burn rate: ${hourly:,.2f}/h = ${hourly * 24:,.2f}/day = " \
        f"${hourly * 730:,.2f}/month (730 h)" in text
    assert f"accrued so far: ${costs['accrued_usd'].sum():,.2f}" in text
    assert text.startswith("Shadeform fleet as of 2026-11-20T00:00:00Z\n")
    out = io.StringIO()
    assert main(["summary", str(SAMPLE_DIR)], stdout=out) == 0
    assert out.getvalue() == text  # the CLI's default as-of is the newest snapshot


def test_summary_counts_no_placeholder_as_a_group(sample: sa.Tables) -> None:
    """The top-costs count leaves (standalone) and (storage) out of the clusters it counts."""
    text = summary_text(sample, as_of=AS_OF, by="cluster_id", top=3).splitlines()
    assert "  (28 groups + (standalone) + (storage), 3 shown)" in text
    clusters = cost_breakdown(sample, by="cluster_id", as_of=AS_OF)["cluster_id"]
    assert len(clusters) == 30 and clusters.str.startswith("(").sum() == 2
    text = summary_text(sample, as_of=AS_OF, by="gpu_type", top=3).splitlines()
    assert "  (9 groups + (storage), 3 shown)" in text


def test_summary_by_an_unknown_dimension_is_refused(sample: sa.Tables) -> None:
    """summary_text checks its dimension."""
    with pytest.raises(ValueError, match="by must be one of cloud, region"):
        summary_text(sample, by="colour", as_of=AS_OF)


def test_as_of_latest_now_and_explicit(sample: sa.Tables) -> None:
    """latest is the newest observation, now is now, a zoned time is itself."""
    assert resolve_as_of("latest", sample) == AS_OF
    assert resolve_as_of(None, sample) == AS_OF
    assert resolve_as_of("2026-11-19T12:00:00+01:00", sample) == pd.Timestamp(
        "2026-11-19T11:00:00Z")
    assert abs(resolve_as_of("now", sample) - pd.Timestamp.now(tz="UTC")) < pd.Timedelta("1min")
    assert abs(resolve_as_of("latest", sa.Tables.empty()) - pd.Timestamp.now(tz="UTC")) \
        < pd.Timedelta("1min")


def test_cli_report_as_of_and_usage_errors(tmp_path: Path) -> None:
    """--as-of takes a zoned time; a naive one is a usage error (exit 2)."""
    out, err = io.StringIO(), io.StringIO()
    code = main(["report", str(SAMPLE_DIR), "--out", str(tmp_path), "--no-charts", "--as-of",
                 "2026-11-19T00:00:00Z"], stdout=out, stderr=err)
    assert code == 0
    assert out.getvalue().endswith("as of 2026-11-19T00:00:00Z)\n")
    assert main(["report", str(SAMPLE_DIR), "--out", str(tmp_path), "--as-of",
                 "2026-11-19"], stdout=out, stderr=err) == 2


def test_latest_passes_over_a_poll_dated_in_the_future() -> None:
    """A poll recorded while the clock was ahead (2036) is not what 'latest' bills up to."""
    from conftest import envelope, make_instance

    docs = [envelope({"instances": [make_instance("a")]}, "2026-11-20T00:00:00Z", "/instances"),
            envelope({"instances": [make_instance("a")]}, "2036-01-01T00:00:00Z", "/instances")]
    assert resolve_as_of("latest", sa.read(docs)) == pd.Timestamp("2026-11-20T00:00:00Z")


def test_report_with_budgets_writes_their_state(tmp_path: Path) -> None:
    """report --budgets: budgets.csv and the page's Budgets section, breached or not; a
    malformed file is a usage error that writes nothing."""
    rules = tmp_path / "budgets.toml"
    rules.write_text('[[budget]]\nname = "fleet burn"\nmeasure = "hourly_usd"\nlimit = 400.0\n'
                     '[[budget]]\nname = "crusoe gpus"\nmeasure = "running_gpus"\n'
                     'limit = 1000\n[budget.where]\ncloud = "crusoe"\n')
    out = tmp_path / "r"
    assert main(["report", str(SAMPLE_DIR), "--out", str(out), "--no-charts", "--budgets",
                 str(rules)], stdout=io.StringIO()) == 0
    rows = _csv(out / "budgets.csv")
    assert [(r["budget"], r["where"], r["value"], r["limit"], r["breached"]) for r in rows] == [
        ("fleet burn", "", "1669.42", "400.0", "true"),
        ("crusoe gpus", "cloud=crusoe", "164.0", "1000.0", "false")]
    assert 'data-frame="budgets"' in (out / "index.html").read_text()
    rules.write_text('[[budget]]\nname = "x"\nmeasure = "colour"\nlimit = 1\n')
    err = io.StringIO()
    assert main(["report", str(SAMPLE_DIR), "--out", str(tmp_path / "r2"), "--budgets",
                 str(rules)], stdout=io.StringIO(), stderr=err) == 2
    assert not (tmp_path / "r2").exists()


def test_report_and_summary_bill_the_fleet_once(
        tmp_path: Path, sample: sa.Tables, monkeypatch: pytest.MonkeyPatch) -> None:
    """One report (every CSV, the forecast, the history and marketplace files, budgets and
    the page) and one summary each bill the sources once: every helper takes the one
    ``Bill``. Counted where the billed intervals are computed, which every real billing (not
    a ``bill_fleet(Bill)`` pass-through) does, through a wrapper that runs the real function.
    (That the charts compute no frame, a bill included, is tests/test_plots.py's check.)"""
    from shadeanalytics.analytics import billing
    from shadeanalytics.analytics.alerts import Budget

    real = billing._billed_intervals
    calls: list[int] = []

    def counted(*args: object, **kwargs: object) -> object:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(billing, "_billed_intervals", counted)
    budgets = [Budget("month", "month_forecast_usd", 1.0), Budget("burn", "hourly_usd", 1.0)]
    files = write_report(sample, tmp_path / "report", as_of=AS_OF, budgets=budgets,
                         charts=False)
    assert len(calls) == 1
    names = {f.name for f in files}
    assert {"forecast.csv", "costs_daily.csv", "fleet_over_time.csv", "savings.csv",
            "market_prices.csv", "budgets.csv", "index.html"} <= names
    forecast = _csv(tmp_path / "report" / "forecast.csv")
    assert float(forecast[0]["month_to_date_usd"]) > 0  # the wrapped billing really ran
    calls.clear()
    text = summary_text(sample, as_of=AS_OF, by="tag")
    assert len(calls) == 1
    assert "so far; forecast" in text and "the same GPUs elsewhere" in text
