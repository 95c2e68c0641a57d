"""Charts: what each helper draws, stable colours, no pyplot side effects, the PNG files."""

# matplotlib's type hints are looser than the artists a chart holds (a bar is a Patch, a legend
# Legend | None, offsets and colours ArrayLike): this file reads them back as drawn
# mypy: disable-error-code="attr-defined, union-attr, index, arg-type, misc"

from __future__ import annotations

import doctest
import functools
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # before pyplot: the tests never open a window

import matplotlib.dates as mdates
import matplotlib.image as mpimg
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from conftest import ROOT, SAMPLE_DIR
from matplotlib.axes import Axes
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from matplotlib.patches import StepPatch

import shadeanalytics
from shadeanalytics._common import usd
from shadeanalytics.analytics.billing import Bill, bill_fleet
from shadeanalytics.analytics.finops import cost_over_time
from shadeanalytics.analytics.timeline import fleet_over_time, status_timeline
from shadeanalytics.output import plots
from shadeanalytics.output.plots import (
    CLOUD_COLORS,
    STATUS_COLORS,
    color_for,
    plot_cost_breakdown,
    plot_cost_over_time,
    plot_fleet_over_time,
    plot_gpu_inventory,
    plot_provisioning,
    plot_status_timeline,
    write_charts,
)
from shadeanalytics.output.plots._base import svg_document
from shadeanalytics.output.plots.timeline import FLEET_MAX_STEPS
from shadeanalytics.output.report import analytics

AS_OF = pd.Timestamp("2026-11-20T00:00:00Z")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _close_figures() -> Iterator[None]:
    plt.close("all")
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def sample() -> shadeanalytics.Tables:
    """The sample snapshot history (17 snapshots, 10 clouds, ~200 instances)."""
    return shadeanalytics.read(SAMPLE_DIR)


@pytest.fixture(scope="module")
def frames(sample: shadeanalytics.Tables) -> dict[str, pd.DataFrame]:
    """The report's analytics frames of the sample at its newest snapshot."""
    return analytics(sample, as_of=AS_OF)


@pytest.fixture(scope="module")
def charts_in(sample: shadeanalytics.Tables) -> dict[str, pd.DataFrame]:
    """write_charts' optional inputs of the sample: latest instances, timeline, fleet, spend."""
    return {"latest_instances": bill_fleet(sample, as_of=AS_OF).instances,
            "timeline": status_timeline(sample, as_of=AS_OF),
            "fleet": fleet_over_time(sample, as_of=AS_OF),
            "spend": cost_over_time(sample, freq="1D", by="cloud", as_of=AS_OF)}


def agg_axes() -> Axes:
    """An Axes on a Figure outside pyplot."""
    return Figure(figsize=(8, 5)).add_subplot()


def tick_texts(labels: list) -> list[str]:
    return [label.get_text() for label in labels]


def costs(rows: dict[str, float], key: str = "cloud") -> pd.DataFrame:
    """A cost_breakdown-shaped frame: the key, instances, then the dollar columns."""
    hourly = list(rows.values())
    return pd.DataFrame({
        key: pd.array(list(rows), dtype="string"),
        "instances": pd.array([1] * len(rows), dtype="Int64"),
        "hourly_usd": hourly,
        "monthly_usd": [730 * h for h in hourly],
        "accrued_usd": [10 * h for h in hourly],
    })


def instances(rows: list[tuple[str, str, str, str, int]]) -> pd.DataFrame:
    """An instances table of (id, gpu_type, cloud, status, num_gpus) rows, one snapshot."""
    ids, gpu, cloud, status, gpus = (list(column) for column in zip(*rows, strict=True))
    return pd.DataFrame({
        "instance_id": pd.array(ids, dtype="string"),
        "gpu_type": pd.array(gpu, dtype="string"),
        "cloud": pd.array(cloud, dtype="string"),
        "region": pd.array(["r1"] * len(ids), dtype="string"),
        "status": pd.array(status, dtype="string"),
        "num_gpus": pd.array(gpus, dtype="Int64"),
        "total_vram_gb": pd.array([80 * g for g in gpus], dtype="Int64"),
        "vcpus": pd.array([8] * len(ids), dtype="Int64"),
        "memory_in_gb": pd.array([64] * len(ids), dtype="Int64"),
        "hourly_price_usd": [2.0 * g for g in gpus],
        "observed_at": pd.Series([AS_OF] * len(ids)),
    })


def timeline(lanes: int, *, clusters: int = 0, as_of: pd.Timestamp = AS_OF) -> pd.DataFrame:
    """A status_timeline-shaped frame: ``lanes`` instances, each pending 10 min then active
    (current), the first ones spread over ``clusters`` clusters, the rest standalone."""
    rows = []
    for i in range(lanes):
        start = as_of - pd.Timedelta(hours=48) + pd.Timedelta(minutes=7 * i)
        active = start + pd.Timedelta(minutes=10)
        cluster = f"c-{i % clusters}" if clusters and i < lanes // 2 else None
        common = {"kind": "instance", "resource_id": f"i-{i:03d}", "name": f"node-{i:03d}",
                  "cluster_id": cluster, "cloud": "crusoe", "shade_instance_type": "H100"}
        rows.append({**common, "status": "pending", "start_at": start, "end_at": active,
                     "duration_s": 600.0, "start_source": "api"})
        rows.append({**common, "status": "active", "start_at": active, "end_at": pd.NaT,
                     "duration_s": (as_of - active).total_seconds(), "start_source": "api"})
    out = pd.DataFrame(rows)
    for column in ("kind", "resource_id", "name", "cluster_id", "cloud",
                   "shade_instance_type", "status", "start_source"):
        out[column] = out[column].astype("string")
    for column in ("start_at", "end_at"):
        out[column] = pd.to_datetime(out[column], utc=True).dt.as_unit("us")
    return out


def fleet(periods: int = 4) -> pd.DataFrame:
    """A fleet_over_time-shaped frame of hourly periods."""
    gpus = np.linspace(8, 64, periods)
    return pd.DataFrame({
        "period_start": pd.date_range("2026-11-19", periods=periods, freq="1h", tz="UTC"),
        "running_instances": gpus / 8,
        "running_gpus": gpus,
        "hourly_usd": gpus * 2.5,
        "cost_usd": gpus * 2.5,
        "peak_running_instances": pd.array((gpus / 8).astype(int), dtype="Int64"),
    })


