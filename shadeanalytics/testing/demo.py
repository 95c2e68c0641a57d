"""The demo's fleet, and the fake Shadeform API served from the command line.

:func:`demo_scenario` is a small fleet whose timeline is meant to be watched on a fast clock
(``config.fast_clock``): one state an hour, for two days by default. :func:`serve_fake_api`
(``shadeanalytics fake-api``, and ``python -m shadeanalytics.testing.fakeapi``) serves it on
127.0.0.1 until stopped, printing its URL, its key and the ``SHADEANALYTICS_CLOCK`` that dates
a collector's polls on the fleet's clock. ``shadeanalytics demo`` (``shadeanalytics.demo``)
collects it.
"""

from __future__ import annotations

import argparse
import math
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, TextIO

from .. import config
from . import render
from .fakeapi import DEFAULT_FLEET, FakeShadeformAPI, State
from .fleet import HOUR, from_spec, offering

__all__ = ["DEMO_KEY", "demo_scenario", "demo_spec", "fleet_start", "main", "serve_fake_api"]

#: The key the demo's fake API accepts.
DEMO_KEY = "demo-key"

_LLM = "d3f0b2a1-6c5e-4f7a-9b8c-1e2d3c4b5a60"
_HF_CACHE = "f7e6d5c4-b3a2-4190-8f7e-6d5c4b3a2190"
_DATASETS = "0b7c9d21-5e3f-4a68-9c1d-2e4f6a8b0c13"


