"""The streaming FOCUS export: written a run of charge periods at a time, its files are byte for
byte those of the whole frame written at once (on the sample, the fake API's scenario read
from a store, and a generated history with volumes); the pieces of the spend equal the whole
to the bit; a failed write names its file and leaves the previous export; rows are kept in
memory only up to a bound."""

from __future__ import annotations

import contextlib
import errno
import io
import itertools
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pandas as pd
import pyarrow.parquet as pq
import pytest
from conftest import envelope, make_instance, record_state

import shadeanalytics as sa
from shadeanalytics import _common
from shadeanalytics.analytics.billing import bill_fleet
from shadeanalytics.analytics.finops import cost_over_time, cost_over_time_chunks
from shadeanalytics.cli import main
from shadeanalytics.errors import ReportError
from shadeanalytics.output import focus
from shadeanalytics.output.csvout import write_csv
from shadeanalytics.testing import synthetic
from shadeanalytics.testing.fakeapi import default_scenario

BY = ("service", "resource_id", "basis")


def _sample() -> tuple[sa.Tables, str]:
    return sa.read(sa.sample_path()), "2026-11-20T00:00:00Z"


def _scenario(tmp: Path) -> tuple[sa.Tables, str]:
    """The fake API's scenario, recorded in a SQLite store and read back."""
    scenario = default_scenario()
    with sa.Store(tmp / "history.db") as store:
        for state in scenario:
            record_state(store, state)
        tables = store.read()
    return tables, (pd.Timestamp(scenario[-1].at) + pd.Timedelta(hours=1)).isoformat()


def _generated() -> tuple[sa.Tables, str]:
    """A generated history of 24 polls six hours apart, with its volumes."""
    history = synthetic.fleet_history(seed=11, polls=24, every_hours=6.0)
    volumes, volume_types = synthetic.volume_history(history)
    docs = []
    for poll, listed in zip(history, volumes, strict=True):
        at = poll["observed_at"]
        docs += [
            envelope(poll["clusters"], at, "/clusters"),
            envelope(poll["instances"], at, "/instances"),
            envelope(listed, at, "/volumes"),
        ]
    docs.append(envelope(volume_types, history[-1]["observed_at"], "/volumes/types"))
    return sa.read(docs), history[-1]["observed_at"]


