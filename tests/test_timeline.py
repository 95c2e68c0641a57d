"""Status timelines, time in status and fleet size over time, against hand-computed values."""

from __future__ import annotations

import dataclasses
from typing import Any

import pandas as pd
import pytest
from conftest import envelope, make_cluster, make_instance

import shadeanalytics
from shadeanalytics.analytics.timeline import (
    FLEET_COLUMNS,
    TIMELINE_COLUMNS,
    fleet_over_time,
    status_timeline,
    time_in_status,
)
from shadeanalytics.ingest.tables import Tables


def at(clock: str) -> str:
    """``"01:05"`` -> the RFC 3339 instant on the scenario's day."""
    return f"2026-11-20T{clock}:00Z"


AS_OF = at("01:40")

# -- the scripted scenario: nine polls of /instances and /clusters, ten minutes apart -----------

POLLS = ["00:10", "00:20", "00:30", "00:40", "00:50", "01:00", "01:10", "01:20", "01:30"]
_: None = None  # not listed in that poll

#: status of each standalone instance at each poll
STANDALONE: dict[str, list[str | None]] = {
    # the happy path, then deleted with a deleted_at, then gone
    "i-a": ["creating", "pending_provider", "pending", "active", "active", "active", "deleting",
            "deleted", _],
    # fails; missing from one poll (a glitch of the list: it is listed again later)
    "i-b": [_, "creating", "pending", "error", "error", _, "error", "error", "error"],
    # first seen active; vanishes without a `deleted` ever seen
    "i-c": ["active", "active", "active", "active", "active", _, _, _, _],
    # active_at after the first poll that saw it active (a clock skew): clamped to that poll
    "i-d": [_, _, "pending", "active", "active", "active", "active", "active", "active"],
    # active_at before the last poll that still saw it pending: the polls win
    "i-e": [_, _, _, _, "pending", "active", "active", "active", "active"],
}
#: the API's own fields of each standalone instance (active_at shows once active)
FIELDS: dict[str, dict[str, Any]] = {
    "i-a": {"cloud": "hyperstack", "created_at": at("00:08"), "active_at": at("00:35"),
            "deleted_at": at("01:15")},
    "i-b": {"cloud": "denvr", "created_at": at("00:15"), "active_at": None},
    "i-c": {"cloud": "lambdalabs", "created_at": at("00:00"), "active_at": at("00:05")},
    "i-d": {"cloud": "hyperstack", "created_at": at("00:25"), "active_at": at("00:41")},
    "i-e": {"cloud": "lambdalabs", "created_at": at("00:45"), "active_at": at("00:48")},
}
#: status of cluster c-1 and its one member at each poll; gone after 01:00
CLUSTER: list[str | None] = [_, "creating", "pending", "active", "active", "deleting", _, _, _]
CLUSTER_FIELDS = {"created_at": at("00:12"), "active_at": at("00:38")}

#: failed polls: the clusters and instances they do not list are not gone
FAILED = [(at("00:55"), "/instances"), (at("01:05"), "/clusters")]


def _instance(iid: str, status: str | None, fields: dict[str, Any]) -> dict[str, Any]:
    shown = status in ("active", "deleting", "deleted")
    return make_instance(
        iid, status=status, cloud=fields.get("cloud", "hyperstack"),
        created_at=fields["created_at"],
        active_at=fields["active_at"] if shown else None,
        deleted_at=fields.get("deleted_at") if status == "deleted" else None,
    )


def scenario_envelopes() -> list[dict[str, Any]]:
    """One /instances and one /clusters envelope per poll."""
    out = []
    for p, clock in enumerate(POLLS):
        instances = [_instance(iid, states[p], FIELDS[iid])
                     for iid, states in STANDALONE.items() if states[p] is not None]
        clusters = []
        if CLUSTER[p] is not None:
            member = _instance("c-1-n1", CLUSTER[p], CLUSTER_FIELDS)
            clusters.append(make_cluster("c-1", [member], status=CLUSTER[p],
                                         created_at=member["created_at"],
                                         active_at=member["active_at"]))
        out.append(envelope({"instances": instances}, at(clock), "/instances"))
        out.append(envelope({"clusters": clusters}, at(clock), "/clusters"))
    return out


def with_failed_polls(tables: Tables, failed: list[tuple[str, str]] = FAILED) -> Tables:
    """``tables`` plus failed polls, as the history store records them."""
    extra = pd.DataFrame({
        "observed_at": pd.to_datetime([t for t, _ in failed], utc=True).as_unit("us"),
        "endpoint": pd.array([e for _, e in failed], dtype="string"),
        "ok": pd.array([False] * len(failed), dtype="boolean"),
    })
    polls = pd.concat([tables.polls, extra], ignore_index=True)
    return dataclasses.replace(tables, polls=polls.sort_values("observed_at").reset_index(
        drop=True))