def lifecycle() -> pd.DataFrame:
    """A lifecycle-shaped frame: two clouds, one late boot, one without an estimate."""
    return pd.DataFrame({
        "cloud": pd.array(["crusoe", "crusoe", "crusoe", "denvr", "denvr"], dtype="string"),
        "provisioning_s": [300.0, 420.0, 3600.0, 90.0, np.nan],
        "boot_time_min_s": pd.array([300, 300, 300, 60, 60], dtype="Int64"),
        "boot_time_max_s": pd.array([900, 900, 900, 120, 120], dtype="Int64"),
        "boot_late": pd.array([False, False, True, None, None], dtype="boolean"),
    })


# -- the package stays free of matplotlib -------------------------------------------------------


def test_importing_the_package_does_not_load_matplotlib() -> None:
    """`import shadeanalytics, shadeanalytics.output.report` leaves matplotlib unloaded."""
    code = ("import sys, shadeanalytics, shadeanalytics.output.report, "
            "shadeanalytics.analytics.timeline; print('matplotlib' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True, cwd=ROOT)
    assert result.stdout.strip() == "False"


def test_no_other_module_imports_plots() -> None:
    """Only the plots package imports matplotlib; report.py imports plots inside write_report
    only."""
    package = ROOT / "shadeanalytics"
    charts = package / "output" / "plots"
    users = [p.name for p in package.rglob("*.py")
             if charts not in p.parents and "import matplotlib" in p.read_text()]
    assert users == []
    top_level = [p.name for p in package.rglob("*.py")
                 if re.search(r"^from \.plots import|^from \. import plots|^import .*plots",
                              p.read_text(), re.MULTILINE)]
    assert top_level == []


def test_docstring_examples_run() -> None:
    """The examples in the docstrings of plots and its chart modules pass as doctests."""
    modules = [plots, *(importlib.import_module(f"{plots.__name__}.{info.name}")
                        for info in pkgutil.iter_modules(plots.__path__))]
    results = [doctest.testmod(m, extraglobs={"pd": pd}, optionflags=doctest.ELLIPSIS)
               for m in modules]
    assert sum(r.failed for r in results) == 0
    assert sum(r.attempted for r in results) >= 10


# -- colours and text ---------------------------------------------------------------------------


def test_colours_are_fixed_for_known_names_and_stable_for_others() -> None:
    """Known names have their fixed colour; others a CRC-32 pick, the same across processes."""
    assert color_for("cloud", "crusoe") == CLOUD_COLORS["crusoe"]
    assert color_for("status", "active") == "#2ca02c"
    assert color_for("status", "error") == "#d62728"
    assert color_for("status", "hibernating") == "#9467bd"
    assert color_for("cluster_id", "(standalone)") == "#9e9e9e"
    code = ("from shadeanalytics.output.plots import color_for; "
            "print(color_for('cloud', 'newcloud'))")
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "123"})
    assert other.stdout.strip() == color_for("cloud", "newcloud")


def test_status_colours_cover_every_status_of_the_schema() -> None:
    """Every status the API documents has its own colour, all different."""
    from shadeanalytics.ingest.schema import STATUSES

    assert set(STATUS_COLORS) == set(STATUSES)
    assert len(set(STATUS_COLORS.values())) == len(STATUS_COLORS)


def test_usd_formats_dollars() -> None:
    """Cents below $1,000, whole dollars above, the sign before the dollar sign."""
    assert usd(1665.01) == "$1,665.01"
    assert usd(1234.5, cents=None) == "$1,234"
    assert usd(9.3, cents=None) == "$9.30"
    assert usd(-5) == "-$5.00"
    assert usd(float("nan")) == "n/a"


# -- cost breakdown -----------------------------------------------------------------------------


def test_cost_breakdown_bars_largest_on_top_and_the_rest_as_other() -> None:
    """top=3 of 5 groups: 3 bars largest first, then one "(other 2)" bar with their sum."""
    data = costs({"a": 1.0, "b": 5.0, "c": 3.0, "d": 0.5, "e": 0.25})
    ax = plot_cost_breakdown(data, ax=agg_axes(), top=3)
    assert len(ax.patches) == 4
    assert tick_texts(ax.get_yticklabels()) == ["b", "c", "a", "(other 2)"]
    assert [p.get_width() for p in ax.patches] == [5.0, 3.0, 1.0, 0.75]
    assert ax.yaxis_inverted()  # the first bar is drawn at the top
    assert tick_texts(ax.texts) == ["$5.00  51%", "$3.00  31%", "$1.00  10%", "$0.75  8%"]


def test_cost_breakdown_title_units_and_dollar_ticks(frames: dict[str, pd.DataFrame]) -> None:
    """The sample's run rate by cloud: total in the title, USD per hour, $ ticks."""
    ax = plot_cost_breakdown(frames["costs_by_cloud"], ax=agg_axes())
    assert ax.get_title() == "Hourly run rate by cloud\ntotal $1,669.42/h over 10 clouds"
    assert ax.get_xlabel() == "Hourly run rate (USD per hour)"
    assert len(ax.patches) == 10
    ax.figure.canvas.draw()
    assert ax.xaxis.get_major_formatter()(1234.5, 0) == "$1,234"
    assert all(t.startswith("$") for t in tick_texts(ax.get_xticklabels()))


def test_cost_breakdown_counts_no_placeholder_as_a_group() -> None:
    """(standalone) is no cluster and (storage) no GPU type: counted apart, by name."""
    by_cluster = costs({"c-1": 4.0, "c-2": 2.0, "(standalone)": 1.0, "(storage)": 0.5},
                       key="cluster_id")
    assert plot_cost_breakdown(by_cluster, ax=agg_axes()).get_title() == (
        "Hourly run rate by cluster\ntotal $7.50/h over 2 clusters + (standalone) + (storage)")
    by_gpu = costs({"H100": 3.0, "(storage)": 0.5}, key="gpu_type")
    assert plot_cost_breakdown(by_gpu, ax=agg_axes()).get_title() == (
        "Hourly run rate by GPU type\ntotal $3.50/h over 1 GPU type + (storage)")


