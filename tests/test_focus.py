"""The FOCUS export: hand-computed rows of a small fleet, every mandatory column against the
FOCUS 1.3 column spec, BilledCost equal to the accrued total, CSV and Parquet files, no
secrets, and the command line."""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import ACCOUNT_FIXTURES, SAMPLE_DIR, envelope, make_instance, volume_history

import shadeanalytics as sa
from shadeanalytics.analytics.costs import cost_breakdown
from shadeanalytics.cli import main
from shadeanalytics.output.focus import (
    FOCUS_1_3_CHANGES,
    FOCUS_COLUMNS,
    REQUIRED_COLUMNS,
    SERVICE_SUBCATEGORIES,
    focus_columns,
    focus_problems,
    focus_rows,
    write_focus,
)

#: The mandatory columns of the FOCUS 1.3 cost and usage dataset, as the FOCUS document lists
#: them (the FOCUS 1.3 specification, focus.finops.org): the 1.2 list, ServiceProviderName and
#: HostProviderName added in 1.3 (ProviderName and PublisherName deprecated, still required).
MANDATORY_1_3 = {
    "BilledCost", "BillingAccountId", "BillingAccountName", "BillingCurrency",
    "BillingPeriodEnd", "BillingPeriodStart", "ChargeCategory", "ChargeClass",
    "ChargeDescription", "ChargePeriodEnd", "ChargePeriodStart", "ContractedCost",
    "EffectiveCost", "InvoiceIssuerName", "ListCost", "PricingQuantity", "PricingUnit",
    "ProviderName", "PublisherName", "ServiceCategory", "ServiceName", "ServiceProviderName",
    "HostProviderName",
}

SECRET = "canary-focus-secret-4b1d"
AS_OF = "2026-11-20T12:30:00Z"
POLLS = ["2026-11-20T10:00:00Z", "2026-11-20T11:00:00Z", "2026-11-20T12:00:00Z"]

#: Billed (by hand), hour by hour:
#: g  crusoe 8 x H100 at $16/h from 09:30 to as_of 12:30: 0.5 h $8, $16, $16, 0.5 h $8 = $48
#: s  nebius spot at its own $1/h from 10:15 until deleting is seen at 12:00: $0.75 + $1
#: c  a CPU instance at $0.10/h from 11:00 to as_of: $0.10 + 0.5 h $0.05
TOTAL = 48.0 + 1.75 + 0.15


def _instances(k: int) -> list[dict[str, Any]]:
    g = make_instance(
        "g", cloud="crusoe", region="us-east-1", shade_instance_type="H100x8",
        cloud_instance_type="8x-h100", num_gpus=8, gpu_type="H100", vram_per_gpu_in_gb=80,
        interconnect="sxm5", nvlink=True, hourly_price=1600, name="trainer",
        active_at="2026-11-20T09:30:00Z", tags=["team-a", "prod"], ip="203.0.113.9",
        ssh_user="canary-ssh-user", ssh_port=2222,
        launch_configuration={"type": "docker", "docker_configuration": {
            "image": "vllm/vllm-openai:latest", "args": f"--api-key {SECRET}",
            "envs": [{"name": "HF_TOKEN", "value": SECRET}]}})
    s = make_instance("s", cloud="nebius", region="eu-north1", shade_instance_type="A100",
                      hourly_price=300, status=["pending", "active", "deleting"][k],
                      active_at=None if k == 0 else "2026-11-20T10:15:00Z",
                      rental_terms={"rental_type": "spot", "hourly_price": "1.00"})
    c = make_instance("c", shade_instance_type="cpu-4", num_gpus=0, gpu_type="CPU",
                      vram_per_gpu_in_gb=0, hourly_price=10, active_at="2026-11-20T11:00:00Z")
    return [g, s] + ([c] if k >= 1 else [])


def history() -> sa.Tables:
    return sa.read([envelope({"instances": _instances(k)}, clock, "/instances")
                    for k, clock in enumerate(POLLS)])


@pytest.fixture(scope="module")
def fleet() -> sa.Tables:
    return history()


