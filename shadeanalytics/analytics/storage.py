"""Storage money: what each volume costs per hour, from its size and its volume type's price.

Shadeform bills a volume by size: ``GET /volumes/types`` gives a ``price_per_gb_per_hour`` per
(cloud, region), and ``GET /volumes`` each volume's ``size_in_gb`` and Shadeform's own
``cost_estimate`` so far. This module is the one place that turns the two into a volume's
hourly price; the billing model accrues it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["VOLUME_PRICE_COLUMNS", "volume_prices"]

#: The columns :func:`volume_prices` adds to the volumes table.
VOLUME_PRICE_COLUMNS = ("price_per_gb_per_hour_usd", "hourly_price_usd")


def volume_prices(volumes: pd.DataFrame, volume_types: pd.DataFrame) -> pd.DataFrame:
    """Each volume row with its type's price and its hourly price.

    ``hourly_price_usd = size_in_gb * price_per_gb_per_hour_usd``, where the price is that of
    the volume type with the volume's (cloud, region), as it stood at the volume row's snapshot:
    the newest ``volume_types`` row of that pair observed at or before the volume row (an
    undated row counts as oldest); when every such row is newer (the types were polled later),
    the oldest of them. A volume whose (cloud, region) has no volume type, or no price, gets
    NaN in both columns (a finding for the quality checks: ``volume_without_price``). Shadeform's
    own running total stays in ``cost_estimate_usd``.

    Example::

        >>> volumes = pd.DataFrame({"volume_id": ["v1"], "cloud": ["aws"],
        ...                         "region": ["us-east-1"], "size_in_gb": [500],
        ...                         "observed_at": [pd.NaT]})
        >>> types = pd.DataFrame({"cloud": ["aws"], "region": ["us-east-1"],
        ...                       "price_per_gb_per_hour_usd": [0.0001],
        ...                       "observed_at": [pd.NaT]})
        >>> float(volume_prices(volumes, types)["hourly_price_usd"].iloc[0])
        0.05

    Returns a new DataFrame: the columns of ``volumes`` (rows in their order), then
    ``price_per_gb_per_hour_usd`` and ``hourly_price_usd`` (float64, USD per GB-hour and USD
    per hour). The inputs are not changed.
    """
    price = np.full(len(volumes), np.nan)
    if len(volumes) and len(volume_types):
        types = volume_types[["cloud", "region", "price_per_gb_per_hour_usd", "observed_at"]]
        times = _sortable(types["observed_at"])
        by_pair: dict[tuple[object, object], tuple[np.ndarray, np.ndarray]] = {}
        for pair, index in types.groupby(["cloud", "region"], sort=False).indices.items():
            order = index[np.argsort(times[index], kind="stable")]
            by_pair[pair] = (times[order],
                             types["price_per_gb_per_hour_usd"].to_numpy(dtype=float)[order])
        seen = _sortable(volumes["observed_at"])
        for row, pair in enumerate(zip(volumes["cloud"], volumes["region"], strict=True)):
            found = by_pair.get(pair)
            if found is None:
                continue
            at, prices = found
            newest = np.searchsorted(at, seen[row], side="right") - 1
            price[row] = prices[max(newest, 0)]
    size = volumes["size_in_gb"].to_numpy(dtype=float, na_value=np.nan) if len(volumes) \
        else np.array([], dtype=float)
    return volumes.assign(price_per_gb_per_hour_usd=price, hourly_price_usd=size * price)


def _sortable(times: pd.Series) -> np.ndarray:
    """Instants as int64 microseconds; NaT becomes the smallest int64, the oldest possible."""
    return pd.to_datetime(times, utc=True).to_numpy(dtype="datetime64[us]").astype(np.int64)