def test_cost_breakdown_large_ticks_are_compact() -> None:
    """Monthly figures of six digits tick as $50k, never as overlapping $150,000s."""
    ax = plot_cost_breakdown(costs({"a": 400.0, "b": 200.0}), ax=agg_axes(),
                             value="monthly_usd")
    ax.figure.canvas.draw()
    labels = tick_texts(ax.get_xticklabels())
    assert "$100k" in labels
    assert ax.get_xlabel() == "Monthly run rate (USD per month (730 h))"
    assert ax.get_title().endswith("total $438,000.00/month over 2 clouds")


def test_cost_breakdown_joins_keys_and_colours_by_the_first(
        frames: dict[str, pd.DataFrame]) -> None:
    """By (cloud, region): labels "cloud / region", bars in their cloud's colour."""
    ax = plot_cost_breakdown(frames["costs_by_region"], ax=agg_axes(), top=30)
    labels = tick_texts(ax.get_yticklabels())
    assert "crusoe / us-east1-a" in labels
    bar = ax.patches[labels.index("crusoe / us-east1-a")]
    assert to_hex(bar.get_facecolor()) == CLOUD_COLORS["crusoe"]
    assert ax.get_title().startswith("Hourly run rate by cloud / region\n")


def test_cost_breakdown_by_tag_gives_no_total(frames: dict[str, pd.DataFrame]) -> None:
    """Tags double-count multi-tagged instances, so the title says so instead of a total."""
    ax = plot_cost_breakdown(frames["costs_by_tag"], ax=agg_axes(), value="accrued_usd")
    assert "total" not in ax.get_title()
    assert "once per tag" in ax.get_title()
    assert ax.get_xlabel() == "Accrued cost so far (USD)"


def test_cost_breakdown_refuses_bad_arguments() -> None:
    """An unknown value column, top < 1 or a frame without key columns is refused."""
    data = costs({"a": 1.0})
    with pytest.raises(ValueError, match="value must be one of"):
        plot_cost_breakdown(data, ax=agg_axes(), value="cost_gap_usd")
    with pytest.raises(ValueError, match="top must be at least 1"):
        plot_cost_breakdown(data, ax=agg_axes(), top=0)
    with pytest.raises(ValueError, match="result of cost_breakdown"):
        plot_cost_breakdown(data.drop(columns="cloud"), ax=agg_axes())


def test_user_text_with_dollar_signs_is_shown_as_typed(tmp_path: Path) -> None:
    """Tag names with "$" are not read as math and the figure still saves."""
    data = costs({"$HOME $x$": 3.0, "a$b$c": 2.0}, key="tag")
    ax = plot_cost_breakdown(data, ax=agg_axes())
    assert tick_texts(ax.get_yticklabels()) == ["$HOME $x$", "a$b$c"]
    assert not any(label.get_parse_math() for label in ax.get_yticklabels())
    ax.figure.savefig(tmp_path / "tags.png")


# -- GPU inventory ------------------------------------------------------------------------------


def test_gpu_inventory_stacks_held_gpus_by_cloud() -> None:
    """GPU types by total, one bar series per cloud; deleted and CPU-only left out, noted."""
    data = instances([
        ("a", "H100", "crusoe", "active", 8), ("b", "H100", "denvr", "pending", 8),
        ("c", "H100", "crusoe", "deleted", 8), ("d", "A6000", "denvr", "active", 1),
        ("e", "CPU", "denvr", "active", 0), ("f", "A6000", "denvr", "error", 4),
    ])
    ax = plot_gpu_inventory(data, ax=agg_axes())
    assert tick_texts(ax.get_xticklabels()) == ["H100", "A6000"]
    assert len(ax.containers) == 2  # one per cloud
    by_cloud = {c.get_label(): [p.get_height() for p in c] for c in ax.containers}
    assert by_cloud == {"denvr": [8.0, 1.0], "crusoe": [8.0, 0.0]}
    assert ax.get_title() == ("GPUs held by type and cloud\n"
                              "17 GPUs \u00b7 + 1 CPU-only instance (no GPUs)")
    assert ax.get_ylabel() == "GPUs held (count)"
    legend = ax.get_legend()
    assert legend.get_title().get_text() == "cloud"
    assert tick_texts(legend.get_texts()) == ["crusoe", "denvr"]  # top of the stack first
    assert legend.get_bbox_to_anchor().x0 >= ax.bbox.x1  # outside the plot


def test_gpu_inventory_by_status_in_lifecycle_order() -> None:
    """stack="status": the series run creating -> active, in the status colours."""
    data = instances([("a", "H100", "crusoe", "active", 8),
                      ("b", "H100", "crusoe", "pending", 8),
                      ("c", "L40S", "crusoe", "creating", 1)])
    ax = plot_gpu_inventory(data, ax=agg_axes(), stack="status")
    assert [c.get_label() for c in ax.containers] == ["creating", "pending", "active"]
    assert to_hex(ax.containers[-1][0].get_facecolor()) == STATUS_COLORS["active"]


def test_gpu_inventory_of_the_report_frame(frames: dict[str, pd.DataFrame]) -> None:
    """The report's gpu_inventory has no cloud split: refused with stack, drawn without."""
    with pytest.raises(ValueError, match="no 'cloud' column"):
        plot_gpu_inventory(frames["gpu_inventory"], ax=agg_axes())
    ax = plot_gpu_inventory(frames["gpu_inventory"], ax=agg_axes(), stack=None)
    assert len(ax.patches) == 8  # 9 types less CPU
    assert ax.get_legend() is None
    assert "+ 4 CPU-only instances" in ax.get_title()