def test_the_spec_lists_every_mandatory_column() -> None:
    """FOCUS_COLUMNS holds the 23 mandatory columns, PascalCase, x_ columns last."""
    mandatory = {c.name for c in FOCUS_COLUMNS if c.level == "Mandatory"}
    assert mandatory == MANDATORY_1_3
    names = [c.name for c in FOCUS_COLUMNS]
    assert len(set(names)) == len(names)
    focus = [n for n in names if not n.startswith("x_")]
    assert names[:len(focus)] == focus == sorted(focus)
    assert all(re.fullmatch(r"[A-Z][A-Za-z]+", n) for n in focus)
    assert all(re.fullmatch(r"x_[A-Z][A-Za-z]+", n) for n in names[len(focus):])
    assert {c.name: c.allowed for c in FOCUS_COLUMNS if c.allowed}["ChargeCategory"] == (
        "Usage", "Purchase", "Tax", "Credit", "Adjustment")
    assert "Virtual Machines" in SERVICE_SUBCATEGORIES["Compute"]


def test_hourly_rows_hand_computed(fleet: sa.Tables) -> None:
    """One row per resource per hour it was billed in, at its billed price."""
    rows = focus_rows(fleet, as_of=AS_OF)
    assert focus_problems(rows) == []
    assert list(rows.columns) == [c.name for c in FOCUS_COLUMNS]
    got = [(r.ChargePeriodStart.strftime("%H:%M"), r.ChargePeriodEnd.strftime("%H:%M"),
            r.ResourceId, round(r.PricingQuantity, 9), round(r.BilledCost, 9))
           for r in rows.itertuples()]
    assert got == [
        ("09:00", "10:00", "g", 0.5, 8.0),
        ("10:00", "11:00", "g", 1.0, 16.0), ("10:00", "11:00", "s", 0.75, 0.75),
        ("11:00", "12:00", "c", 1.0, 0.1), ("11:00", "12:00", "g", 1.0, 16.0),
        ("11:00", "12:00", "s", 1.0, 1.0),
        ("12:00", "13:00", "c", 0.5, 0.05), ("12:00", "13:00", "g", 0.5, 8.0)]
    assert rows["BilledCost"].sum() == pytest.approx(TOTAL, abs=0.01)
    accrued = cost_breakdown(fleet, as_of=AS_OF)["accrued_usd"].sum()
    assert rows["BilledCost"].sum() == pytest.approx(accrued, abs=0.01)
    for column in ("ListCost", "ContractedCost", "EffectiveCost"):
        assert rows[column].tolist() == rows["BilledCost"].tolist()


