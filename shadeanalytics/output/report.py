"""Report folders: formula-safe, diffable CSV files, each written atomically."""

from __future__ import annotations

import contextlib
import functools
import gc
import json
import os
import pickle
import re
import select
import signal
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import pandas as pd

from .._common import TimeLike, count_groups, usd
from .._compat import deprecated, old_spellings
from .._files import atomic_write
from ..analytics.alerts import Budget, budget_state
from ..analytics.asof import resolve_as_of as _resolve
from ..analytics.asof import trust_notes
from ..analytics.billing import Bill, bill_fleet
from ..analytics.costs import breakdown_of, breakdown_sums, cluster_summary, cost_breakdown
from ..analytics.finops import cost_over_time, month_forecast
from ..analytics.inventory import gpu_inventory
from ..analytics.lifecycle import instance_lifecycle
from ..analytics.market import market_compare, potential_monthly_saving_usd, price_history
from ..analytics.quality import finding_counts, quality_checks
from ..analytics.settledparts import ReportTables
from ..analytics.settledsums import SummedTables
from ..analytics.timeline import fleet_over_time, status_timeline
from ..errors import DataWarning, ReportError, printable
from ..ingest.schema import TABLES
from ..ingest.tables import Tables
from .csvout import escape_cell, unescape_cell, write_csv

_T = TypeVar("_T")
_U = TypeVar("_U")

__all__ = [
    "ANALYTICS_FILES",
    "MARKET_FILES",
    "NETWORK_COLUMNS",
    "SPEND_COLUMNS",
    "analytics",
    "escape_cell",
    "history_frames",
    "market_frames",
    "resolve_as_of",
    "table_columns",
    "unescape_cell",
    "write_csv",
    "write_report",
]

#: Columns that say how to reach a machine; reports leave them out unless asked.
NETWORK_COLUMNS = ("ip", "ssh_user", "ssh_port")

_SORT_KEYS = {
    "clusters": ["cluster_id", "observed_at"],
    "instances": ["cluster_id", "instance_id", "observed_at"],
    "instance_types": ["cloud", "shade_instance_type", "region", "rental_type", "observed_at"],
}