def test_gpu_inventory_from_the_fleet_draws_the_frame_the_report_hands_over(
        sample: shadeanalytics.Tables) -> None:
    """plot_gpu_inventory given the fleet adds up what the report computes for its chart
    (gpu_inventory by INVENTORY_BY_CLOUD): the same bars, colours, labels and title."""
    from shadeanalytics.analytics.inventory import gpu_inventory

    by_cloud = gpu_inventory(bill_fleet(sample, as_of=AS_OF), by=list(plots.INVENTORY_BY_CLOUD))
    drawn = [plot_gpu_inventory(source, ax=agg_axes()) for source in (sample, by_cloud)]
    fleet_ax, report_ax = drawn
    assert ([(p.get_height(), to_hex(p.get_facecolor())) for p in fleet_ax.patches]
            == [(p.get_height(), to_hex(p.get_facecolor())) for p in report_ax.patches])
    assert tick_texts(fleet_ax.get_xticklabels()) == tick_texts(report_ax.get_xticklabels())
    assert fleet_ax.get_title() == report_ax.get_title() == (
        "GPUs held by type and cloud\n686 GPUs \u00b7 + 4 CPU-only instances (no GPUs)")
    assert len(fleet_ax.patches) == 8 * 10  # 8 GPU types x 10 clouds, empty segments too


def test_a_cloud_has_the_same_colour_in_every_chart(
        sample: shadeanalytics.Tables, frames: dict[str, pd.DataFrame]) -> None:
    """crusoe's cost bar and crusoe's inventory segment share one colour."""
    cost_ax = plot_cost_breakdown(frames["costs_by_cloud"], ax=agg_axes())
    cost_bar = cost_ax.patches[tick_texts(cost_ax.get_yticklabels()).index("crusoe")]
    inventory_ax = plot_gpu_inventory(sample, ax=agg_axes())
    segment = next(c for c in inventory_ax.containers if c.get_label() == "crusoe")[0]
    assert to_hex(cost_bar.get_facecolor()) == to_hex(segment.get_facecolor())


# -- status timeline ----------------------------------------------------------------------------


def lane_centres(ax: Axes) -> set[float]:
    return {round(p.get_y() + p.get_height() / 2, 6) for p in ax.patches}


def test_status_timeline_has_one_lane_per_instance() -> None:
    """200 instances: 200 lanes, names hidden, the count in the y label."""
    ax = plot_status_timeline(timeline(200, clusters=10), ax=agg_axes())
    assert len(lane_centres(ax)) == 200
    assert sorted(ax.get_ylim()) == [-0.5, 199.5]
    assert ax.get_yticks().size == 0
    assert ax.get_ylabel() == "200 instances (grouped by cluster, standalone last)"


def test_status_timeline_orders_lanes_by_cluster_then_standalone() -> None:
    """Few lanes: named ticks, a cluster's members together, standalone instances last."""
    data = timeline(8, clusters=2)  # i-000..i-003 in c-0/c-1 alternately, the rest standalone
    ax = plot_status_timeline(data, ax=agg_axes())
    assert tick_texts(ax.get_yticklabels()) == [
        "node-000", "node-002", "node-001", "node-003",
        "node-004", "node-005", "node-006", "node-007"]


def test_status_timeline_draws_open_intervals_to_as_of() -> None:
    """The as_of line is drawn and labelled; current intervals end on it; colours by status."""
    ax = plot_status_timeline(timeline(3), ax=agg_axes(), as_of=AS_OF)
    at = mdates.date2num(AS_OF.tz_localize(None))
    line = next(line for line in ax.get_lines() if line.get_label().startswith("as of"))
    assert line.get_label() == "as of 2026-11-20 00:00 UTC"
    assert line.get_xdata()[0] == pytest.approx(at)
    active = [p for p in ax.patches if to_hex(p.get_facecolor()) == STATUS_COLORS["active"]]
    pending = [p for p in ax.patches if to_hex(p.get_facecolor()) == STATUS_COLORS["pending"]]
    assert len(active) == len(pending) == 3
    assert all(p.get_x() + p.get_width() == pytest.approx(at) for p in active)
    assert tick_texts(ax.get_legend().get_texts()) == [
        "pending", "active", "as of 2026-11-20 00:00 UTC"]
    assert ax.get_xlabel() == "Time (UTC)"
    assert isinstance(ax.xaxis.get_major_formatter(), mdates.ConciseDateFormatter)


def test_status_timeline_finds_as_of_in_the_timeline() -> None:
    """Without as_of, the instant the timeline was computed at (start + duration) is used."""
    at = pd.Timestamp("2026-11-18T06:00:00Z")
    ax = plot_status_timeline(timeline(2, as_of=at), ax=agg_axes())
    assert ax.get_title().endswith("as of 2026-11-18 06:00 UTC")


def test_status_timeline_keeps_the_most_recent_lanes() -> None:
    """Over max_lanes, the resources up most recently are kept and the title says so."""
    data = timeline(10)
    data.loc[data["resource_id"].isin(["i-000", "i-001"]) & data["end_at"].isna(),
             "status"] = "deleted"
    ax = plot_status_timeline(data, ax=agg_axes(), max_lanes=8)
    assert "node-000" not in tick_texts(ax.get_yticklabels())
    assert len(lane_centres(ax)) == 8
    assert "(the 8 up most recently of 10)" in ax.get_title()


def test_status_timeline_of_the_sample(sample: shadeanalytics.Tables) -> None:
    """The real status_timeline of the sample: one lane per instance, clusters optional."""
    real = status_timeline(sample, as_of=AS_OF)
    ax = plot_status_timeline(real, ax=agg_axes(), as_of=AS_OF)
    assert len(lane_centres(ax)) == real.loc[real["kind"] == "instance",
                                             "resource_id"].nunique()
    both = plot_status_timeline(real, ax=agg_axes(), kinds=("cluster", "instance"))
    assert len(lane_centres(both)) == real["resource_id"].nunique()


# -- fleet over time ----------------------------------------------------------------------------