def test_one_row_in_full(fleet: sa.Tables) -> None:
    """Every column of the first GPU row, and what spot and CPU rows say differently."""
    rows = focus_rows(fleet, as_of=AS_OF, billing_account="acme-ml")
    g = rows.iloc[0].to_dict()
    assert g == {
        "BilledCost": 8.0, "BillingAccountId": "acme-ml", "BillingAccountName": "acme-ml",
        "BillingCurrency": "USD",
        "BillingPeriodEnd": pd.Timestamp("2026-12-01T00:00:00Z"),
        "BillingPeriodStart": pd.Timestamp("2026-11-01T00:00:00Z"),
        "ChargeCategory": "Usage", "ChargeClass": None,
        "ChargeDescription": "8 x H100 (H100x8) on crusoe, us-east-1, on demand",
        "ChargeFrequency": "Usage-Based",
        "ChargePeriodEnd": pd.Timestamp("2026-11-20T10:00:00Z"),
        "ChargePeriodStart": pd.Timestamp("2026-11-20T09:00:00Z"),
        "CommitmentDiscountStatus": None,
        "ConsumedQuantity": 0.5, "ConsumedUnit": "Hours", "ContractedCost": 8.0,
        "ContractedUnitPrice": 16.0, "EffectiveCost": 8.0, "HostProviderName": "crusoe",
        "InvoiceId": None, "InvoiceIssuerName": "Shadeform", "ListCost": 8.0,
        "ListUnitPrice": 16.0, "PricingCategory": "Standard", "PricingCurrency": "USD",
        "PricingCurrencyContractedUnitPrice": 16.0, "PricingCurrencyEffectiveCost": 8.0,
        "PricingCurrencyListUnitPrice": 16.0, "PricingQuantity": 0.5, "PricingUnit": "Hours",
        "ProviderName": "Shadeform", "PublisherName": "crusoe", "RegionId": "us-east-1",
        "RegionName": "us-east-1", "ResourceId": "g", "ResourceName": "trainer",
        "ResourceType": "GPU Instance", "ServiceCategory": "Compute",
        "ServiceName": "GPU Instances", "ServiceProviderName": "Shadeform",
        "ServiceSubcategory": "Virtual Machines", "SkuId": "crusoe:H100x8",
        "SkuMeter": "Instance Usage",
        # the instance's configuration (make_instance's 6 vCPUs and 12 GB of memory)
        "SkuPriceDetails": '{"CoreCount":6,"GpuCount":8,"InstanceType":"H100x8",'
                           '"MemorySize":12,"x_GpuType":"H100","x_VramPerGpuGb":80}',
        "SkuPriceId": "crusoe:H100x8:on-demand", "Tags": '{"prod":true,"team-a":true}',
        "x_ClusterId": None, "x_CloudInstanceType": "8x-h100", "x_RentalType": None,
        "x_GpuType": "H100", "x_NumGpus": 8, "x_VramPerGpuGb": 80, "x_Interconnect": "sxm5",
        "x_Nvlink": True, "x_GpuHours": 4.0, "x_VolumeSizeGb": None,
        "x_Basis": "inferred"}  # from active_at 09:30, before the first poll (10:00)
    spot = rows[rows["ResourceId"] == "s"].iloc[0]
    assert (spot["PricingCategory"], spot["SkuPriceId"], spot["ListUnitPrice"]) == (
        "Dynamic", "nebius:A100:spot", 1.0)
    assert spot["ChargeDescription"] == "1 x A6000 (A100) on nebius, eu-north1, spot"
    assert pd.isna(spot["Tags"])
    cpu = rows[rows["ResourceId"] == "c"].iloc[0]
    assert (cpu["ResourceType"], cpu["x_NumGpus"], cpu["x_GpuHours"]) == ("CPU Instance", 0, 0.0)


def test_daily_rows_and_the_sample(fleet: sa.Tables) -> None:
    """Daily periods hold each resource's day; the sample's BilledCost is its accrued cost."""
    daily = focus_rows(fleet, as_of=AS_OF, granularity="daily")
    assert focus_problems(daily) == []
    per = daily.groupby("ResourceId")[["PricingQuantity", "BilledCost"]].sum().reset_index()
    assert per.to_numpy().tolist() == [
        ["c", 1.5, pytest.approx(0.15)], ["g", 3.0, 48.0], ["s", 1.75, 1.75]]
    # a day holding two bases has a row for each: g before the first poll, between the
    # polls, after the newest one (12:00)
    g = daily[daily["ResourceId"] == "g"].sort_values(["BilledCost", "x_Basis"], kind="stable")
    assert g[["x_Basis", "BilledCost"]].to_numpy().tolist() == [
        ["extrapolated", 8.0], ["inferred", 8.0], ["observed", 32.0]]
    assert (daily["ChargePeriodEnd"] - daily["ChargePeriodStart"]).unique().tolist() == [
        pd.Timedelta(days=1)]
    sample = sa.bill_fleet(sa.read(SAMPLE_DIR), as_of="2026-11-20T00:00:00Z")  # billed once
    accrued = cost_breakdown(sample)["accrued_usd"].sum()
    for granularity in ("hourly", "daily"):
        rows = focus_rows(sample, granularity=granularity)
        assert focus_problems(rows) == []
        assert rows["BilledCost"].sum() == pytest.approx(accrued, abs=0.01)
    with pytest.raises(ValueError, match="granularity must be one of hourly, daily; got 'w'"):
        focus_rows(fleet, as_of=AS_OF, granularity="w")