@pytest.mark.parametrize(
    ("source", "granularity"),
    [
        ("sample", "daily"),
        ("scenario", "hourly"),
        # a generated history's daily rows: the long tier (the sample's are daily too)
        pytest.param("generated", "daily", marks=pytest.mark.hardening),
    ],
)
def test_streamed_files_equal_the_whole_frame_written_at_once(
    source: str, granularity: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Pieces of about a quarter of the rows and row groups of 40%: the CSV is write_csv's of
    focus_rows and the Parquet pyarrow's write_table of it, byte for byte."""
    tables, as_of = {
        "sample": _sample,
        "scenario": lambda: _scenario(tmp_path),
        "generated": _generated,
    }[source]()
    billed = bill_fleet(tables, as_of=as_of)
    whole = focus.focus_rows(billed, granularity=granularity)
    freq = focus.GRANULARITIES[granularity]
    chunk, group = len(whole) // 4, len(whole) * 2 // 5
    assert len(whole) > 500
    assert len(list(cost_over_time_chunks(billed, freq=freq, by=BY, max_rows=chunk))) >= 4
    write_csv(whole, tmp_path / "whole.csv")
    pq.write_table(
        focus.focus_arrow(whole),
        tmp_path / "whole.parquet",
        compression="zstd",
        row_group_size=group,
    )

    monkeypatch.setattr(focus, "CHUNK_ROWS", chunk)
    monkeypatch.setattr(focus, "ROW_GROUP_ROWS", group)
    export = focus.write_focus(billed, tmp_path / "out", granularity=granularity)
    assert export.files[0].read_bytes() == (tmp_path / "whole.csv").read_bytes()
    assert export.files[1].read_bytes() == (tmp_path / "whole.parquet").read_bytes()
    assert pq.ParquetFile(export.files[1]).metadata.num_row_groups == -(-len(whole) // group)
    pd.testing.assert_frame_equal(export.rows, whole)
    assert export.row_count == len(whole)
    assert export.billed_usd == pytest.approx(float(whole["BilledCost"].sum()), abs=1e-9)


def test_spend_in_pieces_equals_the_whole_to_the_bit() -> None:
    """cost_over_time_chunks: consecutive whole periods, each piece within its bound unless one
    period alone holds more, concatenated exactly cost_over_time's frame."""
    billed = bill_fleet(sa.read(sa.sample_path()), as_of="2026-11-20T00:00:00Z")
    whole = cost_over_time(billed, freq="1h", by=BY)
    for bound in (3_000, 10**9):
        pieces = list(cost_over_time_chunks(billed, freq="1h", by=BY, max_rows=bound))
        pd.testing.assert_frame_equal(pd.concat(pieces, ignore_index=True), whole, check_exact=True)
        starts = [p["period_start"] for p in pieces]
        assert all(a.max() < b.min() for a, b in itertools.pairwise(starts))
        assert all(len(p) <= bound for p in pieces)
    assert len(pieces) == 1


def _small_fleet() -> sa.Tables:
    """g at $16/h from 09:30, c at $0.10/h from 11:00; one poll at 12:00."""
    return sa.read(
        [
            envelope(
                {
                    "instances": [
                        make_instance("g", hourly_price=1600, active_at="2026-11-20T09:30:00Z"),
                        make_instance("c", hourly_price=10, active_at="2026-11-20T11:00:00Z"),
                    ]
                },
                "2026-11-20T12:00:00Z",
                "/instances",
            )
        ]
    )


def test_rows_are_kept_only_up_to_the_bound(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """g: $8 + $16 + $16 + $8 (09:30-12:30), c: $0.10 + $0.05 (11:00-12:30): 6 hourly rows,
    $48.15, $8.05 of it after the 12:00 poll; past KEPT_ROWS (or keep_rows=False) the rows
    are written, counted and summed, not kept."""
    export = focus.write_focus(_small_fleet(), tmp_path, as_of="2026-11-20T12:30:00Z")
    assert (export.row_count, round(export.billed_usd, 9)) == (6, 48.15)
    assert round(export.extrapolated_usd, 9) == 8.05
    assert [
        (r.ChargePeriodStart.strftime("%H:%M"), r.ResourceId, round(r.BilledCost, 9))
        for r in export.rows.itertuples()
    ] == [
        ("09:00", "g", 8.0),
        ("10:00", "g", 16.0),
        ("11:00", "c", 0.1),
        ("11:00", "g", 16.0),
        ("12:00", "c", 0.05),
        ("12:00", "g", 8.0),
    ]
    monkeypatch.setattr(focus, "KEPT_ROWS", 5)
    big = focus.write_focus(_small_fleet(), tmp_path, as_of="2026-11-20T12:30:00Z")
    assert big.kept_rows is None and big.row_count == 6
    with pytest.raises(ReportError) as caught:
        _ = big.rows
    assert str(caught.value) == (
        f"the 6 FOCUS rows were written, not kept in memory (more than 5, or "
        f"keep_rows=False): read {tmp_path / 'focus_cost_and_usage.parquet'}"
    )


class _Full(io.RawIOBase):
    """A file whose second write finds the disk full."""

    def __init__(self, handle: BinaryIO) -> None:
        self.handle, self.writes = handle, 0

    def write(self, data: Any) -> int:
        self.writes += 1
        if self.writes > 1:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.handle.write(data)


def test_a_failed_write_names_its_file_and_keeps_the_previous_export(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The disk fills while the CSV streams: the error names the CSV, both previous files are
    unchanged and no temporary file is left."""
    focus.write_focus(_small_fleet(), tmp_path, as_of="2026-11-20T12:30:00Z")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = focus.atomic_file

    @contextlib.contextmanager
    def filling(path: Path, **kwargs: Any) -> Iterator[Any]:
        with real(path, **kwargs) as handle:
            yield _Full(handle) if path.suffix == ".csv" else handle

    monkeypatch.setattr(focus, "atomic_file", filling)
    with pytest.raises(ReportError) as caught:
        focus.write_focus(_small_fleet(), tmp_path, as_of="2026-11-20T13:30:00Z")
    assert str(caught.value) == (
        f"{tmp_path / 'focus_cost_and_usage.csv'}: cannot write (No space left on device); "
        "the previous file, if any, is unchanged"
    )
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_the_command_streams_a_store_and_sums_what_it_wrote(tmp_path: Path) -> None:
    """export --format focus on a store: the row count and dollars of the rows it wrote, the
    CSV equal to write_focus's."""
    tables, as_of = _scenario(tmp_path)
    expected = focus.write_focus(tables, tmp_path / "lib", as_of=as_of, granularity="daily")
    out, err = io.StringIO(), io.StringIO()
    code = main(
        [
            "export",
            "--store",
            str(tmp_path / "history.db"),
            "--format",
            "focus",
            "--granularity",
            "daily",
            "--as-of",
            as_of,
            "--out",
            str(tmp_path / "cli"),
        ],
        stdout=out,
        stderr=err,
    )
    assert code == 0, err.getvalue()
    total = float(expected.rows["BilledCost"].sum())
    assert out.getvalue().startswith(
        f"wrote {len(expected.rows)} FOCUS 1.3 rows (${total:,.2f} billed, as of "
    )
    assert (tmp_path / "cli" / "focus_cost_and_usage.csv").read_bytes() == (
        expected.files[0].read_bytes()
    )


def test_a_long_export_shows_a_bar_counting_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """With bars on (a terminal) and no delay, the export shows one counting its rows, out of
    focus_row_bound's 6 (g 09:30-12:30: 4 hours, c 11:00-12:30: 2)."""
    monkeypatch.setattr(_common, "_progress_default", True)
    monkeypatch.setattr(_common, "PROGRESS_DELAY_S", 0)
    focus.write_focus(_small_fleet(), tmp_path, as_of="2026-11-20T12:30:00Z")
    shown = capsys.readouterr().err
    assert re.search(r"hourly FOCUS rows: +\d+%\|[^|]*\| [0-6]/6 \[", shown), shown