def test_fleet_over_time_has_gpus_left_and_dollars_right() -> None:
    """Left: running GPUs; the twin: burn rate with $ ticks; one legend with both lines."""
    ax = plot_fleet_over_time(fleet(), ax=agg_axes())
    (twin,) = [a for a in ax.get_shared_x_axes().get_siblings(ax) if a is not ax]
    assert ax.get_ylabel() == "Running GPUs (average per period)"
    assert twin.get_ylabel() == "Burn rate (USD per hour)"
    ax.figure.canvas.draw()
    assert all(t.startswith("$") for t in tick_texts(twin.get_yticklabels()) if t)
    legend = twin.get_legend()
    assert tick_texts(legend.get_texts()) == ["Running GPUs (left)",
                                              "Burn rate, USD/h (right)"]
    assert ax.get_ylim()[1] >= 1.2 * 64  # headroom: the legend sits above the lines
    assert twin.get_ylim()[1] >= 1.2 * 160
    assert "4 periods of 1 h" in ax.get_title()


def test_fleet_over_time_of_the_sample(sample: shadeanalytics.Tables) -> None:
    """The real fleet_over_time of the sample draws, the last period shown in full."""
    real = fleet_over_time(sample, freq="1D", as_of=AS_OF)
    ax = plot_fleet_over_time(real, ax=agg_axes())
    right = mdates.date2num(real["period_start"].iloc[-1].tz_localize(None)
                            + pd.Timedelta(days=1))
    assert ax.get_xlim()[1] == pytest.approx(right)



def _line(ax: Axes, label: str) -> StepPatch:
    """The step line of ``ax`` labelled ``label``."""
    return next(p for p in ax.patches if isinstance(p, StepPatch) and p.get_label() == label)


def test_fleet_over_time_draws_a_long_history_k_periods_to_a_step() -> None:
    """Over max_steps, each step is the mean of k periods over their span (area kept), over a
    band from their least to their most; the title keeps the frame's own figures."""
    frame = fleet(5).assign(running_gpus=[8.0, 16.0, 24.0, 40.0, 8.0],
                            hourly_usd=[20.0, 40.0, 60.0, 100.0, 20.0],
                            cost_usd=[20.0, 40.0, 60.0, 100.0, 20.0])
    ax = plot_fleet_over_time(frame, ax=agg_axes(), max_steps=2)  # k = 3: 3 + 2 periods
    (twin,) = [a for a in ax.get_shared_x_axes().get_siblings(ax) if a is not ax]
    gpus, edges, _ = _line(ax, "Running GPUs (left)").get_data()
    assert gpus.tolist() == [16.0, 24.0]  # (8 + 16 + 24) / 3, (40 + 8) / 2
    t0 = mdates.date2num(pd.Timestamp("2026-11-19"))
    assert np.allclose(edges, [t0, t0 + 3 / 24, t0 + 5 / 24])
    assert _line(twin, "Burn rate, USD/h (right)").get_data()[0].tolist() == [40.0, 60.0]
    (band,) = [p for p in ax.patches if isinstance(p, StepPatch) and p.get_alpha() == 0.25]
    high, _, low = band.get_data()
    assert (low.tolist(), high.tolist()) == ([8.0, 8.0], [24.0, 40.0])
    assert ax.get_title() == (
        "Fleet over time\n5 periods of 1 h \u00b7 up to 40 GPUs and $100.00/h (period "
        "averages) \u00b7 $240.00 accrued\ndrawn 3 periods to a step of 3 h: their "
        "mean, over a band from their least to their most")
    with pytest.raises(ValueError, match="max_steps must be at least 1; got 0"):
        plot_fleet_over_time(frame, ax=agg_axes(), max_steps=0)


def test_fleet_over_time_of_a_year_keeps_the_gpu_hours() -> None:
    """A year of hours (8,760) draws at most FLEET_MAX_STEPS steps, with the frame's area."""
    values = np.random.default_rng(7).uniform(0, 500, 8760).round(2)
    frame = fleet(8760).assign(running_gpus=values)
    gpus, edges, _ = _line(plot_fleet_over_time(frame, ax=agg_axes()),
                           "Running GPUs (left)").get_data()
    assert len(gpus) == 974 <= FLEET_MAX_STEPS  # 9 periods to a step, 3 in the last
    hours = np.diff(edges) * 24
    assert hours[0] == pytest.approx(9) and hours[-1] == pytest.approx(3)
    assert float((gpus * hours).sum()) == pytest.approx(float(values.sum()), rel=1e-12)


# -- provisioning -------------------------------------------------------------------------------


def test_provisioning_points_in_minutes_late_in_red() -> None:
    """One point per timed instance, late ones red, an estimate bar per cloud, y in minutes."""
    ax = plot_provisioning(lifecycle(), ax=agg_axes())
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    by_label = {c.get_label(): c for c in points}
    assert set(by_label) == {"on time", "late (over max estimate)", "no estimate"}
    late = by_label["late (over max estimate)"]
    assert late.get_offsets()[:, 1].tolist() == [60.0]
    assert to_hex(late.get_facecolor()[0]) == "#d62728"
    assert sum(len(c.get_offsets()) for c in points) == 4
    assert ax.get_ylabel() == "Provisioning time (minutes, created to active)"
    assert tick_texts(ax.get_xticklabels()) == ["crusoe (n=3)", "denvr (n=1)"]
    estimates = [(p.get_y(), p.get_y() + p.get_height()) for p in ax.patches]
    assert estimates == [(5.0, 15.0), (1.0, 2.0)]
    assert "1 late" in ax.get_title() and "1 not (yet) active" in ax.get_title()


def test_provisioning_points_are_one_image_in_the_svg() -> None:
    """The points are rasterized: the page's SVG embeds them as one image, not a path each."""
    ax = plot_provisioning(lifecycle(), ax=agg_axes())
    points = [c for c in ax.collections if isinstance(c, PathCollection)]
    assert points and all(c.get_rasterized() for c in points)
    figure = ax.get_figure(root=True)
    assert isinstance(figure, Figure)
    assert svg_document(figure, "provisioning").count("<image ") == 1


def test_provisioning_jitter_is_deterministic() -> None:
    """Two drawings put every point at the same place."""
    first = plot_provisioning(lifecycle(), ax=agg_axes())
    second = plot_provisioning(lifecycle(), ax=agg_axes())
    assert [c.get_offsets().tolist() for c in first.collections] == [
        c.get_offsets().tolist() for c in second.collections]


# -- figures and pyplot state -------------------------------------------------------------------