def test_the_checker_finds_what_breaks_the_spec(fleet: sa.Tables) -> None:
    """focus_problems names each broken rule: a check that cannot fail is no check."""
    rows = focus_rows(fleet, as_of=AS_OF)
    broken = rows.assign(
        BilledCost=rows["BilledCost"].where(rows.index != 0),
        ChargeCategory=rows["ChargeCategory"].where(rows.index != 1, "Refund"),
        ServiceSubcategory=rows["ServiceSubcategory"].where(rows.index != 2, "Block Storage"),
        BillingCurrency="usd",
        ListCost=rows["ListCost"] + 1.0,
        ChargePeriodEnd=rows["ChargePeriodStart"],
        Tags=rows["Tags"].fillna("[1]"),
    ).drop(columns="HostProviderName")
    broken.insert(0, "x_First", 1)
    assert focus_problems(broken) == [
        "missing mandatory column(s): HostProviderName",
        "a FOCUS column comes after an x_ column",
        "BilledCost: 1 null value(s)",
        "ChargeCategory: 1 value(s) not allowed",
        "Tags: holds JSON that is not an object (FOCUS type JSON)",
        "ChargePeriodEnd: not after ChargePeriodStart",
        "BillingCurrency: not an ISO 4217 code",
        "ServiceSubcategory: not a subcategory of its ServiceCategory",
        "ListCost: not ListUnitPrice x PricingQuantity"]
    typed = rows.assign(ChargePeriodStart=rows["ChargePeriodStart"].dt.tz_localize(None),
                        PricingQuantity=rows["PricingQuantity"].astype(str))
    assert "ChargePeriodStart: is datetime64[us], not UTC date/times (FOCUS type DateTime)" \
        in focus_problems(typed)
    assert (f"PricingQuantity: is {typed['PricingQuantity'].dtype}, not numeric (FOCUS type "
            "Decimal)") in focus_problems(typed)