@pytest.fixture
def history() -> Tables:
    """The scenario with a row at every poll, plus two failed polls."""
    return with_failed_polls(shadeanalytics.read(scenario_envelopes()))


def change_points_only(tables: Tables) -> Tables:
    """Keep, per resource, only rows where the status changes, the row before a change or an
    absence, and the last sighting: what the history store keeps."""
    poll_no = {pd.Timestamp(at(clock)): n for n, clock in enumerate(POLLS)}

    def thin(df: pd.DataFrame, key: str) -> pd.DataFrame:
        df = df.sort_values([key, "observed_at"])
        n = df["observed_at"].map(poll_no)
        group = df.groupby(key)
        same_prev = (df["status"] == group["status"].shift(1)) & (n - group["observed_at"].shift(
            1).map(poll_no) == 1)
        same_next = (df["status"] == group["status"].shift(-1)) & (group["observed_at"].shift(
            -1).map(poll_no) - n == 1)
        return df[~(same_prev & same_next)].reset_index(drop=True)

    return dataclasses.replace(tables, clusters=thin(tables.clusters, "cluster_id"),
                               instances=thin(tables.instances, "instance_id"))


# -- the expected timeline, by hand ---------------------------------------------------------------

#: kind, name, cluster_id, cloud, shade_instance_type of each resource
ATTRS: dict[str, tuple[str, str, str | None, str, str | None]] = {
    "c-1": ("cluster", "cluster-c-1", "c-1", "hyperstack", None),
    "c-1-n1": ("instance", "node-c-1-n1", "c-1", "hyperstack", "A6000"),
    "i-a": ("instance", "node-i-a", None, "hyperstack", "A6000"),
    "i-b": ("instance", "node-i-b", None, "denvr", "A6000"),
    "i-c": ("instance", "node-i-c", None, "lambdalabs", "A6000"),
    "i-d": ("instance", "node-i-d", None, "hyperstack", "A6000"),
    "i-e": ("instance", "node-i-e", None, "lambdalabs", "A6000"),
}

#: resource, status, start, end ("" while current), duration_s (to AS_OF 01:40), start source
EXPECTED_ROWS: list[tuple[str, str, str, str, float, str]] = [
    ("c-1", "creating", "00:12", "00:30", 1080.0, "api"),        # created_at
    ("c-1", "pending", "00:30", "00:38", 480.0, "observed"),
    ("c-1", "active", "00:38", "01:00", 1320.0, "api"),          # active_at
    ("c-1", "deleting", "01:00", "01:10", 600.0, "observed"),
    ("c-1", "deleted", "01:10", "", 1800.0, "observed"),         # gone at 01:10, not 01:05
    ("c-1-n1", "creating", "00:12", "00:30", 1080.0, "api"),
    ("c-1-n1", "pending", "00:30", "00:38", 480.0, "observed"),
    ("c-1-n1", "active", "00:38", "01:00", 1320.0, "api"),
    ("c-1-n1", "deleting", "01:00", "01:10", 600.0, "observed"),
    ("c-1-n1", "deleted", "01:10", "", 1800.0, "observed"),      # gone with its cluster
    ("i-a", "creating", "00:08", "00:20", 720.0, "api"),
    ("i-a", "pending_provider", "00:20", "00:30", 600.0, "observed"),
    ("i-a", "pending", "00:30", "00:35", 300.0, "observed"),
    ("i-a", "active", "00:35", "01:10", 2100.0, "api"),
    ("i-a", "deleting", "01:10", "01:15", 300.0, "observed"),
    ("i-a", "deleted", "01:15", "", 1500.0, "api"),              # deleted_at; no extra row
    ("i-b", "creating", "00:15", "00:30", 900.0, "api"),
    ("i-b", "pending", "00:30", "00:40", 600.0, "observed"),
    ("i-b", "error", "00:40", "", 3600.0, "observed"),           # the 01:00 absence is no vanish
    ("i-c", "active", "00:05", "01:00", 3300.0, "api"),          # first seen active: active_at
    ("i-c", "deleted", "01:00", "", 2400.0, "observed"),         # the failed 00:55 poll skipped
    ("i-d", "pending", "00:25", "00:40", 900.0, "api"),
    ("i-d", "active", "00:40", "", 3600.0, "observed"),          # active_at 00:41 > 00:40
    ("i-e", "pending", "00:45", "01:00", 900.0, "api"),
    ("i-e", "active", "01:00", "", 2400.0, "observed"),          # active_at 00:48 < 00:50
]


