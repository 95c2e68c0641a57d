"""Savings against the marketplace: market_compare and price_history on small hand-built
fleets and catalogs, the report's files, the summary line, and the store's sparse rows."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import envelope, make_instance

import shadeanalytics as sa
from shadeanalytics.analytics.market import (
    MARKET_COLUMNS,
    PRICE_HISTORY_COLUMNS,
    market_compare,
    potential_monthly_saving_usd,
    price_history,
)
from shadeanalytics.cli import main
from shadeanalytics.live.store import Store

AS_OF = pd.Timestamp("2026-11-20T02:00:00Z")


def offer(cloud: str, itype: str, gpu: str, gpus: int, regions: list[tuple[str, str, bool, int]]
          ) -> dict[str, Any]:
    """A catalog entry; regions: (region, rental_type, available, hourly price in cents). As
    the API sends it: the on-demand price in cents on the type (the first on-demand entry's
    here), a spot entry's own price as a decimal dollar string."""
    def entry(region: str, rental: str, available: bool, cents: int) -> dict[str, Any]:
        found = {"region": region, "available": available, "display_name": region,
                 "rental_type": rental}
        if rental == "spot":
            found["hourly_price"] = f"{cents / 100:.2f}"
        return found

    return {
        "cloud": cloud, "shade_instance_type": itype, "cloud_instance_type": itype.lower(),
        "hourly_price": next(c for _, t, _, c in regions if t == "on_demand"),
        "configuration": {"memory_in_gb": 64, "storage_in_gb": 512, "vcpus": 16,
                          "num_gpus": gpus, "gpu_type": gpu, "interconnect": "sxm",
                          "vram_per_gpu_in_gb": 80, "gpu_manufacturer": "nvidia",
                          "nvlink": True, "os_options": ["ubuntu_22_shade_os"]},
        "availability": [entry(*region) for region in regions],
        "boot_time": {"min_boot_in_sec": 60, "max_boot_in_sec": 300},
        "deployment_type": "vm",
    }


CATALOG = [
    # 8 x H100: on demand $20.00 -> $2.50/GPU-h (available; unavailable in eu-north1);
    # spot $12.00 -> $1.50
    offer("nebius", "H100_sxm5x8", "H100", 8, [("us-central1", "on_demand", True, 2000),
                                               ("eu-north1", "on_demand", False, 2000),
                                               ("eu-north1", "spot", True, 1200)]),
    # 8 x H100 elsewhere: $22.40 -> $2.80
    offer("crusoe", "H100x8", "H100", 8, [("us-east1", "on_demand", True, 2240)]),
    # 1 x H100: another GPU count, never compared with 8-GPU instances
    offer("hyperstack", "H100", "H100", 1, [("canada-1", "on_demand", True, 190)]),
    # 1 x A6000 at $0.70: dearer than our $0.65
    offer("hyperstack", "A6000", "A6000", 1, [("canada-1", "on_demand", True, 70)]),
]
#: an older catalog with a much cheaper offer: must not count
OLD = [offer("vultr", "H100x8", "H100", 8, [("ewr", "on_demand", True, 800)])]


def fleet_docs() -> list[dict[str, Any]]:
    h100 = {"cloud": "crusoe", "shade_instance_type": "H100x8", "gpu_type": "H100",
            "num_gpus": 8, "hourly_price": 2400}
    instances = [
        make_instance("h1", **h100), make_instance("h2", **h100),
        make_instance("p1", status="pending", active_at=None, **h100),  # not running
        make_instance("a1", hourly_price=65),  # A6000, 1 GPU
        make_instance("c1", gpu_type="CPU", num_gpus=0, shade_instance_type="cpu4",
                      hourly_price=10),
    ]
    return [
        envelope({"instance_types": OLD}, "2026-11-19T00:00:00Z", "/instances/types"),
        envelope({"instances": instances}, "2026-11-20T01:00:00Z", "/instances"),
        envelope({"instance_types": CATALOG}, "2026-11-20T01:00:00Z", "/instances/types"),
        # after as_of: ignored
        envelope({"instance_types": OLD}, "2026-11-20T03:00:00Z", "/instances/types"),
    ]