def _sorted(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return df.sort_values(keys, na_position="last", kind="stable").reset_index(drop=True)


def table_columns(table: str, include_network: bool = False) -> list[str]:
    """The report's columns for ``table``: the schema's, less network ones unless asked."""
    return [c.name for c in TABLES[table]
            if include_network or c.name not in NETWORK_COLUMNS]


#: The analytics files of a report, in the order they are written.
ANALYTICS_FILES = (
    "costs_by_cloud", "costs_by_region", "costs_by_gpu_type", "costs_by_cluster", "costs_by_tag",
    "costs_by_service", "gpu_inventory", "clusters_summary", "lifecycle", "volumes", "quality",
)


#: The marketplace files of a report (when the sources hold a ``/instances/types`` response).
MARKET_FILES = ("savings", "market_prices")


def market_frames(tables: Tables, billed: Bill) -> dict[str, pd.DataFrame]:
    """``savings`` (``market.market_compare``) and ``market_prices`` (``market.price_history``)
    of a report; empty when the sources hold no marketplace (``/instances/types``)."""
    if tables.instance_types.empty:
        return {}
    return {"savings": market_compare(billed),
            "market_prices": price_history(tables, as_of=billed.as_of)}


def resolve_as_of(value: TimeLike, tables: Tables) -> pd.Timestamp:
    """``as_of`` for a report: the one rule of every helper (``analytics.asof.resolve_as_of``):
    ``"latest"`` (or None) is the newest successful poll (undated sources are refused with
    ``asof.UndatedError``), ``"now"`` is ``config.now()``, anything else a timezone-aware
    instant.

    ``latest`` never lies in the future: a poll dated by a clock that was ahead (the
    collector records the clock going back with a warning) is passed over, so a report does
    not bill until that date.
    """
    return _resolve(value, tables)


_ANALYTICS: dict[str, Callable[[Bill], pd.DataFrame]] = {
    "costs_by_cloud": lambda billed: cost_breakdown(billed, by="cloud"),
    "costs_by_region": lambda billed: cost_breakdown(billed, by=("cloud", "region")),
    "costs_by_gpu_type": lambda billed: cost_breakdown(billed, by="gpu_type"),
    "costs_by_cluster": lambda billed: cost_breakdown(billed, by="cluster_id"),
    "costs_by_tag": lambda billed: cost_breakdown(billed, by="tag"),
    "costs_by_service": lambda billed: cost_breakdown(billed, by="service"),
    "gpu_inventory": gpu_inventory,
    "clusters_summary": cluster_summary,
    "lifecycle": instance_lifecycle,
    "volumes": lambda billed: billed.volumes.drop(columns=["gone", "observed_at"]),
    "quality": quality_checks,
}


@old_spellings(renamed={"tables": "fleet"})
def analytics(fleet: Tables | Bill, *, as_of: TimeLike = None,
              only: Sequence[str] = ANALYTICS_FILES) -> dict[str, pd.DataFrame]:
    """Every analytics table of a report (or the ``only`` ones, of ``ANALYTICS_FILES``): the
    fleet billed once at ``as_of``, then added up."""
    unknown = [name for name in only if name not in _ANALYTICS]
    if unknown:
        raise ValueError(f"no analytics table named {', '.join(map(repr, unknown))}; "
                         f"choose from {', '.join(ANALYTICS_FILES)}")
    billed = bill_fleet(fleet, as_of=as_of)
    return {name: _ANALYTICS[name](billed) for name in only}


def _history_of(fleet: Tables | Bill, as_of: TimeLike, what: str) -> tuple[Tables, TimeLike]:
    """The history a report or summary reads, and its instant: a ``Bill``'s own history at
    the Bill's own ``as_of`` unless another is asked for."""
    if isinstance(fleet, Bill):
        if fleet.history is None:
            raise TypeError(f"{what} needs the history a Bill was made from; this Bill carries "
                            "none: pass the Tables")
        return fleet.history, fleet.as_of if as_of is None else as_of
    if not isinstance(fleet, Tables):
        raise TypeError(f"{what} needs a Tables (from shadeanalytics.read() or Store.read()) "
                        f"or a Bill, not a {type(fleet).__name__}")
    return fleet, as_of


@old_spellings(renamed={"tables": "fleet"}, leading=2)
def write_report(fleet: Tables | Bill, out: str | os.PathLike[str], *, as_of: TimeLike = None,
                 include_network: bool = False, charts: bool = True,
                 html: bool = True, force: bool = False,
                 budgets: Sequence[Budget] | None = None,
                 all_versions_csv: bool = False) -> list[Path]:
    """Write the report folder of ``fleet`` (the ``Tables`` of a history, or a ``Bill`` that
    carries its history: the report is then as of the Bill's instant) into ``out``; returns the
    files written. A store's ``Store.read_report()`` (``ReportTables``) gives the files of its
    ``Store.read()``, the settled instances' rows taken from the parts the store keeps.

    With ``budgets`` (``sa.load_budgets`` of a budgets file), ``budgets.csv`` holds each
    budget's measure beside its limit (``alerts.budget_state``), also on the page.

    ``clusters.csv`` and ``instances.csv`` hold the newest row of each resource
    (``Tables.latest()``: a vanished one ``deleted``), sorted by id; ``instance_types.csv``
    (the newest price of each offer) is written when the sources held a ``/instances/types``
    response. Every version row of those tables goes to ``versions/<table>.parquet`` (needs
    pyarrow: without it a ``DataWarning`` says so and they are skipped), or to
    ``versions/<table>.csv`` with ``all_versions_csv``;
    then one file per entry of ``ANALYTICS_FILES``, computed at ``as_of`` (default: the newest
    poll, ``asof.resolve_as_of``), and ``forecast.csv`` (``finops.month_forecast``); when the
    sources are a dated history (``tables.polls`` not empty), the files of ``history_frames``;
    with a marketplace, ``savings.csv`` and ``market_prices.csv`` (``market_frames``). With
    ``charts`` (the default) the PNG charts of ``plots.write_charts`` follow, each drawn once
    for its PNG and the page's SVG (``plots.render_charts``); without, matplotlib is never
    imported. With ``html`` (the default) ``index.html`` comes last
    (``htmlreport.write_html``): the same frames on one page, with the charts as SVG when
    ``charts``, linking the files written before it (but the version files).

    Once the fleet is billed, a second process (``os.fork``, where a second CPU core exists)
    makes the history frames, writes their files and draws their charts beside this one; the
    files are the same as with one process, and a second process that fails has its part done
    again here (its error, if any, raised as without it).

    A folder holds one report: ``.shadeanalytics-report.json`` lists the files the report
    wrote, and the next report into the folder removes the ones it does not write again. A
    folder holding files no report wrote is refused with ``ReportError`` (nothing written),
    unless ``force`` (they are then left alone). Files holding ``ip`` / ``ssh_user`` /
    ``ssh_port`` (``include_network``) get an owner-only mode (``csvout.file_mode``).
    """
    tables, as_of = _history_of(fleet, as_of, "write_report")
    out = Path(out)
    planned = _planned_files(tables, charts, html) | ({"budgets.csv"} if budgets is not None
                                                      else set())
    planned |= _planned_versions(tables, all_versions_csv)
    earlier = _check_folder(out, planned, force)
    if not planned <= earlier:  # a run killed midway leaves only files its manifest names
        _write_manifest(out, earlier | planned)
    at = _resolve(as_of, tables)
    # every version row (Parquet: encoded beside the rest of the report, written below)
    versions = _write_versions(tables, out, include_network, all_versions_csv)
    # every analytics frame is computed once, here, from the fleet billed once: the CSV files,
    # the charts and the page take these frames as they are
    billed = bill_fleet(fleet, as_of=at)  # a Bill made at ``at`` is taken as it is
    render: Callable[..., tuple[list[Path], dict[str, str]]] | None = None
    chart_names: tuple[str, ...] = ()
    if charts:
        # matplotlib only when charts are asked for (imported once, for both processes)
        from .plots import CHART_FILES, INVENTORY_BY_CLOUD, render_charts

        render, chart_names = render_charts, CHART_FILES
    theirs = [n for n in chart_names if n in _HISTORY_CHARTS]

    def of_history() -> tuple[dict[str, pd.DataFrame], dict[str, Path], list[Path],
                              dict[str, str]]:
        """The history frames, their CSV files and charts (the second process's part)."""
        history = history_frames(billed)  # as of the bill's own instant
        csvs = {name: write_csv(df, out / f"{name}.csv") for name, df in history.items()}
        pngs: list[Path] = []
        svg_docs: dict[str, str] = {}
        if render is not None:
            # the one frame only a chart draws: GPUs held by type and cloud
            inventory = gpu_inventory(billed, by=list(INVENTORY_BY_CLOUD))
            pngs, svg_docs = render({}, out, svg=html, inventory=inventory,
                                    timeline=history.get("timeline"),
                                    fleet=history.get("fleet_over_time"),
                                    spend=history.get("costs_daily"), as_of=at, only=theirs)
        # the page shows the history frames; without it this process keeps them
        return (history if html else {}), csvs, pngs, svg_docs

    def of_bill() -> tuple[dict[str, pd.DataFrame], dict[str, pd.DataFrame],
                           dict[str, Path], list[Path], dict[str, str]]:
        """The newest rows' CSV files; the analytics, forecast and market frames, their CSV
        files and charts."""
        # the newest rows of the history (the bill's own, when it billed these Tables)
        kept = billed.derived.get("latest") if billed.history is tables else None
        newest = kept if isinstance(kept, Tables) else tables.latest()
        if isinstance(tables, ReportTables):  # the settled instances' newest rows: their
            # kept bill rows
            newest = replace(newest, instances=tables.newest_instances(newest.instances))
        csvs = {table: write_csv(_sorted(getattr(newest, table), _SORT_KEYS[table]),
                                 out / f"{table}.csv", table_columns(table, include_network),
                                 private=include_network and table != "instance_types")
                for table in _RESOURCE_TABLES
                if not (table == "instance_types" and tables.instance_types.empty)}
        # every analytics frame is computed once, here, from the fleet billed once: the CSV
        # files, the charts and the page take these frames as they are
        frames = {**analytics(billed), "forecast": month_forecast(billed)}
        market = market_frames(tables, billed)
        if budgets is not None:
            market["budgets"] = budget_state(billed, budgets=budgets)
        csvs |= {name: write_csv(df, out / f"{name}.csv") for name, df in
                 {**frames, **market}.items()}
        pngs: list[Path] = []
        svg_docs: dict[str, str] = {}
        if render is not None:
            pngs, svg_docs = render({**frames, **market}, out, svg=html,
                                    only=[n for n in chart_names if n not in theirs])
        return frames, market, csvs, pngs, svg_docs

    # the history frames, their files and charts in a second process where a second core
    # exists (``_beside``), the rest here
    mine, (history, their_csvs, their_pngs, their_svgs) = _beside(of_bill, of_history)
    frames, market, csvs, pngs, svg_docs = mine
    forecast = frames.pop("forecast")
    csvs |= their_csvs
    # the files in the order of one process: the newest rows, the version files, analytics,
    # forecast, history, market
    written = [csvs[name] for name in _RESOURCE_TABLES if name in csvs]
    written += versions()
    in_order = [*frames, "forecast", *(n for n in _HISTORY_FILES if n in their_csvs), *market]
    written += [csvs[name] for name in in_order]
    frames = {**frames, **market}
    svgs = None
    if charts:
        order = {name: i for i, name in enumerate(chart_names)}
        written += sorted(pngs + their_pngs, key=lambda p: order[p.stem])
        svgs = {**svg_docs, **their_svgs}
    if html:
        from .htmlreport import write_html  # jinja2 only when the page is asked for

        stale, rests_on = trust_notes(billed, frames["costs_by_cloud"])
        notices = ([stale] if stale else []) + [
            s.replace(" of it ", " of the accrued total ", 1).replace(
                ": see the quality findings", ": see Findings")
            for s in rests_on]
        written.append(write_html({**frames, "forecast": forecast, **history}, out, as_of=at,
                                  charts=svgs, notices=notices,
                                  # the page links the folder's own files, as before
                                  files=[p for p in written if _name(p) == p.name]))
    names = {_name(p) for p in written}
    for stale in sorted((earlier | planned) - names):
        try:
            (out / stale).unlink(missing_ok=True)
        except OSError as exc:
            raise ReportError(f"{out / stale}: cannot remove this file of the earlier report "
                              f"({exc.strerror})") from None
    if not any(n.startswith(f"{_VERSIONS}/") for n in names):
        with contextlib.suppress(OSError):  # only when empty: a foreign file keeps it
            (out / _VERSIONS).rmdir()
    if names != earlier:
        _write_manifest(out, names)
    return written


def _second_core() -> bool:
    """A second process can run beside this one: ``os.fork`` exists and this process may run
    on two CPUs or more."""
    if not hasattr(os, "fork"):
        return False
    try:
        return len(os.sched_getaffinity(0)) >= 2
    except AttributeError:  # (no affinity call: macOS)
        return (os.cpu_count() or 1) >= 2


def _beside(first: Callable[[], _T], second: Callable[[], _U]) -> tuple[_T, _U]:
    """``(first(), second())``, ``second`` run in a forked process beside this one where a
    second core exists (its result and warnings sent back pickled through a pipe).

    When the second process fails in any way (an exception, a signal, a result that does
    not pickle), ``second`` runs again here, after ``first``: its error, if it has one, is
    raised as it would be without a second process, and whatever it writes is written."""
    if not _second_core():
        return first(), second()
    read_end, write_end = os.pipe()
    # the objects made so far out of the cyclic GC's reach until both parts are done: its
    # passes would write to every page holding one, copying it for the other process (not
    # when the caller froze objects itself: unfreezing would undo that)
    freeze = gc.get_freeze_count() == 0
    if freeze:
        gc.freeze()
    with warnings.catch_warnings():
        # (a fork with threads: the child runs ``second`` alone and ends by os._exit)
        warnings.simplefilter("ignore", DeprecationWarning)
        pid = os.fork()
    if pid == 0:  # the second process: never returns
        os.close(read_end)
        code = 1
        try:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                result = second()
            data = pickle.dumps((result, [(w.category, str(w.message)) for w in caught]))
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(data)
            code = 0
        except BaseException:  # any failure: the first process does it again
            pass
        finally:
            os._exit(code)
    os.close(write_end)
    try:
        began = time.monotonic()
        mine = first()
        sent = _read_within(read_end, _patience(time.monotonic() - began))
    except BaseException:
        with contextlib.suppress(OSError):
            os.close(read_end)
        _end(pid)
        raise
    finally:
        if freeze:
            gc.unfreeze()
    if sent is None:  # silent past its patience (hung, e.g. a lock held at the fork)
        _end(pid)
        return mine, second()
    _, status = os.waitpid(pid, 0)
    if os.waitstatus_to_exitcode(status) != 0 or not sent:
        return mine, second()
    result, caught = pickle.loads(sent)
    for category, message in caught:
        warnings.warn(message, category, stacklevel=3)
    return mine, result


#: How long the first process waits for the second after its own part, at least (seconds):
#: the longer of this and 4 times its own part's time. Past it, a second process that has
#: sent nothing is taken as hung (a fork copies the locks other threads held), killed, and
#: its part done here: a scheduled report never waits forever.
SECOND_PATIENCE_S = 120.0


def _patience(first_took: float) -> float:
    return max(SECOND_PATIENCE_S, 4 * first_took)


def _read_within(fd: int, patience: float) -> bytes | None:
    """Everything written to ``fd`` until its end, or ``None`` when nothing at all arrived
    within ``patience`` seconds (the descriptor is closed either way)."""
    chunks: list[bytes] = []
    with os.fdopen(fd, "rb", buffering=0) as pipe:
        if not select.select([pipe], [], [], patience)[0]:
            return None
        while chunk := pipe.read(1 << 20):
            chunks.append(chunk)
    return b"".join(chunks)


def _end(pid: int) -> None:
    """The second process killed (if still running) and reaped."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)


_RESOURCE_TABLES = ("clusters", "instances", "instance_types")
#: The folder of a report's every version row (``versions/<table>.parquet`` or ``.csv``).
_VERSIONS = "versions"


def _name(path: Path) -> str:
    """A written file's name in the manifest: ``versions/instances.parquet`` for a version
    file, else the bare name."""
    return f"{_VERSIONS}/{path.name}" if path.parent.name == _VERSIONS else path.name


def _has_pyarrow() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def _planned_versions(tables: Tables, as_csv: bool) -> set[str]:
    """The names of the version files ``write_report`` writes for ``tables``."""
    if not as_csv and not _has_pyarrow():
        return set()
    types = () if tables.instance_types.empty else ("instance_types",)
    return {f"{_VERSIONS}/{n}.{'csv' if as_csv else 'parquet'}"
            for n in ("clusters", "instances", *types)}


def _write_versions(tables: Tables, out: Path, include_network: bool,
                    as_csv: bool) -> Callable[[], list[Path]]:
    """Every version row of the resource tables, sorted by id and time, in ``out/versions``:
    Parquet (pyarrow), or CSV when ``as_csv``; none (a ``DataWarning``) without pyarrow.
    Returns the function that writes the Parquet files and gives the paths written.

    The Parquet files are sorted, encoded and compressed by Arrow in a thread of their own,
    beside the rest of the report (Arrow works without Python's lock; a year's versions take
    about as long as billing it); the frames are made Arrow tables first, here, so the thread
    touches no pandas object. The files are written when the returned function is called:
    a report that fails before leaves none half-made."""
    if not as_csv and not _has_pyarrow():
        warnings.warn("report: every version row is left out (versions/*.parquet needs "
                      "pyarrow: pip install 'shadeanalytics[parquet]', or pass "
                      "--all-versions-csv)", DataWarning, stacklevel=3)
        return list
    jobs = []
    written = []
    for table in _RESOURCE_TABLES:
        df = getattr(tables, table)
        if table == "instance_types" and df.empty:
            continue
        columns = table_columns(table, include_network)
        private = include_network and table != "instance_types"
        path = out / _VERSIONS / f"{table}.{'csv' if as_csv else 'parquet'}"
        if as_csv:
            if isinstance(tables, ReportTables) and table == "instances":
                df = tables.versions_table(list(df.columns)).to_pandas()
            written.append(write_csv(_sorted(df, _SORT_KEYS[table]), path, columns,
                                     private=private))
            continue
        import pyarrow as pa

        if isinstance(tables, ReportTables) and table == "instances":
            # the settled instances' rows (kept) join the open ones' in the thread
            jobs.append((functools.partial(tables.versions_with, tables.open_versions(columns)),
                         _SORT_KEYS[table], path, private))
            continue
        jobs.append((functools.partial(_same, pa.Table.from_pandas(df[columns],
                                                                   preserve_index=False)),
                     _SORT_KEYS[table], path, private))
    if not jobs:
        return lambda: written
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(1, thread_name_prefix="shadeanalytics-versions")
    encoded = [pool.submit(_parquet_bytes, make, keys) for make, keys, _, _ in jobs]
    pool.shutdown(wait=False)  # the thread ends when its work is done

    def write() -> list[Path]:
        for (_, _, path, private), data in zip(jobs, encoded, strict=True):
            atomic_write(path, data.result(), private=private)
            written.append(path)
        return written

    return write


def _same(value: _T) -> _T:
    return value


def _parquet_bytes(make: Callable[[], Any], keys: list[str]) -> bytes:
    """The Arrow table ``make()`` sorted by ``keys`` as ``_sorted`` sorts (stable, NA last),
    as zstd Parquet."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    # nulls last: every pyarrow's default (naming it is spelled differently since 25)
    table = make()
    order = pc.sort_indices(table, sort_keys=[(k, "ascending") for k in keys])
    sink = pa.BufferOutputStream()
    pq.write_table(table.take(order), sink, compression="zstd")
    data: bytes = sink.getvalue().to_pybytes()
    return data


#: The list of the files a report wrote, in its folder.
MANIFEST = ".shadeanalytics-report.json"
_HISTORY_FILES = ("timeline", "fleet_over_time", "costs_daily", "costs_monthly")
#: The charts a report's second process draws: those of the history frames (made there),
#: and the GPUs held by type and cloud (the one frame only a chart draws), for balance.
_HISTORY_CHARTS = ("gpu_inventory", "status_timeline", "fleet_over_time", "costs_daily")
# a file of an earlier report (a CSV, chart or page, named as reports name them: no path);
# nothing else a manifest lists is ever removed
_CHART_NAME = re.compile(r"(versions/)?[a-z][a-z0-9_]{0,63}\.(csv|png|html|parquet)")
_REPORT_CSVS = frozenset(f"{n}.csv" for n in ("clusters", "instances", "instance_types",
                                               *ANALYTICS_FILES, "forecast",
                                               *_HISTORY_FILES))


def _planned_files(tables: Tables, charts: bool, html: bool) -> set[str]:
    """The names of the files ``write_report`` writes for ``tables``."""
    history = () if tables.polls.empty else _HISTORY_FILES
    types = () if tables.instance_types.empty else ("instance_types",)
    names = {f"{n}.csv" for n in ("clusters", "instances", *types, *ANALYTICS_FILES,
                                   "forecast", *history)}
    if charts:
        from .plots import CHART_FILES

        names |= {f"{n}.png" for n in CHART_FILES if n in history or n not in _HISTORY_FILES}
    if html:
        names.add("index.html")
    return names


def _check_folder(out: Path, planned: set[str], force: bool) -> set[str]:
    """The files the earlier report in ``out`` wrote (its manifest); ``ReportError`` when
    ``out`` holds anything else (unless ``force``) or is not a folder."""
    if not out.exists():
        return set()
    if not out.is_dir():
        raise ReportError(f"{out}: is a file, not a folder")
    earlier: set[str] = set()
    manifest = out / MANIFEST
    if manifest.exists():
        try:
            listed = json.loads(manifest.read_bytes()[:1_000_000]).get("files")
            # only names a report writes: a manifest can never make us remove other files
            earlier = {n for n in listed if isinstance(n, str)
                       and (n in planned or n in _REPORT_CSVS or _CHART_NAME.fullmatch(n))}
        except (OSError, ValueError, AttributeError, TypeError):
            earlier = set()
    try:
        present = {p.name for p in out.iterdir()}
    except OSError as exc:
        raise ReportError(f"{out}: cannot list the folder ({exc.strerror})") from None
    # a temp file of an atomic write killed midway is ours too
    # the versions folder is ours when the earlier report wrote into it
    ours = {_VERSIONS} if any(n.startswith(f"{_VERSIONS}/") for n in earlier) else set()
    foreign = sorted(n for n in present - earlier - ours - {MANIFEST}
                     if not (n.startswith(".") and n.endswith(".tmp")))
    if foreign and not force:
        shown = ", ".join(printable(n) for n in foreign[:5]) + (", ..." if len(foreign) > 5
                                                                else "")
        raise ReportError(f"{out}: holds {len(foreign)} file(s) no report wrote ({shown}); "
                          "nothing written: choose an empty or new folder, or pass --force "
                          "(force=True) to write beside them")
    return earlier


def _write_manifest(out: Path, names: set[str]) -> None:
    body = {"format": 1, "written_by": "shadeanalytics report", "files": sorted(names)}
    atomic_write(out / MANIFEST, json.dumps(body, indent=1) + "\n")


#: Columns of the report's spend over time files (``costs_daily``, ``costs_monthly``).
SPEND_COLUMNS = ("period_start", "cloud", "cost_usd")


@old_spellings(renamed={"tables": "fleet"})
def history_frames(fleet: Tables | Bill, *, as_of: TimeLike = None,
                   billed: Bill | None = None) -> dict[str, pd.DataFrame]:
    """The frames of a dated history, empty when nothing is dated: ``timeline``,
    ``fleet_over_time`` (hourly), and the spend by cloud per day (``costs_daily``) and per
    calendar month (``costs_monthly``) of ``finops.cost_over_time``. ``fleet`` is the
    ``Tables`` of the history, or a ``Bill`` that carries it (``as_of`` then defaults to the
    Bill's own, and the Bill is not made again). (``history_frames(tables, billed=bill)`` is
    the old spelling of ``history_frames(bill)``.)"""
    tables, _ = _history_of(fleet, as_of, "history_frames")
    if billed is not None:
        deprecated("history_frames(tables, billed=bill)", "history_frames(bill)", stacklevel=4)
    elif isinstance(fleet, Bill):
        billed = fleet
    if tables.polls.empty:
        return {}
    at = billed.as_of if billed is not None and as_of is None else _resolve(as_of, tables)
    source = billed if billed is not None else tables
    timeline = status_timeline(tables, as_of=at)
    if isinstance(tables, ReportTables):  # the settled instances' rows, kept
        timeline = tables.timeline_with(timeline, at)
    return {
        "timeline": timeline,
        "fleet_over_time": fleet_over_time(source, freq="1h", as_of=at),
        "costs_daily": cost_over_time(source, freq="1D", by="cloud",
                                      as_of=at)[list(SPEND_COLUMNS)],
        "costs_monthly": cost_over_time(source, freq="MS", by="cloud",
                                        as_of=at)[list(SPEND_COLUMNS)],
    }


# -- the terminal summary ---------------------------------------------------------------------

SUMMARY_DIMENSIONS = ("cloud", "region", "gpu_type", "shade_instance_type", "cluster_id",
                       "status", "rental_type", "tag")


def _table(df: pd.DataFrame, money: Sequence[str] = (), share: Sequence[str] = ()) -> str:
    if df.empty:  # pandas would print "Empty DataFrame" and the column list
        return "  (none)"
    shown = df.copy()
    for column in shown.columns[[pd.api.types.is_integer_dtype(t) for t in shown.dtypes]]:
        shown[column] = shown[column].map(lambda v: v if pd.isna(v) else f"{v:,}")
    for column in money:
        shown[column] = shown[column].map(usd)
    for column in share:
        shown[column] = shown[column].map(lambda v: "n/a" if pd.isna(v) else f"{v:.1%}")
    text = shown.astype("object").where(shown.notna(), "").to_string(index=False)
    return "\n".join("  " + line for line in text.splitlines())


def _unknown(n: int, why: str = "") -> str:
    """`` (unknown for N instances)``, or nothing when N is 0."""
    if not n:
        return ""
    return f" (unknown for {n:,} instance{'s' * (n != 1)}{' ' + why if why else ''})"


def _unknown_volumes(n: int) -> str:
    return f", {n} without a price" if n else ""


def _unknown_accrued(instances: int, volumes: int) -> str:
    """`` (unknown for N instances, M volumes)``, or nothing when both are 0."""
    parts = [f"{n:,} {what}{'s' * (n != 1)}" for n, what in ((instances, "instance"),
                                                          (volumes, "volume")) if n]
    return f" (unknown for {', '.join(parts)})" if parts else ""


def _not_deleted(instances: pd.DataFrame, settled: int = 0) -> str:
    """``of N instances not deleted, besides M deleted``: the newest state of every instance
    the sources saw (a history's deleted and vanished ones too, which are no snapshot's;
    ``settled`` more deleted ones, whose rows the store keeps as sums)."""
    deleted = (instances["status"] == "deleted").fillna(False).to_numpy(dtype=bool)
    live = instances.loc[~deleted, "instance_id"].nunique()
    gone = instances.loc[deleted, "instance_id"].nunique() + settled
    return (f"of {live:,} instance{'s' * (live != 1)} not deleted"
            + (f", besides {gone:,} deleted" if gone else ""))


def _count(counts: pd.Series, word: str) -> str:
    n = int(counts.get(word, 0))
    return f"{n:,} {word}" + ("" if n == 1 else "s")


def _forecast_lines(forecast: pd.DataFrame) -> list[str]:
    """The month forecast in two lines: where the month ends, and against last month."""
    row = forecast.iloc[0]
    month = row["month_start"].strftime("%b %Y")
    days = int(row["burn_days"])
    band = ((f" (no band: {row['band_note']})" if not pd.isna(row["band_note"]) else "")
            if pd.isna(row["forecast_low_usd"]) else
            f" ({usd(row['forecast_low_usd'])} to {usd(row['forecast_high_usd'])}, "
            + (f"last {days} days' burn)" if days != 1 else "last day's burn)"))
    lines = [f"  {month}: {usd(row['month_to_date_usd'])} so far; forecast "
             f"{usd(row['forecast_usd'])}{band}"]
    if pd.isna(row["last_month_usd"]):
        lines.append("  last month: unknown (the history starts this month)")
    else:
        partial = "" if row["last_month_complete"] else (
            f", partial: history from {row['observed_from'].strftime('%Y-%m-%d %H:%M')}")
        change = ("" if pd.isna(row["change_fraction"])
                  else f" ({row['change_fraction']:+.0%})")
        lines.append(f"  last month: {usd(row['last_month_usd'])}{partial}; forecast "
                     f"change {'+' if row['change_usd'] >= 0 else ''}"
                     f"{usd(row['change_usd'])}{change}")
    return lines


def _group_count(labels: pd.Series, top: int) -> str:
    """``(29 groups + (standalone), 10 shown)``: a placeholder is no group of its own."""
    real, placeholders = count_groups(labels)
    extra = "".join(f" + {label}" for label in placeholders)
    shown = f", {top} shown" if len(labels) > top else ""
    return f"  ({real:,} group{'s' * (real != 1)}{extra}{shown})"


@old_spellings(renamed={"tables": "fleet"})
def summary_text(fleet: Tables | Bill, *, by: str = "cloud", as_of: TimeLike = None,
                 top: int = 10) -> str:
    """The fleet at a glance: burn rate, month projection, GPUs by type, top costs, findings.

    Every figure comes from the same helpers as the report (``analytics``). ``fleet`` is the
    ``Tables`` of a history or a ``Bill`` that carries it (the summary is then as of the
    Bill's instant); a ``Bill`` built without its history leaves out the month's forecast
    and the cheaper-elsewhere line.
    """
    if by not in SUMMARY_DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(SUMMARY_DIMENSIONS)}; got {by!r}")
    billed = bill_fleet(fleet, as_of=as_of)
    tables = billed.history
    at = billed.as_of
    # a store's settled instances come as kept sums (``settledsums``), added to the others'
    kept = tables.sums if isinstance(tables, SummedTables) else None

    def breakdown(key: str) -> pd.DataFrame:
        sums = breakdown_sums(billed, [key])
        return breakdown_of(sums if kept is None else sums.plus(kept.breakdown(key)))

    totals = breakdown("cloud")
    costs = totals if by == "cloud" else breakdown(by)
    hourly = float(totals["hourly_usd"].sum())
    services = breakdown("service").set_index("service")["hourly_usd"]
    accrued = float(totals["accrued_usd"].sum())
    no_accrued = int(totals["instances_without_accrued"].sum())
    no_volume_accrued = int(totals["volumes_without_accrued"].sum())
    stale, rests_on = trust_notes(billed, totals)
    reported = totals["reported_cost_usd"].sum(min_count=1)
    no_estimate = int(totals["instances_without_estimate"].sum())
    gap = totals["cost_gap_usd"].sum(min_count=1)
    no_price = int(totals["instances_without_price"].sum())
    running = int(totals["running_instances"].sum())
    gpus = int(totals["gpus"].sum())
    elsewhere = []
    if tables is not None and not tables.instance_types.empty:
        savings = market_compare(billed)
        cheaper = int((savings["monthly_saving_usd"] > 0).sum())
        # a saving is positive, as in savings.csv: the positive monthly_saving_usd summed
        saving = potential_monthly_saving_usd(savings)
        elsewhere = [f"  the same GPUs elsewhere: {usd(saving)}/month to save "
                     f"({cheaper} of {len(savings)} running instance types have a cheaper "
                     "available on-demand offer: their monthly_saving_usd in savings.csv "
                     "summed)"]
    severities = pd.Series(finding_counts(billed, None if kept is None else kept.findings))
    lines = [
        *([stale] if stale else []),
        f"Shadeform fleet as of {at.strftime('%Y-%m-%dT%H:%M:%SZ')}",
        f"  running: {running:,} instances, {gpus:,} GPUs "
        f"({_not_deleted(billed.instances, 0 if kept is None else kept.instances)})",
        f"  burn rate: {usd(hourly)}/h = {usd(hourly * 24)}/day = "
        f"{usd(hourly * 730)}/month (730 h){_unknown(no_price, 'without a price')}",
        f"    compute {usd(services.get('compute', 0.0))}/h, storage "
        f"{usd(services.get('storage', 0.0))}/h ({int(totals['volumes'].sum()):,} volumes"
        f"{_unknown_volumes(int(totals['volumes_without_price'].sum()))})",
        f"  accrued so far: {usd(accrued)}{_unknown_accrued(no_accrued, no_volume_accrued)}",
        *[f"    {sentence}" for sentence in rests_on],
        *([] if tables is None else _forecast_lines(month_forecast(billed, hourly=hourly))),
        f"  Shadeform's estimates: {usd(reported)}{_unknown(no_estimate)}; gap "
        f"{usd(gap)} (over the instances with both figures)",
        *elsewhere,
        "",
        "GPUs held, by type:",
        _table(gpu_inventory(billed)[["gpu_type", "instances", "gpus", "gpus_running",
                                        "gpus_pending", "hourly_usd"]], money=["hourly_usd"]),
        "",
        f"Top costs by {by}" + (" (an instance counts once per tag)" if by == "tag" else "")
        + ":",
        _table(costs.head(top)[[by, "running_instances", "gpus", "hourly_usd", "monthly_usd",
                                "accrued_usd", "share_of_hourly"]],
               money=["hourly_usd", "monthly_usd", "accrued_usd"], share=["share_of_hourly"]),
        _group_count(costs[by], top),
        "",
        f"Quality findings: {int(severities.sum()):,} ({_count(severities, 'error')}, "
        f"{_count(severities, 'warning')}, {int(severities.get('info', 0)):,} info); "
        "`shadeanalytics report` writes them to quality.csv",
    ]
    return "\n".join(lines) + "\n"