def test_given_ax_is_drawn_on_and_no_figure_is_created(
        frames: dict[str, pd.DataFrame]) -> None:
    """With ax=..., every helper returns that Axes and pyplot gains no figure."""
    before = plt.get_fignums()
    fig, axes = plt.subplots(2, 3)
    opened = plt.get_fignums()
    drawn = [
        plot_cost_breakdown(frames["costs_by_cloud"], ax=axes[0, 0]),
        plot_gpu_inventory(frames["gpu_inventory"], ax=axes[0, 1], stack=None),
        plot_status_timeline(timeline(5), ax=axes[0, 2]),
        plot_fleet_over_time(fleet(), ax=axes[1, 0]),
        plot_provisioning(frames["lifecycle"], ax=axes[1, 1]),
    ]
    assert drawn == [axes[0, 0], axes[0, 1], axes[0, 2], axes[1, 0], axes[1, 1]]
    assert plt.get_fignums() == opened == [*before, fig.number]


def test_without_ax_a_pyplot_figure_is_made_and_sized_to_the_lanes() -> None:
    """ax=None makes one new pyplot figure; the Gantt chart grows with lanes, capped."""
    ax = plot_status_timeline(timeline(10))
    assert plt.get_fignums() == [ax.figure.number]
    small = ax.figure.get_size_inches()[1]
    tall = plot_status_timeline(timeline(200)).figure.get_size_inches()[1]
    huge = plot_status_timeline(timeline(250)).figure.get_size_inches()[1]
    assert small < tall <= huge <= 16


def test_rc_params_are_left_alone(frames: dict[str, pd.DataFrame]) -> None:
    """Drawing every chart leaves matplotlib's global settings as they were."""
    before = dict(matplotlib.rcParams)
    plot_cost_breakdown(frames["costs_by_cloud"])
    plot_provisioning(frames["lifecycle"])
    plot_fleet_over_time(fleet())
    assert dict(matplotlib.rcParams) == before


def test_empty_frames_draw_an_empty_chart() -> None:
    """No rows: a titled chart that says so, not an exception."""
    empty_costs = costs({}).astype({"cloud": "string"})
    assert plot_cost_breakdown(empty_costs, ax=agg_axes()).texts[0].get_text() == "no data"
    assert plot_status_timeline(timeline(1).iloc[:0],
                                ax=agg_axes()).texts[0].get_text() == "no data"
    assert plot_fleet_over_time(fleet().iloc[:0], ax=agg_axes()).texts[0].get_text() == (
        "no data")
    none_active = lifecycle().assign(provisioning_s=np.nan)
    assert plot_provisioning(none_active, ax=agg_axes()).texts[0].get_text() == (
        "no instance has become active")


# -- spend over time ----------------------------------------------------------------------------


def spend(days: list[str], key: str | None = "cloud", **parts: list[float]) -> pd.DataFrame:
    """A cost_over_time-shaped frame: one row per day and part (``key``), cost_usd."""
    rows = [(day, part, cost) for part, costs in parts.items()
            for day, cost in zip(days, costs, strict=True) if cost]
    frame = pd.DataFrame(rows, columns=["period_start", key or "_", "cost_usd"])
    frame["period_start"] = pd.to_datetime(frame["period_start"], utc=True)
    return frame.drop(columns="_") if key is None else frame


def test_cost_over_time_stacks_each_period() -> None:
    """Bars span their period, stacked largest part first; the title gives the total."""
    days = ["2026-11-18", "2026-11-19", "2026-11-20"]
    ax = plot_cost_over_time(spend(days, crusoe=[10.0, 20.0, 30.0], denvr=[5.0, 0.0, 5.0]),
                             ax=agg_axes())
    assert ax.get_title() == "Spend per day by cloud\ntotal $70.00 over 3 days"
    assert tick_texts(ax.get_legend().get_texts()) == ["denvr", "crusoe"]
    bars = ax.patches
    assert [b.get_height() for b in bars] == [10.0, 20.0, 30.0, 5.0, 0.0, 5.0]
    assert [b.get_y() for b in bars] == [0.0, 0.0, 0.0, 10.0, 20.0, 30.0]
    assert to_hex(bars[0].get_facecolor()) == CLOUD_COLORS["crusoe"]
    assert bars[0].get_width() == pytest.approx(0.9)  # a day, less the gap between bars
    assert ax.get_ylabel() == "Cost per day (USD)"


def test_cost_over_time_folds_the_rest_and_names_months() -> None:
    """Beyond top, the smaller parts are one grey (other N); months are named months."""
    months = ["2026-09-01", "2026-10-01", "2026-11-01"]
    ax = plot_cost_over_time(spend(months, "gpu_type", H100=[9.0, 9.0, 9.0],
                                   A100=[3.0, 3.0, 3.0], L40S=[1.0, 0.0, 0.0]),
                             ax=agg_axes(), top=1)
    assert ax.get_title() == "Spend per month by GPU type\ntotal $37.00 over 3 months"
    assert tick_texts(ax.get_legend().get_texts()) == ["(other 2)", "H100"]
    assert [b.get_height() for b in ax.patches[3:]] == [4.0, 3.0, 3.0]
    by_tag = plot_cost_over_time(spend(months, "tag", a=[1.0, 1.0, 1.0]), ax=agg_axes())
    assert by_tag.get_title().endswith("an instance with several tags counts once per tag")
    assert plot_cost_over_time(spend(months, None, x=[1.0, 2.0, 3.0]), ax=agg_axes()
                               ).get_legend() is None