def test_market_compare_by_hand() -> None:
    """market_compare's columns, dtypes and savings are the hand-computed ones."""
    out = market_compare(sa.read(fleet_docs()), as_of=AS_OF)
    assert list(out.columns) == list(MARKET_COLUMNS)
    assert out.dtypes.astype(str).to_dict() == MARKET_COLUMNS
    rows = out.astype(object).where(out.notna(), None).to_dict("records")
    # H100x8: 2 x $24.00 over 16 GPUs = $3.00; nebius $2.50: (3.00 - 2.50) x 16 = $8.00/h,
    # x 730 = $5,840/month; spot $1.50: $24.00/h, $17,520/month; 2 on-demand offers available
    assert rows[0] == pytest.approx({
        "shade_instance_type": "H100x8", "gpu_type": "H100", "num_gpus": 8,
        "running_instances": 2, "gpus_running": 16, "hourly_usd": 48.0,
        "usd_per_gpu_hour": 3.0, "market_usd_per_gpu_hour": 2.5, "market_cloud": "nebius",
        "market_region": "us-central1", "market_shade_instance_type": "H100_sxm5x8",
        "hourly_saving_usd": 8.0, "monthly_saving_usd": 5840.0,
        "spot_usd_per_gpu_hour": 1.5, "spot_cloud": "nebius", "spot_region": "eu-north1",
        "spot_shade_instance_type": "H100_sxm5x8", "spot_hourly_saving_usd": 24.0,
        "spot_monthly_saving_usd": 17520.0, "offers_available": 2,
        "instances_without_price": 0})
    # A6000: we pay $0.65, the market asks $0.70: -$0.05/h, -$36.50/month; no spot offer
    assert rows[1] == pytest.approx({
        "shade_instance_type": "A6000", "gpu_type": "A6000", "num_gpus": 1,
        "running_instances": 1, "gpus_running": 1, "hourly_usd": 0.65,
        "usd_per_gpu_hour": 0.65, "market_usd_per_gpu_hour": 0.70,
        "market_cloud": "hyperstack", "market_region": "canada-1",
        "market_shade_instance_type": "A6000", "hourly_saving_usd": -0.05,
        "monthly_saving_usd": -36.5, "spot_usd_per_gpu_hour": None, "spot_cloud": None,
        "spot_region": None, "spot_shade_instance_type": None,
        "spot_hourly_saving_usd": None, "spot_monthly_saving_usd": None,
        "offers_available": 1, "instances_without_price": 0})
    assert len(rows) == 2  # the pending H100x8 and the CPU-only instance are left out
    assert potential_monthly_saving_usd(out) == pytest.approx(5840.0)


def test_no_catalog_and_no_fleet() -> None:
    """No catalog: NA market prices; no fleet: an empty frame with the columns, saving 0."""
    docs = fleet_docs()[1:2]
    out = market_compare(sa.read(docs), as_of=AS_OF)
    assert out["market_usd_per_gpu_hour"].isna().all() and len(out) == 2
    assert out["offers_available"].tolist() == [0, 0]
    empty = market_compare(sa.read(fleet_docs()[2:3]), as_of=AS_OF)
    assert empty.empty and list(empty.columns) == list(MARKET_COLUMNS)
    assert potential_monthly_saving_usd(empty) == 0.0


def _types(catalog: list[dict[str, Any]], when: str) -> dict[str, Any]:
    return envelope({"instance_types": catalog}, when, "/instances/types")


def _two_days() -> list[tuple[str, list[dict[str, Any]]]]:
    x = offer("nebius", "H100_sxm5x8", "H100", 8, [("us-central1", "on_demand", True, 2000)])
    y = offer("crusoe", "H100x8", "H100", 8, [("us-east1", "on_demand", True, 2240)])
    z = offer("nebius", "H100_sxm5x8b", "H100", 8, [("eu-north1", "on_demand", False, 1600)])
    y_later = offer("crusoe", "H100x8", "H100", 8, [("us-east1", "on_demand", True, 2400)])
    x_gone = offer("nebius", "H100_sxm5x8", "H100", 8, [("us-central1", "on_demand", False,
                                                         2000)])
    return [("2026-11-19T00:00:00Z", [x, y, z]), ("2026-11-19T12:00:00Z", [x, y_later, z]),
            ("2026-11-20T00:00:00Z", [x_gone])]