def expected_timeline(rows: list[tuple[str, str, str, str, float, str]]) -> pd.DataFrame:
    records = [(*ATTRS[rid][:1], rid, *ATTRS[rid][1:], status, at(start),
                at(end) if end else None, duration, source)
               for rid, status, start, end, duration, source in rows]
    df = pd.DataFrame(records, columns=list(TIMELINE_COLUMNS))
    for column in ("start_at", "end_at"):
        df[column] = pd.to_datetime(df[column], utc=True).dt.as_unit("us")
    return df.astype(TIMELINE_COLUMNS)


# -- status_timeline ------------------------------------------------------------------------------


def test_timeline_of_the_scenario(history: Tables) -> None:
    """Every interval: status, order, start and end instants, start source and duration."""
    result = status_timeline(history, as_of=AS_OF)
    pd.testing.assert_frame_equal(result, expected_timeline(EXPECTED_ROWS))


def test_change_points_only_give_the_same_timeline(history: Tables) -> None:
    """Rows only at change points and last sightings (the history store) change nothing."""
    thinned = change_points_only(history)
    assert len(thinned.instances) == len(history.instances) - 11
    pd.testing.assert_frame_equal(status_timeline(thinned, as_of=AS_OF),
                                  status_timeline(history, as_of=AS_OF))


def test_a_row_without_a_status_takes_the_status_around_it(history: Tables) -> None:
    """A missing status (the API broke its promise) is not a change: the nearest row's wins."""
    instances = history.instances.copy()
    blank = instances["instance_id"].isin(["i-c", "i-d"]) & instances["observed_at"].isin(
        [pd.Timestamp(at("00:10")), pd.Timestamp(at("00:50"))])
    instances.loc[blank, "status"] = pd.NA  # i-c's first row and one mid-active row of each
    assert blank.sum() == 3
    blanked = dataclasses.replace(history, instances=instances)
    pd.testing.assert_frame_equal(status_timeline(blanked, as_of=AS_OF),
                                  expected_timeline(EXPECTED_ROWS))


def test_a_successful_poll_that_misses_a_resource_is_a_vanish() -> None:
    """The same 00:55 poll, had it succeeded, would have ended i-c there."""
    tables = shadeanalytics.read(scenario_envelopes())
    ok = dataclasses.replace(tables, polls=pd.concat([tables.polls, pd.DataFrame({
        "observed_at": pd.to_datetime([at("00:55")], utc=True).as_unit("us"),
        "endpoint": pd.array(["/instances"], dtype="string"),
        "ok": pd.array([True], dtype="boolean"),
    })], ignore_index=True))
    result = status_timeline(ok, as_of=AS_OF)
    deleted = result[(result["resource_id"] == "i-c") & (result["status"] == "deleted")]
    assert deleted["start_at"].tolist() == [pd.Timestamp(at("00:55"))]


def test_as_of_drops_later_intervals_and_counts_durations_up_to_it(history: Tables) -> None:
    """At 00:45: i-a is active; its end stays 01:10 as observed, its duration stops at 00:45."""
    result = status_timeline(history, as_of=at("00:45"))
    assert (result["start_at"] <= pd.Timestamp(at("00:45"))).all()
    mine = result[result["resource_id"] == "i-a"].reset_index(drop=True)
    expected = expected_timeline([
        ("i-a", "creating", "00:08", "00:20", 720.0, "api"),
        ("i-a", "pending_provider", "00:20", "00:30", 600.0, "observed"),
        ("i-a", "pending", "00:30", "00:35", 300.0, "observed"),
        ("i-a", "active", "00:35", "01:10", 600.0, "api"),
    ])
    pd.testing.assert_frame_equal(mine, expected)


def test_naive_as_of_is_refused(history: Tables) -> None:
    """A naive as_of is a ValueError with an exact message, in every function taking one."""
    for call in (status_timeline, fleet_over_time):
        with pytest.raises(ValueError) as caught:
            call(history, as_of=pd.Timestamp("2026-11-20T01:00:00"))
        assert str(caught.value) == ("as_of must be timezone-aware, e.g. "
                                     "'2026-11-21T12:00:00Z' or pd.Timestamp.now(tz='UTC')")