def test_files_csv_and_parquet(fleet: sa.Tables, tmp_path: Path) -> None:
    """The CSV has the columns in order and Z dates; the Parquet reads back to the same rows,
    typed, and passes the spec; neither holds a secret, an IP or an SSH detail."""
    export = write_focus(fleet, tmp_path, as_of=AS_OF)
    assert [p.name for p in export.files] == ["focus_cost_and_usage.csv",
                                              "focus_cost_and_usage.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in export.files)
    with export.files[0].open(newline="") as handle:
        table = list(csv.reader(handle))
    header, body = table[0], table[1:]
    assert header == [c.name for c in FOCUS_COLUMNS]
    assert len(body) == 8
    for name in ("ChargePeriodStart", "ChargePeriodEnd", "BillingPeriodStart",
                 "BillingPeriodEnd"):
        cells = [row[header.index(name)] for row in body]
        assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", c) for c in cells), name
    assert sum(float(r[header.index("BilledCost")]) for r in body) == pytest.approx(TOTAL)
    assert json.loads(body[0][header.index("Tags")]) == {"prod": True, "team-a": True}

    parquet = pq.read_table(export.files[1])
    assert parquet.schema.field("ChargePeriodStart").type == pa.timestamp("us", tz="UTC")
    assert parquet.schema.field("BilledCost").type == pa.float64()
    assert parquet.schema.field("x_NumGpus").type == pa.int64()
    assert parquet.schema.metadata[b"focus_version"] == b"1.3"
    back = parquet.to_pandas(types_mapper={pa.string(): pd.StringDtype(),
                                           pa.int64(): pd.Int64Dtype(),
                                           pa.bool_(): pd.BooleanDtype()}.get)
    assert focus_problems(back) == []
    pd.testing.assert_frame_equal(back, export.rows, check_dtype=False)

    text = export.files[0].read_text() + back.astype(str).to_csv()
    for leak in (SECRET, "203.0.113.9", "canary-ssh-user", "2222", "vllm/vllm-openai"):
        assert leak not in text, leak


def test_unknown_price_is_left_out_and_counted(tmp_path: Path) -> None:
    """A resource billed at an unknown price has no row (a cost is never null) and is named."""
    docs = [envelope({"instances": [make_instance("p", hourly_price=210),
                                    make_instance("u", hourly_price=None)]},
                     "2026-11-20T01:05:00Z", "/instances")]
    export = write_focus(sa.read(docs), tmp_path, as_of="2026-11-20T01:05:00Z")
    assert export.unpriced == ["u"]
    assert export.rows["ResourceId"].unique().tolist() == ["p"]
    assert export.rows["BilledCost"].sum() == pytest.approx(2.10)


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def test_command_line(tmp_path: Path) -> None:
    """export --format focus writes both files and says what they hold; flags of the other
    format are usage errors."""
    code, out, err = _run("export", str(SAMPLE_DIR), "--format", "focus", "--out",
                          str(tmp_path), "--granularity", "daily", "--as-of",
                          "2026-11-20T00:00:00Z")
    assert (code, err) == (0, "")
    assert out == (f"wrote 1301 FOCUS 1.3 rows ($460,741.71 billed, as of 2026-11-20T00:00:00Z) "
                   f"to {tmp_path}: focus_cost_and_usage.csv, focus_cost_and_usage.parquet\n")
    with (tmp_path / "focus_cost_and_usage.csv").open(newline="") as handle:
        billed = sum(float(row["BilledCost"]) for row in csv.DictReader(handle))
    accrued = cost_breakdown(sa.read(SAMPLE_DIR), as_of="2026-11-20T00:00:00Z")[
        "accrued_usd"].sum()
    assert billed == pytest.approx(accrued, abs=0.01)
    code, out, err = _run("export", str(SAMPLE_DIR), "--format", "focus", "--out",
                          str(tmp_path), "--since", "2026-11-01T00:00:00Z")
    assert (code, out) == (2, "")
    assert err.endswith("Error: --since is only for --format parquet\n")
    code, out, err = _run("export", "--store", str(tmp_path / "h.db"), "--out", str(tmp_path),
                          "--granularity", "daily", "--billing-account", "x")
    assert err.endswith("Error: --granularity, --billing-account are only for --format "
                        "focus\n")
    code, out, err = _run("export", str(SAMPLE_DIR), "--out", str(tmp_path))
    assert (code, err.splitlines()[-1]) == (
        2, "Error: --format parquet exports the history store: give --store PATH")


def test_storage_rows(tmp_path: Path) -> None:
    """A volume's rows are Storage / Block Storage, priced per GB-hour as the catalogue prices
    it, the BilledCost of every row is the accrued total (instance and volume), and the
    Parquet reads back as pandas reads it by default."""
    tables = sa.read(volume_history())
    as_of = "2026-11-20T02:00:00Z"
    rows = write_focus(tables, tmp_path, as_of=as_of).rows
    assert focus_problems(rows) == []
    # x_Nvlink, a nullable bool (null on a volume's rows), comes back as object
    plain = pd.read_parquet(tmp_path / "focus_cost_and_usage.parquet")
    assert plain["x_Nvlink"].dtype == object
    assert focus_problems(plain) == []
    volume = rows[rows["ResourceId"] == "vol-1"]
    assert volume[["ServiceName", "ServiceCategory", "ServiceSubcategory", "ResourceType",
                   "SkuId", "SkuPriceId", "SkuMeter", "PricingUnit", "ConsumedUnit",
                   "ChargeDescription", "x_VolumeSizeGb"]
                  ].drop_duplicates().astype(object).to_numpy().tolist() == [
        ["Volumes", "Storage", "Block Storage", "Volume", "aws:volume", "aws:volume:us-east-1",
         "Storage Usage", "GB-Hours", "GB-Hours", "500 GB volume on aws, us-east-1", 500]]
    assert volume["SkuPriceDetails"].isna().all()
    # priced as the catalogue prices it: 500 GB x 1 h at $0.0001 per GB-hour = $0.05 an hour
    assert volume["BilledCost"].tolist() == pytest.approx([0.05, 0.05])
    assert volume["PricingQuantity"].tolist() == pytest.approx([500.0, 500.0])
    assert volume["ConsumedQuantity"].tolist() == pytest.approx([500.0, 500.0])
    assert volume["ListUnitPrice"].tolist() == pytest.approx([0.0001, 0.0001])
    accrued = cost_breakdown(tables, by="service", as_of=as_of)["accrued_usd"].sum()
    assert rows["BilledCost"].sum() == pytest.approx(accrued) == pytest.approx(4.30)


def test_focus_1_2_and_1_3(fleet: sa.Tables, tmp_path: Path) -> None:
    """--focus-version 1.2 writes the 1.3 columns but those 1.3 added; 1.3 is the default."""
    assert FOCUS_1_3_CHANGES == {"HostProviderName": None, "ServiceProviderName": "ProviderName"}
    assert focus_columns() == focus_columns("1.3") == FOCUS_COLUMNS
    old = [c.name for c in focus_columns("1.2")]
    assert old == [c.name for c in FOCUS_COLUMNS
                   if c.name not in ("HostProviderName", "ServiceProviderName")]
    assert set(REQUIRED_COLUMNS) <= set(old)
    with pytest.raises(ValueError, match=r"FOCUS version must be one of 1\.2, 1\.3; got '1\.4'"):
        focus_columns("1.4")
    export = write_focus(fleet, tmp_path, as_of=AS_OF, focus_version="1.2")
    assert list(export.rows.columns) == old
    assert focus_problems(export.rows, focus_columns("1.2")) == []
    parquet = pq.read_table(export.files[1])
    assert parquet.schema.metadata[b"focus_version"] == b"1.2"
    assert parquet.column_names == old
    with export.files[0].open(newline="") as handle:
        assert next(csv.reader(handle)) == old
    # the same rows and money as 1.3, one column spec apart
    new = focus_rows(fleet, as_of=AS_OF)
    pd.testing.assert_frame_equal(export.rows, new[old])
    code, out, err = _run("export", str(ACCOUNT_FIXTURES), "--format", "focus", "--out",
                          str(tmp_path), "--granularity", "daily", "--focus-version", "1.2",
                          "--as-of", "2026-12-06T00:00:00Z")
    assert (code, err) == (0, "")
    assert out.startswith("wrote 24 FOCUS 1.2 rows ($1,021.63 billed")
    assert pq.read_table(tmp_path / "focus_cost_and_usage.parquet").schema.metadata[
        b"focus_version"] == b"1.2"
    code, out, err = _run("export", "--store", str(tmp_path / "h.db"), "--out", str(tmp_path),
                          "--focus-version", "1.3")
    assert (code, err.splitlines()[-1]) == (
        2, "Error: --focus-version is only for --format focus")


def test_the_checker_implements_the_validators_rules(fleet: sa.Tables) -> None:
    """The validator's rules focus_problems implements: units null with their quantities,
    SkuMeter and SkuPriceDetails with their SKU ids, unit prices set and not negative, the
    columns the dataset's criteria require."""
    rows = focus_rows(fleet, as_of=AS_OF)
    broken = rows.assign(
        ConsumedUnit=rows["ConsumedUnit"].where(rows.index != 0),
        SkuId=rows["SkuId"].where(rows.index != 1),
        SkuPriceId=rows["SkuPriceId"].where(rows.index != 2),
        PricingCurrencyListUnitPrice=rows["PricingCurrencyListUnitPrice"].where(
            rows.index != 3),
        ContractedUnitPrice=-rows["ContractedUnitPrice"],
    ).drop(columns=["SkuMeter", "Tags"])
    assert focus_problems(broken) == [
        "missing column(s) this dataset's criteria require: SkuMeter, Tags",
        "SkuPriceDetails: set where SkuPriceId is null",
        "ConsumedUnit: null where ConsumedQuantity is not",
        "ContractedUnitPrice: negative",
        "SkuPriceId: null on a usage charge",
        "PricingCurrencyListUnitPrice: null on a usage charge"]


def test_a_volume_of_unknown_start_is_named(tmp_path: Path) -> None:
    """A volume first seen in an undated snapshot has no billing start: no row, no dollar,
    and the export names it (the account fixtures' volumes are such)."""
    code, out, err = _run("export", str(ACCOUNT_FIXTURES), "--format", "focus", "--out",
                          str(tmp_path), "--granularity", "daily",
                          "--as-of", "2026-12-06T00:00:00Z")
    assert (code, err) == (0, "")
    assert out == (f"wrote 24 FOCUS 1.3 rows ($1,021.63 billed, as of 2026-12-06T00:00:00Z) to "
                   f"{tmp_path}: focus_cost_and_usage.csv, focus_cost_and_usage.parquet; "
                   "3 volume(s) whose billing start is unknown left out\n")
    export = write_focus(sa.read(ACCOUNT_FIXTURES), tmp_path, as_of="2026-12-06T00:00:00Z")
    assert export.start_unknown == [  # volumes.json's two and volume-info.json's one
        "0b7c9d21-5e3f-4a68-9c1d-2e4f6a8b0c13", "5d2e8f41-9a7b-4c3d-8e1f-0a2b4c6d8e9f",
        "78a0dd5a-dbb1-4568-b55c-5e7e0a8b0c40"]
    assert export.rows["ServiceName"].unique().tolist() == ["GPU Instances"]
