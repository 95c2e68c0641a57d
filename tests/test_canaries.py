"""Secret canaries: a unique canary in every secret field and in the API key, the whole
pipeline run (collector CLI at DEBUG with redirect, 429 and 503 faults, report and summary
from the store, the notebook library paths, raw files through ``sa.read``, provoked errors),
then every output byte searched for every canary in raw, base64 (standard and urlsafe, at the
three alignments), URL-encoded, JSON-escaped and repr forms: zero hits.

Secret fields planted (each with its own canary, see ``CANARIES``): docker env values,
registry username and password, docker args, the startup script (a canary inside the decoded
script, and the base64 text itself), the top-level ``envs[].value`` of the instance info
shape, in standalone instances, in cluster members and in the info endpoint's extras; the API
key, and a wrong API key.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import functools
import hashlib
import json
import logging
import sqlite3
import subprocess
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pandas as pd
import pytest
from conftest import run_cli

import shadeanalytics as sa
from shadeanalytics.analytics.billing import bill
from shadeanalytics.analytics.costs import cluster_summary, cost_breakdown
from shadeanalytics.analytics.finops import cost_over_time, month_forecast
from shadeanalytics.analytics.inventory import gpu_inventory
from shadeanalytics.analytics.lifecycle import lifecycle
from shadeanalytics.analytics.quality import quality_checks
from shadeanalytics.analytics.timeline import fleet_over_time, status_timeline
from shadeanalytics.errors import (
    AuthenticationError,
    DataWarning,
    InputError,
    NotFoundError,
    SchemaError,
    ServerError,
    ShadeanalyticsError,
    TransportError,
)
from shadeanalytics.ingest.normalize import redact
from shadeanalytics.live.client import ClientPolicy, ShadeformClient
from shadeanalytics.live.store import Store
from shadeanalytics.output.focus import write_focus
from shadeanalytics.output.report import summary_text, write_report
from shadeanalytics.testing.fakeapi import (
    DEFAULT_SECRETS,
    FakeShadeformAPI,
    State,
    default_scenario,
)

ROOT = Path(__file__).resolve().parents[1]

# Each canary differs in its raw, URL-encoded, JSON-escaped and base64 forms: it holds `/`,
# `+`, `=`, `"`, `&`, `%`, a backslash, a space and a non-ASCII letter.
_TAIL = '/+="&% \\é'


def _canary(name: str) -> str:
    return f"cnry-{name}-{hashlib.sha256(name.encode()).hexdigest()[:8]}{_TAIL}"


_SECRET_FIELDS = (
    "docker-env", "docker-env-2", "registry-user", "registry-password", "docker-args",
    "script", "top-env", "member-docker-env", "member-registry-user",
    "member-registry-password", "member-docker-args", "member-script", "member-top-env",
    "info-env", "notebook-env",
)
CANARIES: dict[str, str] = {name: _canary(name) for name in _SECRET_FIELDS}
# API keys: printable ASCII without space (a key with a space is refused before any request)
KEY = "cnry-apikey-7Qz/+=\"&%\\k41"
WRONG_KEY = "cnry-wrongkey-5a1e/+=\"&%\\9d"


def _script(canary: str) -> str:
    return base64.b64encode(
        f"#!/bin/bash\nset -eu\nexport HF_TOKEN='{canary}'\npython train.py\n".encode()
    ).decode()


SCRIPT_B64 = _script(CANARIES["script"])
MEMBER_SCRIPT_B64 = _script(CANARIES["member-script"])
SECRETS: dict[str, str] = {
    **CANARIES,
    "script-base64-text": SCRIPT_B64,
    "member-script-base64-text": MEMBER_SCRIPT_B64,
    "api-key": KEY,
    "wrong-api-key": WRONG_KEY,
    **{f"default-secret-{i}": s for i, s in enumerate(DEFAULT_SECRETS)},
}

LLM = "d290f1ee-6c54-4b01-90e6-d701748f0851"
TRAIN = "6f1c2b0e-8a4d-4c3e-9b7a-2d5e8f1a3c40"
BURST = "3c9d5e7f-2a4b-4c6d-8e0f-1a3b5c7d9e2f"


# -- the detector -------------------------------------------------------------------------------


def _b64_inner(raw: bytes, offset: int, urlsafe: bool) -> bytes:
    """The part of the base64 of ``raw`` that does not depend on its neighbours, when ``raw``
    starts ``offset`` bytes after a 3-byte boundary of a longer encoded text."""
    encode = base64.urlsafe_b64encode if urlsafe else base64.b64encode
    encoded = encode(b"\0" * offset + raw)
    # the first 4 characters mix in the bytes before; the last 2 the bytes after
    return encoded[4 if offset else 0 :].rstrip(b"=")[:-2]


def forms(secret: str) -> dict[str, bytes]:
    """``secret`` as it could leak, by name of the encoding."""
    raw = secret.encode()
    out = {
        "raw": raw,
        "url-quote": quote(secret, safe="").encode(),
        "url-quote-plus": quote_plus(secret).encode(),
        "url-quote-path": quote(secret).encode(),
        "json-ascii": json.dumps(secret)[1:-1].encode(),
        "json-utf8": json.dumps(secret, ensure_ascii=False)[1:-1].encode(),
        "json-slash": json.dumps(secret)[1:-1].replace("/", "\\/").encode(),
        "repr": repr(secret)[1:-1].encode(),
        "ascii": ascii(secret)[1:-1].encode(),
    }
    for offset in range(3):
        out[f"base64@{offset}"] = _b64_inner(raw, offset, urlsafe=False)
        out[f"base64url@{offset}"] = _b64_inner(raw, offset, urlsafe=True)
    return out


_FORMS = {name: forms(secret) for name, secret in SECRETS.items()}


def leaks(blobs: dict[str, bytes]) -> list[tuple[str, str, str]]:
    """(blob, secret, form) for every form of every secret found in a blob."""
    return [
        (blob_name, secret_name, form_name)
        for blob_name, blob in blobs.items()
        for secret_name, secret_forms in _FORMS.items()
        for form_name, form in secret_forms.items()
        if form in blob
    ]


def files_under(root: Path) -> dict[str, bytes]:
    """Every file under ``root`` (recursively), by relative path, plus the listing itself."""
    out = {}
    names = []
    for path in sorted(root.rglob("*")):
        names.append(str(path.relative_to(root)))
        if path.is_file():
            out[f"{root.name}/{path.relative_to(root)}"] = path.read_bytes()
    out[f"{root.name}/<listing>"] = "\n".join(names).encode()
    return out


def exception_text(exc: BaseException) -> str:
    """str, repr and the formatted traceback of ``exc``, plus str and repr of every exception
    chained to it (causes, and contexts even where suppressed)."""
    parts = ["".join(traceback.format_exception(exc))]
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        parts += [str(current), repr(current), repr(getattr(current, "args", ()))]
        todo += [current.__cause__, current.__context__]
    return "\n".join(parts)


# -- the scenario with canaries ------------------------------------------------------------------


def _docker(env: str, user: str, password: str, args: str, env2: str | None = None) -> dict:
    envs = [{"name": "HUGGING_FACE_HUB_TOKEN", "value": env}]
    if env2 is not None:
        envs.append({"name": "OPENAI_API_KEY", "value": env2})
    return {
        "type": "docker",
        "docker_configuration": {
            "image": "vllm/vllm-openai:latest",
            "args": args,
            "shared_memory_in_gb": 8,
            "envs": envs,
            "port_mappings": [{"host_port": 80, "container_port": 8000}],
            "volume_mounts": [{"host_path": "/data", "container_path": "/data"}],
            "registry_credentials": {"username": user, "password": password},
        },
    }


def _plant_instance(inst: dict[str, Any]) -> None:
    name = inst.get("name")
    if name == "llm-serve":
        inst["launch_configuration"] = _docker(
            CANARIES["docker-env"], CANARIES["registry-user"], CANARIES["registry-password"],
            f"--model mistralai/Mistral-7B-v0.1 --api-key {CANARIES['docker-args']}",
            env2=CANARIES["docker-env-2"])
        # the instance info shape, listed: top-level envs with values
        inst["envs"] = [{"name": "WANDB_API_KEY", "value": CANARIES["top-env"]}]
    elif name == "train-h100":
        inst["launch_configuration"] = {
            "type": "script", "script_configuration": {"base64_script": SCRIPT_B64}}
    elif name == "notebook-a6000":
        inst["launch_configuration"]["docker_configuration"]["envs"] = [
            {"name": "JUPYTER_TOKEN", "value": CANARIES["notebook-env"]}]


def _plant_member(node: dict[str, Any], n: int) -> None:
    if n == 0:
        node["launch_configuration"] = _docker(
            CANARIES["member-docker-env"], CANARIES["member-registry-user"],
            CANARIES["member-registry-password"], CANARIES["member-docker-args"])
    else:
        node["launch_configuration"] = {
            "type": "script", "script_configuration": {"base64_script": MEMBER_SCRIPT_B64}}
        node["envs"] = [{"name": "NCCL_TOKEN", "value": CANARIES["member-top-env"]}]


def _planted(state: State) -> State:
    clusters = copy.deepcopy(state.clusters)
    instances = copy.deepcopy(state.instances)
    for inst in instances["instances"]:
        _plant_instance(inst)
    for cluster in clusters["clusters"]:
        for n, node in enumerate(cluster["instances"]):
            _plant_member(node, n)
    extras = copy.deepcopy(dict(state.instance_info_extras))
    extras[LLM] = {**extras[LLM], "envs": [{"name": "WANDB_API_KEY",
                                            "value": CANARIES["info-env"]}]}
    return dataclasses.replace(state, clusters=clusters, instances=instances,
                               instance_types=copy.deepcopy(state.instance_types),
                               instance_info_extras=extras)


def canary_scenario() -> list[State]:
    """The default scenario with a canary in every secret field of every state."""
    return [_planted(s) for s in default_scenario()]


# -- the pipeline ---------------------------------------------------------------------------------


@dataclass
class Outputs:
    """Everything the pipeline produced, to search, and facts that show it was not vacuous."""

    blobs: dict[str, bytes] = field(default_factory=dict)
    runs: dict[str, subprocess.CompletedProcess[str]] = field(default_factory=dict)
    errors: dict[str, BaseException] = field(default_factory=dict)
    warning_texts: list[str] = field(default_factory=list)
    log_lines: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def run(self, name: str, *args: str, key: str | None = None, expect: int = 0,
            now: datetime | None = None) -> subprocess.CompletedProcess[str]:
        done = run_cli(*args, key=key, now=now, timeout=180)
        assert done.returncode == expect, f"{name}: exit {done.returncode}; {done.stderr}"
        self.runs[name] = done
        self.blobs[f"{name}: stdout"] = done.stdout.encode()
        self.blobs[f"{name}: stderr"] = done.stderr.encode()
        return done

    def expect_error(self, name: str, kind: type[BaseException], call: Any) -> BaseException:
        with pytest.raises(kind) as caught:
            call()
        self.errors[name] = caught.value
        self.blobs[f"exception: {name}"] = exception_text(caught.value).encode()
        return caught.value

    def show(self, name: str, value: Any) -> None:
        """What a notebook would display of ``value``."""
        if isinstance(value, pd.DataFrame):
            text = "\n".join([value.to_string(), value.to_csv(),
                              value.to_json(date_format="iso")])
        else:
            text = repr(value) + "\n" + str(value)
        self.blobs[f"display: {name}"] = text.encode()


class _Capture(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__(level=logging.DEBUG)
        self.sink = sink
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(self.format(record))


def _collect_runs(out: Outputs, api: FakeShadeformAPI, db: Path) -> None:
    """The collector CLI, verbose, one run per state, with faults along the way."""
    store = ["collect", "--store", str(db), "--base-url", api.url, "--verbose"]

    def run(name: str, key: str = KEY, expect: int = 0) -> None:  # dated by the fake's state
        out.run(name, *store, key=key, expect=expect, now=api.state.at)

    run("collect 1")
    api.inject("/clusters", "redirect")  # 302 to another origin: refused, the key kept home
    run("collect redirect", expect=75)
    api.inject("/instances", 429, times=2, retry_after=0)  # retried, then served
    run("collect 429")
    api.inject("/instances/types", 503, times=3)  # outlasts the 3 attempts: a failed poll
    run("collect 503", expect=75)
    run("collect bad key", key=WRONG_KEY, expect=1)
    for _ in range(len(api.scenario) - api.state_index):  # the remaining states, the last too
        run(f"collect state {api.state_index}")


def _library(out: Outputs, db: Path, tmp: Path) -> None:
    """What the notebooks do with the store: read it, the analytics, a report with charts."""
    with Store(db, create=False) as store:
        history = store.read()
        polls = store.polls()
        out.facts["store_polls"] = polls["outcome"].tolist()
        out.show("store polls", polls)
        out.show("store stats", store.stats())
    as_of = history.polls["observed_at"].max()
    out.show("latest tables", history.latest())
    out.show("tables", history)
    for name, df in history.frames():
        out.show(f"history.{name}", df)
    out.show("timeline", status_timeline(history, as_of=as_of))
    out.show("fleet", fleet_over_time(history, as_of=as_of))
    for by in ("cloud", "gpu_type", "cluster_id", "tag"):
        out.show(f"costs by {by}", cost_breakdown(history, by=by, as_of=as_of))
    out.show("cluster summary", cluster_summary(history, as_of=as_of))
    out.show("inventory", gpu_inventory(history, as_of=as_of))
    out.show("lifecycle", lifecycle(history, as_of=as_of))
    out.show("quality", quality_checks(history, as_of=as_of))
    out.show("bill", bill(history, as_of=as_of).instances)
    out.show("summary", summary_text(history, as_of=as_of))
    write_report(history, tmp / "report-lib", as_of=as_of, include_network=True)
    out.show("spend", cost_over_time(history, freq="1h", by="resource_id", as_of=as_of))
    out.show("forecast", month_forecast(history, as_of=as_of))
    write_focus(history, tmp / "focus-lib", as_of=as_of)
    out.facts["docker_envs"] = history.docker_envs["name"].tolist()


def _api_errors(out: Outputs, api: FakeShadeformAPI, inputs: Path) -> None:
    """Errors of the client, provoked in this process; the info response saved to a file."""
    make = functools.partial(ShadeformClient, base_url=api.url,
                             policy=ClientPolicy(sleep=lambda s: None))
    with make(api_key=KEY) as client:
        info = client.instance_info(LLM)
        out.facts["info_envs"] = info.get("envs")
        (inputs / "llm-serve-info.json").write_text(json.dumps(info))
        out.expect_error("404 instance info", NotFoundError, lambda: client.instance_info(TRAIN))
        out.expect_error("404 cluster info", NotFoundError, lambda: client.cluster_info(BURST))
        api.inject("/instances", "redirect")
        out.expect_error("redirect", TransportError, client.instances)
        api.inject("/clusters", 503, times=3)
        out.expect_error("503", ServerError, client.clusters)
    with make(api_key=WRONG_KEY) as client:
        out.expect_error("bad key", AuthenticationError, client.clusters)
    out.expect_error("key with a space", AuthenticationError,
                     lambda: make(api_key=KEY + " " + WRONG_KEY))
    out.expect_error("key with a newline", AuthenticationError,
                     lambda: make(api_key=KEY + "\n" + WRONG_KEY))


# A wrong-typed canary in a field the loader types: each gives a SchemaError naming the path
# (a bad timestamp is tested on its own, for what its traceback shows)
_MUTATIONS = {
    "hourly_price": CANARIES["docker-env"],
    "cost_estimate": [CANARIES["registry-password"]],
    "ssh_port": CANARIES["docker-args"],
    "shade_cloud": [CANARIES["top-env"]],
    "num_gpus": {"value": CANARIES["script"]},
}


def _write_inputs(scenario: list[State], inputs: Path, bad: Path) -> None:
    """The raw responses (with their secrets) as files: what sa.read users load."""
    lines = []
    for state in scenario:
        at = state.at.strftime("%Y-%m-%dT%H:%M:%SZ")
        for endpoint, body in (("/clusters", state.clusters), ("/instances", state.instances),
                               ("/instances/types", state.instance_types)):
            lines.append(json.dumps({"observed_at": at, "endpoint": endpoint,
                                     "response": body}))
    (inputs / "polls.jsonl").write_text("\n".join(lines) + "\n")
    last = scenario[-1]
    for field_name, value in _MUTATIONS.items():
        body = copy.deepcopy(last.instances)
        llm = next(i for i in body["instances"] if i["id"] == LLM)
        if field_name == "num_gpus":
            llm["configuration"]["num_gpus"] = value
        else:
            llm[field_name] = value
        (bad / f"{field_name}.json").write_text(json.dumps(body))
    # JSON cut off in the middle of a secret, and the same bytes made invalid UTF-8
    text = json.dumps(last.instances)
    cut = text.index("cnry-docker-env") + 8
    (bad / "truncated.json").write_text(text[:cut])
    (bad / "not-utf8.json").write_bytes(text.encode().replace(b"llm-serve", b"llm-\xff\xfe", 1))


def _files(out: Outputs, inputs: Path, bad: Path, tmp: Path) -> None:
    """sa.read of the raw files, errors="raise" and "skip", the report, and the CLI on them."""
    tables = sa.read(inputs, errors="raise")
    out.show("sa.read tables", tables)
    for name, df in tables.frames():
        out.show(f"sa.read {name}", df)
    as_of = tables.polls["observed_at"].max()
    write_report(tables, tmp / "report-files", as_of=as_of, include_network=True)
    for path in sorted(bad.iterdir()):
        out.expect_error(f"sa.read raise {path.name}", InputError,
                         functools.partial(sa.read, [inputs, path], errors="raise"))
    assert isinstance(out.errors["sa.read raise hourly_price.json"], SchemaError)
    readable = [p for p in sorted(bad.iterdir()) if p.name.startswith(tuple(_MUTATIONS))]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", DataWarning)
        skipped = sa.read([inputs, *readable], errors="skip")
    out.facts["skipped"] = skipped.skipped
    out.warning_texts += [str(w.message) for w in caught] + list(skipped.warnings)
    out.show("skipped tables", skipped)
    write_report(skipped, tmp / "report-skip", as_of=as_of, charts=False)
    # the store refuses a poll of the wrong shape: its text neither
    with Store(tmp / "scratch.sqlite") as scratch:
        out.expect_error("record_poll wrong shape", SchemaError, lambda: scratch.record_poll(
            "2026-03-02T12:00:00Z", clusters={"clusters": [{"id": "c", "instances": KEY}]},
            instances={"instances": CANARIES["docker-env"]}, instance_types=None))
    # the same files through the command line
    out.run("report files", "report", str(inputs), "--out", str(tmp / "report-cli-files"),
            "--include-network")
    out.run("report files skip", "report", str(inputs), *map(str, readable), "--errors",
            "skip", "--out", str(tmp / "report-cli-skip"), "--no-charts")
    out.run("summary files", "summary", str(inputs))
    out.run("export focus files", "export", str(inputs), "--format", "focus", "--out",
            str(tmp / "focus-cli-files"))
    out.run("report bad", "report", str(inputs), str(bad / "hourly_price.json"), "--out",
            str(tmp / "report-cli-bad"), expect=1)
    out.run("report truncated", "report", str(bad / "truncated.json"), "--out",
            str(tmp / "report-cli-bad"), expect=1)


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outputs]:
    tmp = tmp_path_factory.mktemp("canaries")
    collector, inputs, bad = tmp / "collector", tmp / "inputs", tmp / "bad"
    for folder in (collector, inputs, bad):
        folder.mkdir()
    db = collector / "history.db"
    scenario = canary_scenario()
    out = Outputs()
    logs = _Capture(out.log_lines)
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(logs)
    root.setLevel(logging.DEBUG)
    try:
        with FakeShadeformAPI(api_key=KEY, scenario=scenario,
                              advance_on="/instances/types") as api:
            out.run("collect first", "collect", "--store", str(db), "--base-url", api.url,
                    "--verbose", key=KEY, now=api.state.at)
            # an open reader keeps the write-ahead log on disk (the last connection to close
            # checkpoints it away), so that its bytes can be searched
            reader = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
            try:
                reader.execute("SELECT count(*) FROM polls").fetchone()
                _collect_runs(out, api, db)
                out.run("report store", "report", "--store", str(db), "--out",
                        str(tmp / "report-cli"), "--include-network")
                out.run("summary store", "summary", "--store", str(db))
                out.run("summary store by tag", "summary", "--store", str(db), "--by", "tag")
                _library(out, db, tmp)
                _api_errors(out, api, inputs)
                out.facts["wal_size"] = Path(f"{db}-wal").stat().st_size
                out.blobs.update(files_under(collector))  # db, -wal, -shm, lock: reader open
            finally:
                reader.close()
            out.facts["other_requests"] = api.other.requests
            out.facts["requests"] = api.requests
        out.blobs.update({f"closed {k}": v for k, v in files_under(collector).items()})
        _write_inputs(scenario, inputs, bad)
        _files(out, inputs, bad, tmp)
    finally:
        root.removeHandler(logs)
        root.setLevel(old_level)
    for folder in sorted(tmp.iterdir()):
        if folder.is_dir() and folder.name.startswith("report"):
            out.blobs.update(files_under(folder))
    out.blobs["warnings"] = "\n".join(out.warning_texts).encode()
    out.blobs["log records"] = "\n".join(out.log_lines).encode()
    yield out


#: the whole pipeline runs once per module: the long tier
pytestmark = pytest.mark.hardening


# -- the tests ------------------------------------------------------------------------------------


def test_no_canary_anywhere(pipeline: Outputs) -> None:
    """Zero hits of 22 secrets x 15 forms in every file written (store, -wal, -shm, lock,
    CSV, PNG), every stdout/stderr, every exception text, warning, log record and display."""
    assert (len(_FORMS), {len(f) for f in _FORMS.values()}) == (22, {15})
    found = leaks(pipeline.blobs)
    assert found == [], "\n".join(f"{b}: {s} as {f}" for b, s, f in found)


def test_the_pipeline_was_not_vacuous(pipeline: Outputs) -> None:
    """The secrets were served and handled: faults happened, logs were written at DEBUG, the
    write-ahead log and every report existed, errors were raised with their paths."""
    scenario = canary_scenario()
    served = json.dumps([dataclasses.asdict(s) for s in scenario], default=str)
    for name, secret in SECRETS.items():
        if name in ("script", "member-script"):  # inside the decoded script
            encoded = SCRIPT_B64 if name == "script" else MEMBER_SCRIPT_B64
            assert secret in base64.b64decode(encoded).decode()
            assert encoded in served
        elif not name.startswith(("api-key", "wrong-api-key", "default-secret")):
            assert json.dumps(secret)[1:-1] in served, name
    assert not any(s in served for s in DEFAULT_SECRETS)
    # the info endpoint really sent the top-level envs with a value over HTTP
    assert pipeline.facts["info_envs"] == [{"name": "WANDB_API_KEY",
                                            "value": CANARIES["info-env"]}]
    runs = pipeline.runs
    assert "GET /v1/clusters -> 302" in runs["collect redirect"].stderr
    assert "another origin" in runs["collect redirect"].stderr
    assert "GET /v1/instances -> 429" in runs["collect 429"].stderr
    assert "retrying in" in runs["collect 429"].stderr
    assert "DEBUG" in runs["collect 429"].stderr  # urllib3's and ours
    assert runs["collect 503"].stderr.count("GET /v1/instances/types -> 503") == 3
    assert "401" in runs["collect bad key"].stderr
    # the key never went to the other origin
    assert not any(r.api_key_present for r in pipeline.facts["other_requests"])
    assert all(r.api_key_present for r in pipeline.facts["requests"])
    polls = pipeline.facts["store_polls"]
    assert polls.count("failed") == 3 and polls.count("ok") == 7
    assert pipeline.facts["wal_size"] > 0
    assert b"llm-serve" in pipeline.blobs["collector/history.db-wal"]
    assert "collector/history.db.lock" not in pipeline.blobs  # the lock is the store itself
    # what is kept of the secrets: env names only
    assert "HUGGING_FACE_HUB_TOKEN" in pipeline.facts["docker_envs"]
    for report in ("report-cli", "report-lib", "report-files", "report-cli-files"):
        assert f"{report}/instances.csv" in pipeline.blobs
        assert f"{report}/status_timeline.png" in pipeline.blobs
        assert f"{report}/index.html" in pipeline.blobs  # the page is searched too
    assert pipeline.facts["skipped"] == len(_MUTATIONS)
    assert any("hourly_price" in w for w in pipeline.warning_texts)
    hourly = pipeline.errors["sa.read raise hourly_price.json"]
    assert isinstance(hourly, SchemaError) and "hourly_price" in str(hourly)
    assert "$.instances[0].ssh_port" in str(pipeline.errors["sa.read raise ssh_port.json"])
    assert any("GET /v1/instances" in line for line in pipeline.log_lines)
    for name in ("report bad", "report truncated"):
        lines = runs[name].stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), runs[name].stderr


def test_the_detector_finds_every_form(tmp_path: Path) -> None:
    """Each secret planted in a file in each form, inside longer text at each base64
    alignment, is found by the same file walk and search."""
    for name, secret in SECRETS.items():
        raw = secret.encode()
        for k, prefix in enumerate((b"", b"a", b"ab")):
            text = prefix + raw + b"tail"
            planted = {
                f"base64@{k}": base64.b64encode(text),
                f"base64url@{k}": base64.urlsafe_b64encode(text),
                "url-quote": quote(text.decode(), safe="").encode(),
                "url-quote-plus": quote_plus(text.decode()).encode(),
                "json-ascii": json.dumps({"v": text.decode()}).encode(),
                "json-utf8": json.dumps({"v": text.decode()}, ensure_ascii=False).encode(),
                "repr": repr(text.decode()).encode(),
                "raw": text,
            }
            folder = tmp_path / f"plant-{k}"
            folder.mkdir(exist_ok=True)
            for form, data in planted.items():
                (folder / f"{form}.png").write_bytes(b"\x89PNG\r\n" + data + b"IEND")
            found = {(blob.rsplit("/", 1)[1].removesuffix(".png"), s)
                     for blob, s, _ in leaks(files_under(folder))}
            assert {(form, name) for form in planted} <= found, (name, k)
            for path in folder.iterdir():
                path.unlink()
    assert leaks({"clean": b"cnry- nothing here " + base64.b64encode(b"cnry-")}) == []


def test_secret_fields_of_an_unexpected_shape_are_redacted_too(tmp_path: Path) -> None:
    """Schema drift of a secret field: the info shape's top-level ``envs`` sent as one object
    instead of a list keeps its value out of the store all the same."""
    secret = CANARIES["top-env"]
    record = {"id": "i-1", "name": "n", "envs": {"name": "WANDB_API_KEY", "value": secret}}
    kept = json.dumps(redact(record), ensure_ascii=False).encode()
    assert leaks({"redact()": kept}) == [], "redact() kept a secret value"
    with Store(tmp_path / "s.sqlite") as store:
        store.record_poll("2026-03-02T10:00:00Z", clusters=None,
                          instances={"instances": [record]}, instance_types=None)
    assert leaks(files_under(tmp_path)) == []


def test_non_utf8_bytes_inside_a_secret_field_are_refused_like_elsewhere() -> None:
    """README: non-UTF-8 bytes are an InvalidJSONError. The general path says so wherever the
    bytes are; the msgspec fast path leaves env values, docker args and registry credentials
    undecoded (msgspec.Raw) and never validates them, so the same bytes load there."""
    state = canary_scenario()[-1]
    text = json.dumps(state.instances).encode()
    assert b"cnry-docker-env" in text
    bad = text.replace(b"cnry-docker-env", b"cnry-\xff\xfe", 1)
    with pytest.raises(InputError, match="not valid UTF-8"):
        sa.read(bad.replace(b'{"instances"', b'{"x": 1, "instances"', 1))  # general path
    with pytest.raises(InputError, match="not valid UTF-8"):
        sa.read(bad)  # the typed fast path: loads


def test_a_bad_timestamp_error_does_not_show_the_value_in_its_traceback() -> None:
    """A secret pasted into a timestamp field: the SchemaError names the path, and its
    traceback, as a notebook or a log prints it, holds no form of the value."""
    state = canary_scenario()[-1]
    body = copy.deepcopy(state.instances)
    body["instances"][0]["created_at"] = CANARIES["registry-password"]
    with pytest.raises(SchemaError, match=r"\$\.instances\[0\]\.created_at") as caught:
        sa.read(body)
    assert str(CANARIES["registry-password"]) not in str(caught.value)  # the message is clean
    assert leaks({"traceback": exception_text(caught.value).encode()}) == []


def test_error_types_are_project_errors(pipeline: Outputs) -> None:
    """Every provoked error is a ShadeanalyticsError (no raw exception escaped)."""
    assert pipeline.errors
    for name, exc in pipeline.errors.items():
        assert isinstance(exc, ShadeanalyticsError), name


def test_stdout_is_an_empty_stream_for_failed_runs(pipeline: Outputs) -> None:
    """Failed collector runs print nothing on stdout; their stderr ends with one Error line."""
    for name in ("collect redirect", "collect 503", "collect bad key"):
        run = pipeline.runs[name]
        assert run.stdout == ""
        assert run.stderr.splitlines()[-1].startswith("Error: ")
        assert "Traceback" not in run.stderr
        assert run.stderr.count("Error: ") == 1