def test_cost_over_time_sums_long_ranges_into_weeks_then_months() -> None:
    """More periods than max_bars: summed into weeks from Monday (UTC), or calendar months
    when weeks are still too many; each bar the sum of its days, the total unchanged."""
    # Wednesday 4 to Monday 16 November 2026
    days = [str(d.date()) for d in pd.date_range("2026-11-04", periods=13, freq="D")]
    costs = spend(days, crusoe=[float(k) for k in range(1, 14)], denvr=[1.0] * 13)
    ax = plot_cost_over_time(costs, ax=agg_axes(), max_bars=5)
    assert ax.get_title() == "Spend per week by cloud\ntotal $104.00 over 3 weeks"
    assert ax.get_ylabel() == "Cost per week (USD)"
    # the weeks of Monday 2 (Wed-Sun: 1..5), Monday 9 (6..12) and Monday 16 November (13)
    assert [b.get_height() for b in ax.patches] == [15.0, 63.0, 13.0, 5.0, 7.0, 1.0]
    starts = [mdates.num2date(b.get_x()).strftime("%Y-%m-%d") for b in ax.patches[:3]]
    assert starts == ["2026-11-02", "2026-11-09", "2026-11-16"]
    assert ax.patches[0].get_width() == pytest.approx(7 * 0.9)
    month = plot_cost_over_time(costs, ax=agg_axes(), max_bars=2)
    assert month.get_title() == "Spend per month by cloud\ntotal $104.00 over 1 month"
    assert [b.get_height() for b in month.patches] == [91.0, 13.0]
    assert month.patches[0].get_width() == pytest.approx(30 * 0.9)  # November
    same = plot_cost_over_time(costs, ax=agg_axes(), max_bars=13)
    assert len(same.patches) == 26 and same.get_title().endswith("over 13 days")
    with pytest.raises(ValueError, match="max_bars must be at least 1; got 0"):
        plot_cost_over_time(costs, ax=agg_axes(), max_bars=0)


def test_cost_over_time_refuses_two_keys_and_draws_no_data() -> None:
    """Two key columns are refused; an empty frame says no data."""
    two = spend(["2026-11-18"], crusoe=[1.0]).assign(region="r1")
    with pytest.raises(ValueError, match="stacks the bars by one key; costs has cloud, region"):
        plot_cost_over_time(two, ax=agg_axes())
    empty = plot_cost_over_time(spend([], crusoe=[]), ax=agg_axes())
    assert empty.texts[0].get_text() == "no data"


# -- write_charts -------------------------------------------------------------------------------


def written(frames: dict[str, pd.DataFrame], charts_in: dict[str, pd.DataFrame],
            out: Path) -> list[Path]:
    return write_charts(frames, out, latest_instances=charts_in["latest_instances"],
                        timeline=charts_in["timeline"], fleet=charts_in["fleet"],
                        spend=charts_in["spend"], as_of=AS_OF)


@pytest.mark.hardening  # every chart drawn: the fast tier's report tests draw them all
def test_write_charts_writes_every_png(frames: dict[str, pd.DataFrame],
                                       charts_in: dict[str, pd.DataFrame],
                                       tmp_path: Path) -> None:
    """Seven valid PNG files of sane size, nothing else left in the folder, pyplot untouched."""
    paths = written(frames, charts_in, tmp_path / "charts")
    assert [p.name for p in paths] == [
        "costs_by_cloud.png", "costs_by_gpu_type.png", "gpu_inventory.png",
        "provisioning.png", "status_timeline.png", "fleet_over_time.png", "costs_daily.png"]
    assert sorted(p.name for p in (tmp_path / "charts").iterdir()) == sorted(
        p.name for p in paths)
    for path in paths:
        data = path.read_bytes()
        assert data.startswith(PNG_SIGNATURE)
        assert b"Software" not in data and b"Matplotlib" not in data
        height, width = mpimg.imread(path).shape[:2]
        assert 500 <= width <= 2000 and 300 <= height <= 2000, (path.name, width, height)
    assert plt.get_fignums() == []


@pytest.mark.hardening  # two full drawings of every chart: the long tier
def test_write_charts_is_repeatable(frames: dict[str, pd.DataFrame],
                                    charts_in: dict[str, pd.DataFrame],
                                    tmp_path: Path) -> None:
    """The same frames give byte-identical files."""
    first = [p.read_bytes() for p in written(frames, charts_in, tmp_path / "a")]
    second = [p.read_bytes() for p in written(frames, charts_in, tmp_path / "b")]
    assert first == second


def test_write_charts_without_optional_frames(frames: dict[str, pd.DataFrame],
                                              tmp_path: Path) -> None:
    """Without instances, timeline or fleet: four charts, inventory unsplit; an existing
    chart is replaced, not appended to, and no temporary file remains."""
    (tmp_path / "costs_by_cloud.png").write_bytes(b"old" * 100_000)
    paths = write_charts(frames, tmp_path)
    assert [p.name for p in paths] == ["costs_by_cloud.png", "costs_by_gpu_type.png",
                                       "gpu_inventory.png", "provisioning.png"]
    data = (tmp_path / "costs_by_cloud.png").read_bytes()
    assert data.startswith(PNG_SIGNATURE) and b"old" not in data[:16]
    assert not list(tmp_path.glob(".*"))


def test_write_charts_refuses_incomplete_frames(frames: dict[str, pd.DataFrame],
                                                tmp_path: Path) -> None:
    """A frames dict without the report's tables is refused before anything is written."""
    partial = {k: v for k, v in frames.items() if k != "lifecycle"}
    with pytest.raises(ValueError, match="frames is missing lifecycle"):
        write_charts(partial, tmp_path)
    assert list(tmp_path.iterdir()) == []


def _two_polls() -> shadeanalytics.Tables:
    """One cluster of one instance, polled twice."""
    from conftest import envelope, make_cluster, make_instance

    return shadeanalytics.read([
        envelope({"clusters": [make_cluster("c-a", [make_instance("i-1")])]}, at)
        for at in ("2026-11-20T00:00:00Z", "2026-11-20T06:00:00Z")])


def _count_saves(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, str]]:
    """Record (figure id, format) of every ``Figure.savefig`` call from now on."""
    saves: list[tuple[int, str]] = []
    original = Figure.savefig

    def savefig(self: Figure, fname: object, **kwargs: object) -> None:
        saves.append((id(self), str(kwargs.get("format"))))
        original(self, fname, **kwargs)

    monkeypatch.setattr(Figure, "savefig", savefig)
    return saves