def test_price_history_by_hand() -> None:
    """price_history keeps each day's last poll of the catalogue, by hand."""
    out = price_history(sa.read([_types(c, w) for w, c in _two_days()]))
    assert list(out.columns) == list(PRICE_HISTORY_COLUMNS)
    assert out.dtypes.astype(str).to_dict() == PRICE_HISTORY_COLUMNS
    # Nov 19 at its last poll: x $2.50, y $3.00 (repriced at 12:00), z unavailable
    # Nov 20: only x, unavailable; y and z were not listed again
    assert out[["day", "gpu_type", "rental_type", "offers", "offers_available"]].astype(
        str).to_numpy().tolist() == [
        ["2026-11-19 00:00:00+00:00", "H100", "on_demand", "3", "2"],
        ["2026-11-20 00:00:00+00:00", "H100", "on_demand", "1", "0"]]
    assert out["share_available"].tolist() == pytest.approx([2 / 3, 0.0])
    assert out["cheapest_usd_per_gpu_hour"].tolist()[0] == pytest.approx(2.5)
    assert out["median_usd_per_gpu_hour"].tolist()[0] == pytest.approx(2.75)
    assert np.isnan(out["cheapest_usd_per_gpu_hour"].iloc[1])


def test_price_history_from_the_store_fills_unchanged_days(tmp_path: Path) -> None:
    """The store keeps a row per version (first and last sighting): a day in between with no
    row still counts the offer."""
    x = offer("nebius", "H100_sxm5x8", "H100", 8, [("us-central1", "on_demand", True, 2000)])
    with Store(tmp_path / "h.db") as store:
        for day in ("19", "20", "21"):
            store.record_poll(f"2026-11-{day}T06:00:00Z", clusters=None, instances=None,
                              instance_types={"instance_types": [x]})
        tables = store.read()
    assert sorted(tables.instance_types["observed_at"].dt.day.tolist()) == [19, 21]
    out = price_history(tables)
    assert out["day"].dt.day.tolist() == [19, 20, 21]
    assert out["offers"].tolist() == [1, 1, 1]
    assert out["cheapest_usd_per_gpu_hour"].tolist() == pytest.approx([2.5] * 3)


def test_report_and_summary(tmp_path: Path) -> None:
    """The report writes savings.csv and market_prices.csv; the summary has the savings line."""
    source = tmp_path / "fleet.jsonl"
    import json

    source.write_text("".join(json.dumps(d) + "\n" for d in fleet_docs()))
    out = tmp_path / "report"
    assert main(["report", str(source), "--out", str(out), "--as-of", "2026-11-20T02:00:00Z",
                 "--no-charts", "--no-html"], stdout=io.StringIO()) == 0
    savings = (out / "savings.csv").read_text().splitlines()
    assert savings[0].split(",")[:13] == list(MARKET_COLUMNS)[:13]
    assert savings[0].split(",")[12] == "monthly_saving_usd"
    assert savings[1].split(",")[12] == "5840.0"
    assert savings[2].split(",")[12] == "-36.5"
    prices = (out / "market_prices.csv").read_text().splitlines()
    assert prices[0] == ("day,gpu_type,rental_type,offers,offers_available,share_available,"
                         "cheapest_usd_per_gpu_hour,median_usd_per_gpu_hour")
    text = io.StringIO()
    assert main(["summary", str(source), "--as-of", "2026-11-20T02:00:00Z"], stdout=text) == 0
    assert ("  the same GPUs elsewhere: $5,840.00/month to save (1 of 2 running instance types "
            "have a cheaper available on-demand offer: their monthly_saving_usd in savings.csv "
            "summed)") in text.getvalue().splitlines()


def test_savings_chart_renders() -> None:
    """The savings chart has the exact title, labels and bar widths, and renders."""
    from shadeanalytics.output.plots import _agg_axes, plot_savings

    compare = market_compare(sa.read(fleet_docs()), as_of=AS_OF)
    ax = plot_savings(compare, ax=_agg_axes((8, 3)))
    assert ax.get_title() == ("The same GPUs elsewhere\n$5,840/month to save at the cheapest "
                              "available on-demand offers")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["H100x8 (16 GPUs)", "A6000 (1 GPU)"]
    assert [round(p.get_width(), 2) for p in ax.patches] == [3.0, 0.65]  # type: ignore[attr-defined]
    buffer = io.BytesIO()
    figure = ax.get_figure(root=True)
    assert figure is not None
    figure.savefig(buffer, format="png")
    assert buffer.getvalue().startswith(b"\x89PNG")