def test_input_is_not_mutated(history: Tables) -> None:
    """Every table of the history is left as it was."""
    before = {name: df.copy(deep=True) for name, df in history.frames()}
    timeline = status_timeline(history, as_of=AS_OF)
    kept = timeline.copy(deep=True)
    time_in_status(timeline, by=("cloud", "cluster_id"))
    fleet_over_time(history, as_of=AS_OF)
    for name, df in history.frames():
        pd.testing.assert_frame_equal(df, before[name])
    pd.testing.assert_frame_equal(timeline, kept)


def test_empty_history_gives_empty_frames() -> None:
    """No rows: every result has its exact columns and dtypes."""
    timeline = status_timeline(Tables.empty(), as_of=AS_OF)
    stats = time_in_status(timeline, by=("cloud", "shade_instance_type"))
    fleet = fleet_over_time(Tables.empty(), as_of=AS_OF)
    assert timeline.empty and stats.empty and fleet.empty
    assert timeline.dtypes.astype(str).to_dict() == TIMELINE_COLUMNS
    assert fleet.dtypes.astype(str).to_dict() == FLEET_COLUMNS
    assert stats.dtypes.astype(str).to_dict() == {
        "cloud": "string", "shade_instance_type": "string", "status": "string",
        "intervals": "Int64", "total_s": "float64", "median_s": "float64", "mean_s": "float64"}


# -- time_in_status -------------------------------------------------------------------------------


def test_time_in_status_by_cloud_of_the_scenario(history: Tables) -> None:
    """Instances only, `deleted` left out, sorted by cloud then lifecycle order."""
    result = time_in_status(status_timeline(history, as_of=AS_OF))
    expected = pd.DataFrame([
        ("denvr", "creating", 1, 900.0, 900.0, 900.0),
        ("denvr", "pending", 1, 600.0, 600.0, 600.0),
        ("denvr", "error", 1, 3600.0, 3600.0, 3600.0),
        ("hyperstack", "creating", 2, 1800.0, 900.0, 900.0),        # 1080 + 720
        ("hyperstack", "pending_provider", 1, 600.0, 600.0, 600.0),
        ("hyperstack", "pending", 3, 1680.0, 480.0, 560.0),         # 480 + 300 + 900
        ("hyperstack", "active", 3, 7020.0, 2100.0, 2340.0),        # 1320 + 2100 + 3600
        ("hyperstack", "deleting", 2, 900.0, 450.0, 450.0),         # 600 + 300
        ("lambdalabs", "pending", 1, 900.0, 900.0, 900.0),
        ("lambdalabs", "active", 2, 5700.0, 2850.0, 2850.0),        # 3300 + 2400
    ], columns=["cloud", "status", "intervals", "total_s", "median_s", "mean_s"]).astype(
        {"cloud": "string", "status": "string", "intervals": "Int64"})
    pd.testing.assert_frame_equal(result, expected)


def test_time_in_status_labels_missing_keys_and_puts_unknown_statuses_last() -> None:
    """A cluster has no instance type: `(none)`; a status the API added sorts after `deleted`."""
    timeline = pd.DataFrame({
        "kind": ["cluster", "cluster", "cluster", "instance"],
        "cluster_id": ["c-1", "c-1", "c-1", None],
        "shade_instance_type": [None, None, None, "A6000"],
        "status": ["hibernating", "active", "active", "active"],
        "duration_s": [50.0, 100.0, 300.0, 60.0],
    }).astype({"kind": "string", "cluster_id": "string", "shade_instance_type": "string",
               "status": "string"})
    result = time_in_status(timeline, by=["cluster_id", "shade_instance_type"], kind=None)
    expected = pd.DataFrame([
        ("(standalone)", "A6000", "active", 1, 60.0, 60.0, 60.0),
        ("c-1", "(none)", "active", 2, 400.0, 200.0, 200.0),
        ("c-1", "(none)", "hibernating", 1, 50.0, 50.0, 50.0),
    ], columns=["cluster_id", "shade_instance_type", "status", "intervals", "total_s",
                "median_s", "mean_s"]).astype(
        {"cluster_id": "string", "shade_instance_type": "string", "status": "string",
         "intervals": "Int64"})
    pd.testing.assert_frame_equal(result, expected)


def test_time_in_status_refuses_an_unknown_key(history: Tables) -> None:
    """`by` takes only timeline keys."""
    with pytest.raises(ValueError, match="cannot group by 'region'"):
        time_in_status(status_timeline(history, as_of=AS_OF), by="region")


# -- fleet_over_time ------------------------------------------------------------------------------