def _count_analytics_calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, str]]:
    """Record (output module, analytics function, its arguments but the fleet and as_of) of
    every call the output layer makes to a public analytics function from now on (but a
    ``bill`` of a ``Bill``, which hands it back): each is
    wrapped where it lives, where an output module imported it, and in report's table of
    analytics."""
    import shadeanalytics.analytics as analytics_part
    import shadeanalytics.output.report as report_module

    calls: list[tuple[str, str, str]] = []

    def shown(value: object) -> str:
        return type(value).__name__ if isinstance(value, (pd.DataFrame, Bill,
                                                          shadeanalytics.Tables)) else repr(value)

    def counting(label: str, function: Callable[..., object]) -> Callable[..., object]:
        @functools.wraps(function)
        def wrapper(*args: object, **kwargs: object) -> object:
            caller = sys._getframe(1).f_globals["__name__"]
            # bill_fleet() of a Bill hands the Bill back: no billing done
            again = label == "billing.bill_fleet" and bool(args) and isinstance(args[0], Bill)
            if caller.startswith("shadeanalytics.output.") and not again:
                arguments = [shown(a) for a in args[1:]] + [
                    f"{k}={shown(v)}" for k, v in sorted(kwargs.items()) if k != "as_of"]
                calls.append((caller.removeprefix("shadeanalytics.output."), label,
                              ", ".join(arguments)))
            return function(*args, **kwargs)
        return wrapper

    wrapped: dict[int, Callable[..., object]] = {}
    for info in pkgutil.iter_modules(analytics_part.__path__):
        module = importlib.import_module(f"{analytics_part.__name__}.{info.name}")
        for name, value in list(vars(module).items()):
            if (inspect.isfunction(value) and value.__module__ == module.__name__
                    and not name.startswith("_")):
                wrapped[id(value)] = counting(f"{info.name}.{name}", value)
                monkeypatch.setattr(module, name, wrapped[id(value)])
    outputs = [m for n, m in list(sys.modules.items()) if n.startswith("shadeanalytics.output")]
    for module in outputs:
        for name, value in list(vars(module).items()):
            if id(value) in wrapped:
                monkeypatch.setattr(module, name, wrapped[id(value)])
    for name, value in list(report_module._ANALYTICS.items()):
        if id(value) in wrapped:
            monkeypatch.setitem(report_module._ANALYTICS, name, wrapped[id(value)])
    return calls


def test_a_report_computes_each_frame_once_and_draws_each_chart_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_report bills the fleet once and computes each analytics frame once (the charts
    compute none: only the savings chart's title sums its frame through
    market.potential_monthly_saving_usd); one figure per chart, saved once as PNG and once as
    SVG."""
    from conftest import account_fixture, envelope, make_cluster, make_instance

    from shadeanalytics.output.report import write_report

    tables = shadeanalytics.read([
        *(envelope({"clusters": [make_cluster("c-a", [make_instance("i-1")])]}, at)
          for at in ("2026-11-20T00:00:00Z", "2026-11-20T06:00:00Z")),
        envelope(account_fixture("instance-types-quickstart.json"), "2026-11-20T06:00:00Z",
                 "/instances/types")])
    calls = _count_analytics_calls(monkeypatch)
    saves = _count_saves(monkeypatch)
    # in one process: a second one's calls and saves are counted in its own memory
    monkeypatch.setattr("shadeanalytics.output.report._second_core", lambda: False)
    write_report(tables, tmp_path)
    assert len(set(calls)) == len(calls), calls  # nothing computed twice
    assert sorted((module, label) for module, label, _ in calls) == sorted([
        ("report", "asof.resolve_as_of"), ("report", "billing.bill_fleet"),
        *[("report", "costs.cost_breakdown")] * 6,
        ("report", "inventory.gpu_inventory"), ("report", "costs.cluster_summary"),
        ("report", "lifecycle.instance_lifecycle"), ("report", "quality.quality_checks"),
        ("report", "finops.month_forecast"),
        ("report", "timeline.status_timeline"), ("report", "timeline.fleet_over_time"),
        ("report", "finops.cost_over_time"), ("report", "finops.cost_over_time"),
        ("report", "market.market_compare"), ("report", "market.price_history"),
        # the one frame only a chart draws: GPUs by type and cloud, computed by the report
        ("report", "inventory.gpu_inventory"),
        ("plots.market", "market.potential_monthly_saving_usd"),
        ("report", "asof.trust_notes"),
    ])
    assert ("report", "inventory.gpu_inventory", "by=['gpu_type', 'cloud']") in calls
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == sorted(f"{n}.png" for n in plots.CHART_FILES)
    figures = {figure for figure, _ in saves}
    assert len(figures) == len(pngs)
    assert sorted(saves) == sorted((f, fmt) for f in figures for fmt in ("png", "svg"))
    page = (tmp_path / "index.html").read_text()
    assert page.count('<img src="data:image/svg+xml;base64,') == len(pngs)


@pytest.mark.hardening  # three drawings of the charts: the long tier
def test_render_charts_gives_what_two_separate_drawings_give(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """One drawing per chart, yet the PNG and SVG bytes of a figure drawn for each alone."""
    frames = analytics(_two_polls())
    saves = _count_saves(monkeypatch)
    paths, svgs = plots.render_charts(frames, tmp_path / "once", svg=True)
    assert len({figure for figure, _ in saves}) == len(paths) == len(svgs) == 4
    assert svgs == plots.chart_svgs(frames)
    apart = write_charts(frames, tmp_path / "apart")
    assert [p.read_bytes() for p in paths] == [p.read_bytes() for p in apart]


def test_render_charts_only_draws_the_charts_named_and_needs_only_their_frames(
        tmp_path: Path, charts_in: dict[str, pd.DataFrame]) -> None:
    """render_charts(only=...) draws those charts alone and asks for no analytics frame they
    do not draw (a report's second process has none)."""
    paths, svgs = plots.render_charts({}, tmp_path, svg=True, as_of=AS_OF,
                                      latest_instances=charts_in["latest_instances"],
                                      spend=charts_in["spend"], only=["gpu_inventory"])
    assert [p.name for p in paths] == ["gpu_inventory.png"]
    assert list(svgs) == ["gpu_inventory"]
    with pytest.raises(ValueError, match=r"^frames is missing lifecycle; "):
        plots.render_charts({}, tmp_path, only=["provisioning"])
