"""Measure one ``collect`` run against a hostile server: wall time, exit code, peak RSS, poll.

    python benchmarks/hostile_collect.py trickle_body 5     # behaviour, --deadline seconds
    python benchmarks/hostile_collect.py gzip_bomb 60

Behaviours: trickle_body, trickle_headers, endless_body, gzip_bomb (see
``shadeanalytics.testing.fakeapi.HostileServer``). The collector runs as cron runs it, under
``/usr/bin/time -v`` (peak RSS); the server answers /clusters and /instances/types normally.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from shadeanalytics.testing.fakeapi import HostileServer


def main() -> None:
    kind, deadline = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "5"
    behaviour = {"trickle_body": HostileServer.trickle_body(b'{"instances": []}'),
                 "trickle_headers": HostileServer.trickle_headers(),
                 "endless_body": HostileServer.endless_body(),
                 "gzip_bomb": HostileServer.gzip_bomb()}[kind]
    if kind == "gzip_bomb":
        from shadeanalytics.testing.fakeapi import gzip_bomb

        gzip_bomb(1024**3)  # built before the clock starts
    empty = {"/v1/clusters": HostileServer.json(200, b'{"clusters": []}'),
             "/v1/instances/types": HostileServer.json(200, b'{"instance_types": []}')}
    with tempfile.TemporaryDirectory() as folder, \
            HostileServer({**empty, "/v1/instances": behaviour}) as server:
        db = Path(folder) / "fleet.sqlite"
        began = time.monotonic()
        run = subprocess.run(
            ["/usr/bin/time", "-v", sys.executable, "-m", "shadeanalytics", "collect",
             "--store", str(db), "--base-url", server.url, "--deadline", deadline],
            env={**os.environ, "SHADEFORM_API_KEY": "sk-benchmark"}, capture_output=True,
            text=True, timeout=600)
        took = time.monotonic() - began
        rss = next(line.split()[-1] for line in run.stderr.splitlines()
                   if "Maximum resident" in line)
        with sqlite3.connect(db) as conn:
            polls = conn.execute("SELECT poll_id, outcome, error FROM polls").fetchall()
        conn.close()
    error = [line for line in run.stderr.splitlines() if line.startswith("Error:")]
    print(f"{kind}: exit {run.returncode} after {took:.2f} s, peak RSS {int(rss) / 1024:.0f} "
          f"MiB\n  {error[0] if error else run.stdout.strip()}\n  polls: {polls}")


if __name__ == "__main__":
    main()