FLEET_FIELDS: dict[str, dict[str, Any]] = {
    "x": {"created_at": at("00:00"), "active_at": at("00:10"), "hourly_price": 210,
          "num_gpus": 1},
    "y": {"created_at": at("00:18"), "active_at": at("00:20"), "hourly_price": 100,
          "num_gpus": 2},
}
#: x active 00:10-00:50, y active from 00:20 (first seen at 00:25): 30 min of overlap
OVERLAP = {"00:15": {"x": "active"}, "00:25": {"x": "active", "y": "active"},
           "00:50": {"x": "deleting", "y": "active"}}
#: x active 00:10-00:20, y active from 00:20: they touch, never overlap
TOUCH = {"00:15": {"x": "active"}, "00:20": {"x": "deleting"},
         "00:25": {"x": "deleting", "y": "active"}}


def fleet_history(polls: dict[str, dict[str, str]]) -> Tables:
    """``{clock: {instance: status}}`` of x ($2.10/h, 1 GPU) and y ($1.00/h, 2 GPUs)."""
    return shadeanalytics.read([
        envelope({"instances": [make_instance(iid, status=status, **FLEET_FIELDS[iid])
                                for iid, status in listed.items()]}, at(clock), "/instances")
        for clock, listed in polls.items()
    ])


def fleet_frame(rows: list[tuple[str, float, float, float, float, int]]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=list(FLEET_COLUMNS))
    df["period_start"] = pd.to_datetime(df["period_start"], utc=True).dt.as_unit("us")
    return df.astype(FLEET_COLUMNS)


def test_fleet_over_one_hour() -> None:
    """Overlap 00:20-00:50: 40 min each -> 4/3 instances, 2 GPUs, $2.10*2/3 + $1.00*2/3."""
    result = fleet_over_time(fleet_history(OVERLAP), freq="1h", as_of=at("01:00"),
                             start=at("00:00"))
    expected = fleet_frame([(at("00:00"), 4 / 3, 2.0, 2.1 * 2 / 3 + 1.0 * 2 / 3,
                             2.1 * 2 / 3 + 1.0 * 2 / 3, 2)])
    pd.testing.assert_frame_equal(result, expected, rtol=1e-12)


def test_fleet_over_half_hours() -> None:
    """00:00-00:30: x 20 min, y 10 min; 00:30-01:00: x 20 min, y 30 min (y runs to as_of)."""
    result = fleet_over_time(fleet_history(OVERLAP), freq="30min", as_of=at("01:00"),
                             start=at("00:00"))
    first_cost = 2.1 * 20 / 60 + 1.0 * 10 / 60        # $0.8667
    second_cost = 2.1 * 20 / 60 + 1.0 * 30 / 60       # $1.20
    expected = fleet_frame([
        (at("00:00"), 1.0, (1 * 20 + 2 * 10) / 30, first_cost / 0.5, first_cost, 2),
        (at("00:30"), 50 / 30, (1 * 20 + 2 * 30) / 30, second_cost / 0.5, second_cost, 2),
    ])
    pd.testing.assert_frame_equal(result, expected, rtol=1e-12)


def test_fleet_window_defaults_to_first_active_start_until_as_of() -> None:
    """Without start, the 00:00 period covers only 00:10-01:00 (50 min) and averages over it."""
    result = fleet_over_time(fleet_history(OVERLAP), freq="1h", as_of=at("01:00"))
    cost = 2.1 * 2 / 3 + 1.0 * 2 / 3
    expected = fleet_frame([(at("00:00"), (80 / 60) / (50 / 60), 2.0 / (50 / 60),
                             cost / (50 / 60), cost, 2)])
    pd.testing.assert_frame_equal(result, expected, rtol=1e-12)


def test_fleet_intervals_that_touch_do_not_overlap() -> None:
    """x ends at 00:20 when y starts: never two at once."""
    result = fleet_over_time(fleet_history(TOUCH), freq="1h", as_of=at("01:00"),
                             start=at("00:00"))
    assert result["peak_running_instances"].tolist() == [1]
    assert result["running_instances"].tolist() == pytest.approx([50 / 60])


def test_fleet_without_activity_has_zero_periods_when_a_window_is_given() -> None:
    """No active interval: zero rows without a start, zero-valued periods with one."""
    assert fleet_over_time(Tables.empty(), as_of=AS_OF).empty
    result = fleet_over_time(Tables.empty(), as_of=AS_OF, start=at("00:00"), end=at("02:00"))
    expected = fleet_frame([(at("00:00"), 0.0, 0.0, 0.0, 0.0, 0),
                            (at("01:00"), 0.0, 0.0, 0.0, 0.0, 0)])
    pd.testing.assert_frame_equal(result, expected)
