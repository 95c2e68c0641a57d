"""The live flow in one command: ``shadeanalytics demo``.

It starts the fake Shadeform API (:mod:`.testing.fakeapi`) on 127.0.0.1 serving the demo's
fleet (:func:`.testing.demo.demo_scenario`) on a clock that runs fast (``config.fast_clock``:
an hour a second by default), collects it every second into a store with
``live.collect.collect_every``, checks the alert rules after each poll (printing each alert
once, when it first fires), then writes a report and its page. Everything goes into the
folder it is given. The fleet's timeline ends about now, so its numbers read as a live
fleet's would (days running, a few thousand dollars).

This is the one module outside the test kit that imports it (``tests/test_docs.py``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import queue
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import TextIO

import pandas as pd

from . import config
from ._files import atomic_write
from .errors import printable
from .testing.demo import DEMO_KEY, demo_scenario, fleet_start, main, serve_fake_api

__all__ = ["BUDGETS_NAME", "REPORT_NAME", "STORE_NAME", "main", "run_demo", "serve_fake_api"]

#: The folder's files the demo writes (and replaces on a new run).
STORE_NAME = "history.db"
BUDGETS_NAME = "budgets.toml"
REPORT_NAME = "report"
_BUDGETS = """\
# The demo's budgets (the format of `shadeanalytics check --budgets`).
[[budget]]
name = "daily spend"
measure = "daily_usd"
limit = 1500

[[budget]]
name = "monthly projection"
measure = "monthly_usd"
limit = 20000
"""


def run_demo(
    folder: Path,
    *,
    polls: int = 30,
    speed: float = 3600.0,
    every_s: float = 1.0,
    charts: bool = True,
    out: TextIO = sys.stdout,
) -> int:
    """Run the demo into ``folder``; return the number of polls collected (fewer when
    stopped by SIGINT or SIGTERM, in which case no report is written).

    The polls are dated by the fleet's clock, which reads the fleet's first hour at the first
    poll and runs ``speed`` times faster than the wall clock; the schedule's slots are whole
    multiples of ``every_s`` after it, so that (an hour a second, a poll a second) each poll
    sees the next hour of the fleet. The alert rules are checked after each poll in a thread
    of their own (an alert is printed when it first fires), so that checking never delays a
    poll.
    """
    from .analytics.alerts import evaluate, parse_budgets
    from .live.client import ShadeformClient
    from .live.collect import PollLog, Schedule, StopSignals, collect_every
    from .live.store import Store
    from .output.report import resolve_as_of, summary_text, write_report
    from .testing.fakeapi import FakeShadeformAPI

    folder = folder.expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    store_path = folder / STORE_NAME
    for name in (STORE_NAME, f"{STORE_NAME}-wal", f"{STORE_NAME}-shm"):
        with contextlib.suppress(FileNotFoundError):
            (folder / name).unlink()  # a new fleet each run: an old store's dates are later
    budgets_path = folder / BUDGETS_NAME
    atomic_write(budgets_path, _BUDGETS)
    budgets = parse_budgets(config.read_budgets_file(budgets_path), source=budgets_path)
    span_s = (polls - 1) * every_s * speed
    first = fleet_start(span_s + 3600)  # an hour to spare: a late poll is still in the past
    scenario = demo_scenario(first, max(48, math.ceil(span_s / 3600) + 1))
    printing = threading.Lock()
    signals = StopSignals()
    checks: queue.Queue[int | None] = queue.Queue()

    def say(text: str) -> None:
        with printing:
            print(text, file=out, flush=True)

    def checker() -> None:
        """The rules after each poll, in order; each alert printed once, when it first
        fires."""
        seen: set[str] = set()
        while (poll_id := checks.get()) is not None and not signals.stop_requested:
            with Store(store_path, create=False) as store:
                tables = store.read()
                # at the poll's own time: a lagging check still sees each poll's news
                as_of = pd.Timestamp(store.poll(poll_id)["observed_at"])
            for breach in evaluate(tables, budgets=budgets, as_of=as_of):
                if breach.key not in seen:
                    seen.add(breach.key)
                    say(f"  alert ({as_of:%a %H:%M}) {printable(breach.line)}")

    epoch = time.time()
    clock = config.fast_clock(first, speed, epoch)
    with FakeShadeformAPI(DEMO_KEY, scenario, clock=clock) as api:
        make_client = functools.partial(
            ShadeformClient, api_key=DEMO_KEY, base_url=api.url, key_source="the demo's key"
        )
        options = {"make_client": make_client, "now": clock, "deadline_s": 30.0}
        say(
            f"fake Shadeform API at {api.url}; its fleet's clock starts at "
            f"{first:%Y-%m-%d %H:%M} UTC and runs {speed:g}x; collecting every {every_s:g} s "
            f"into {store_path} (Ctrl-C stops)"
        )

        def on_poll(log: PollLog) -> None:
            if log.result is None:
                say(f"poll {log.number}/{polls}: {log.line()}")
                return
            counts = log.result.counts
            seen_at = first + timedelta(seconds=(log.at.timestamp() - epoch) * speed)
            say(
                f"{seen_at:%a %H:%M} poll {log.number}/{polls}: {counts['clusters']} "
                f"clusters, {counts['instances']} instances; {counts['added']} new, "
                f"{counts['changed']} changed, {counts['gone']} gone"
            )
            checks.put(log.result.poll_id)

        worker = threading.Thread(target=checker, name="demo-check", daemon=True)
        worker.start()
        with signals.installed():  # Ctrl-C while the checks catch up ends them too
            try:
                last = collect_every(
                    Schedule(every_s, epoch % every_s),
                    lambda: (store_path, options),
                    signals=signals,
                    max_polls=polls,
                    on_poll=on_poll,
                )
            finally:
                checks.put(None)
                worker.join()
    collected = last.number if last is not None else 0
    if signals.stop_requested:
        say(
            f"stopped ({signals.stop_requested}) after {collected} polls; the store is {store_path}"
        )
        return collected
    with Store(store_path, create=False) as store:
        tables = store.read()
    as_of = resolve_as_of("latest", tables)
    report = folder / REPORT_NAME
    try:
        write_report(
            tables, report, as_of=as_of, charts=charts, html=True, force=True, budgets=budgets
        )
    except KeyboardInterrupt:
        say("stopped while writing the report")
        return collected
    say("")
    say(summary_text(tables, as_of=as_of, top=5))
    say("")
    say(
        f"the report: {report / 'index.html'}; the store: {store_path} (try `shadeanalytics "
        f"summary --store {store_path}`)"
    )
    return collected