def _at(start: datetime, hours: float) -> str:
    return (start + timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _life(start: datetime, **hours: float) -> dict[str, str]:
    return {name: _at(start, h) for name, h in hours.items()}


def _nodes(prefix: str) -> list[dict[str, Any]]:
    return [
        {
            "id": f"{prefix}-{n:04d}-4000-8000-00000000000{n}",
            "name": f"{prefix}-node-{n}",
            "cloud_assigned_id": f"{prefix}-vm-{n}",
            "ip": f"198.18.0.{10 + n}",
        }
        for n in range(2)
    ]


def demo_spec(start: datetime, hours: int = 48) -> dict[str, Any]:
    """The demo's fleet as data (:func:`.testing.fleet.from_spec`), hourly polls from
    ``start``: an inference server up for three days, a two-node A100 cluster up since half a
    day, a training run on 8 H100s (hours 1 to 14), an H100 burst cluster (hours 8 to 17), a
    spot instance that fails at hour 5 and stays listed in error, a batch instance that
    vanishes at hour 10, a notebook stuck booting from hour 22 to 40 and, from hour 27, a CPU
    instance on a cloud new to the fleet."""
    llm = DEFAULT_FLEET["instances"][0]
    return {
        "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "every_minutes": 60,
        "polls": hours + 1,
        "instances": [
            {**llm, "id": _LLM, "life": _life(start, created=-72.2, active=-72)},
            {
                "id": "6f1c2b0e-8a4d-4c3e-9b7a-2d5e8f1a3c40",
                "name": "train-h100",
                "offering": "nebius/H100_sxm5x8",
                "region": "eu-north1",
                "cloud_assigned_id": "computeinstance-e00h100train",
                "ip": "198.51.100.24",
                "tags": ["training"],
                "rental": "on_demand_priced",
                "launch": "trainer",
                "life": _life(
                    start,
                    created=0.5,
                    pending_provider=0.6,
                    pending=0.8,
                    active=1,
                    deleting=14,
                    deleted=14.2,
                ),
            },
            {
                "id": "a41e0d7c-3f52-4b8e-8c19-5e7d2a9b6f01",
                "name": "spot-rtx6000",
                "offering": "datacrunch/RTX6000Ada",
                "region": "helsinki-finland-1",
                "cloud_assigned_id": "dc-rtx-7781",
                "ip": "192.0.2.77",
                "rental": "spot",
                "error_detail": "provider out of capacity",
                "life": _life(start, created=4, pending_provider=4.2, error=5),
            },
            {
                "id": "c7b3e2f9-1d64-4a0b-b5e8-9f2c4d6a8e12",
                "name": "batch-a6000",
                "offering": "lambdalabs/A6000",
                "region": "us-east-1",
                "cloud_assigned_id": "0920582c7ff041399e34823a0be62549",
                "ip": "192.0.2.15",
                "tags": ["batch"],
                "rental": "on_demand_priced",
                "life": _life(start, created=-5, active=-4.9, gone=10),
            },
            {
                "id": "e58a9c13-7b2f-4d6e-a0c4-3b1f9e8d7c25",
                "name": "notebook-a6000",
                "offering": "paperspace/A6000",
                "region": "ny2",
                "cloud_assigned_id": "ps-nb-a6000-0042",
                "ip": "203.0.113.88",
                "ports": [[8888, 8888]],
                "rental": "on_demand_priced",
                "launch": "jupyter",
                "life": _life(start, created=21.8, pending=22, active=40),
            },
            {
                "id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                "name": "cpu-helper",
                "offering": "vultr/cpu_mini",
                "region": "ewr",
                "cloud_assigned_id": "vultr-42",
                "ip": "192.0.2.42",
                "rental": "on_demand_priced",
                "life": _life(start, created=26.5, active=26.6),
            },
        ],
        "clusters": [
            {
                "id": "8eda86fe-0f36-41ed-9837-0ccf8f6e0fcb",
                "name": "denvr-a100-cluster",
                "offering": "denvr/A100_80Gx8",
                "region": "houston-usa-1",
                "cloud_cluster_id": "cluster-abc123",
                "nodes": _nodes("1a2b3c4d"),
                "life": _life(start, created=-12.3, active=-12),
            },
            {
                "id": "3c9d5e7f-2a4b-4c6d-8e0f-1a3b5c7d9e2f",
                "name": "h100-burst",
                "offering": "crusoe/H100_sxm5x8",
                "region": "us-east1-a",
                "cloud_cluster_id": "crusoe-cl-5521",
                "nodes": _nodes("5e6f7a8b"),
                "life": _life(start, created=8, pending=8.3, active=9, deleting=16, gone=17),
            },
        ],
    }


def demo_scenario(start: datetime, hours: int = 48) -> list[State]:
    """The fake API's states of :func:`demo_spec`: one an hour from ``start``, ``hours + 1``
    of them, with the catalogue of the fleet's offerings and two volumes (one mounted by the
    inference server, one by nobody)."""
    spec = demo_spec(start, hours)
    first, nodes, clusters = from_spec(spec)
    offerings = dict.fromkeys(item["offering"] for item in [*spec["instances"], *spec["clusters"]])
    types = {
        "instance_types": [
            render.instance_type(
                offering(*key.split("/")), lambda region: True, lambda region: False
            )
            for key in offerings
        ]
    }
    volume_types = {
        "volume_types": [
            render.volume_type("hyperstack", "canada-1", "0.000097"),
            render.volume_type("datacrunch", "helsinki-finland-1", "0.0001"),
        ]
    }
    extras = {_LLM: {"volume_ids": [_HF_CACHE], "auto_delete": {"spend_threshold": "500"}}}
    states = []
    for index in range(hours + 1):
        poll = render.poll(first, index * HOUR, HOUR, nodes, clusters)
        since = 72 + index  # hours the volumes have been billed
        volumes = {
            "volumes": [
                render.volume(
                    _HF_CACHE,
                    "hf-cache",
                    100,
                    "hyperstack",
                    "canada-1",
                    "0.000097",
                    since,
                    _LLM,
                    multi_mount=True,
                ),
                render.volume(
                    _DATASETS,
                    "datasets",
                    500,
                    "datacrunch",
                    "helsinki-finland-1",
                    "0.0001",
                    since,
                    None,
                ),
            ]
        }
        states.append(
            State(
                at=first + timedelta(hours=index),
                clusters=poll["clusters"],
                instances=poll["instances"],
                instance_types=types,
                instance_info_extras=extras,
                volumes=volumes,
                volume_types=volume_types,
            )
        )
    return states


def fleet_start(span_s: float, now: datetime | None = None) -> datetime:
    """The fleet's first hour: a whole hour at least ``span_s`` before the current one, so
    that the fleet's clock reaches about now, never later, after ``span_s``."""
    moment = (now or datetime.now(UTC)).replace(minute=0, second=0, microsecond=0)
    return moment - timedelta(hours=math.ceil(span_s / 3600))


def serve_fake_api(
    *,
    key: str = DEMO_KEY,
    speed: float = 60.0,
    out: TextIO = sys.stdout,
    hours: int = 48,
    stop_after: float | None = None,
) -> None:
    """Serve the demo fleet on 127.0.0.1 until SIGINT or SIGTERM (or ``stop_after``
    seconds), printing how to collect from it."""
    first = fleet_start(hours * 3600)  # the fleet's hours end at the current hour
    epoch = time.time()
    clock = config.fast_clock(first, speed, epoch)
    stop: list[str] = []

    def on_signal(number: int, frame: object) -> None:
        stop.append(signal.Signals(number).name)

    previous = {
        number: signal.signal(number, on_signal) for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        with FakeShadeformAPI(key, demo_scenario(first, hours), clock=clock) as api:
            print(
                f"fake Shadeform API at {api.url}, key {key}; its fleet's clock starts at "
                f"{first:%Y-%m-%d %H:%M} UTC and runs {speed:g}x (the fleet lives {hours} "
                "hours, then stays as it is)\nto collect from it:\n"
                f"  export {config.BASE_URL_ENV}={api.url} {config.API_KEY_ENV}={key}\n"
                f"  export {config.CLOCK_ENV}='{config.clock_text(first, speed, epoch)}'\n"
                "  shadeanalytics collect --store fake.db --every 5s\nCtrl-C stops it.",
                file=out,
                flush=True,
            )
            began = time.monotonic()
            while not stop and (stop_after is None or time.monotonic() - began < stop_after):
                time.sleep(0.1)
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    print(f"stopped ({stop[0] if stop else 'time'})", file=out, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m shadeanalytics.testing.fakeapi [--key KEY] [--speed X]``."""
    parser = argparse.ArgumentParser(
        prog="python -m shadeanalytics.testing.fakeapi",
        description="Serve the demo fleet until stopped.",
    )
    parser.add_argument("--key", default=DEMO_KEY, help="the API key it accepts")
    parser.add_argument(
        "--speed",
        type=float,
        default=60.0,
        help="fleet seconds per real second (default: 60, an hour a minute)",
    )
    args = parser.parse_args(argv)
    if not args.speed > 0:
        parser.error("--speed must be positive")
    serve_fake_api(key=args.key, speed=args.speed)
    return 0
