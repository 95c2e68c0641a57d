"""What every chart shares: colours, text, dollar ticks, figures, and saving a figure as PNG or
SVG. Only the chart modules import it; its names are public so that they can."""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import matplotlib.dates as mdates
import numpy as np
import pandas as pd
from matplotlib import rc_context, ticker
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from ..._common import usd
from ..._files import atomic_file
from ..._text import for_svg

# -- colours ------------------------------------------------------------------------------------

#: Fixed colours of the clouds we know, so that a cloud looks the same in every chart.
CLOUD_COLORS: dict[str, str] = {
    "crusoe": "#1f77b4", "lambdalabs": "#ff7f0e", "datacrunch": "#2ca02c",
    "scaleway": "#d62728", "denvr": "#9467bd", "vultr": "#8c564b", "nebius": "#e377c2",
    "hyperstack": "#5254a3", "paperspace": "#bcbd22", "massedcompute": "#17becf",
    "aws": "#aec7e8", "azure": "#ffbb78", "runpod": "#98df8a", "tensordock": "#ff9896",
    "latitude": "#c5b0d5", "oblivus": "#c49c94", "fluidstack": "#f7b6d2",
    "digitalocean": "#637939", "voltagepark": "#dbdb8d", "imwt": "#9edae5",
}
#: Fixed colours of the GPU types we know (CPU-only instances are grey).
GPU_COLORS: dict[str, str] = {
    "H100": "#4e79a7", "H200": "#f28e2b", "A100_80G": "#e15759", "A100": "#76b7b2",
    "A6000": "#59a14f", "L40S": "#edc948", "RTX6000Ada": "#b07aa1", "MI300X": "#ff9da7",
    "B200": "#9c755f", "GH200": "#843c39", "CPU": "#8c8c8c",
}
#: Status colours: on the way up in blues, running green, trouble red/orange, gone grey.
STATUS_COLORS: dict[str, str] = {
    "creating": "#c6dbef", "pending_provider": "#9ecae1", "pending": "#4292c6",
    "active": "#2ca02c", "error": "#d62728", "deleting": "#ff7f0e", "deleted": "#525252",
}
_UNKNOWN_STATUS = "#9467bd"
_PLACEHOLDER = "#9e9e9e"  # "(none)", "(standalone)", "(untagged)": not a real name
OTHER = "#c8c8c8"
NEUTRAL = "#4a6fa5"
LATE = "#d62728"
# Names without a fixed colour pick one of these by a checksum of the name: the same name gets
# the same colour in every chart, every run, every Python (``hash()`` is salted per process).
_FALLBACK = (
    "#393b79", "#6b6ecf", "#9c9ede", "#8ca252", "#b5cf6b", "#8c6d31", "#bd9e39", "#e7ba52",
    "#ad494a", "#d6616b", "#e7969c", "#7b4173", "#a55194", "#ce6dbd", "#de9ed6", "#3182bd",
    "#e6550d", "#31a354", "#756bb1", "#636363",
)
PALETTES: dict[str, Mapping[str, str]] = {
    "cloud": CLOUD_COLORS, "gpu_type": GPU_COLORS, "status": STATUS_COLORS,
}


def color_for(key: str, value: str) -> str:
    """The colour of ``value`` of column ``key`` (``cloud``, ``gpu_type``, ``status``, ...).

    Example::

        >>> color_for("cloud", "crusoe"), color_for("status", "active")
        ('#1f77b4', '#2ca02c')
        >>> color_for("cloud", "newcloud") == color_for("cloud", "newcloud")
        True

    Known clouds, GPU types and statuses have fixed colours; a status the API added since is
    purple; ``(none)``-style placeholders are grey; any other name gets a colour picked by a
    CRC-32 of its text, the same in every chart and run.
    """
    known = PALETTES.get(key, {})
    if value in known:
        return known[value]
    if key == "status":
        return _UNKNOWN_STATUS
    if value.startswith("("):
        return _PLACEHOLDER
    return _FALLBACK[zlib.crc32(value.encode("utf-8")) % len(_FALLBACK)]


# -- text ---------------------------------------------------------------------------------------

_KEY_NAMES = {
    "gpu_type": ("GPU type", "GPU types"), "cluster_id": ("cluster", "clusters"),
    "shade_instance_type": ("instance type", "instance types"),
    "cloud_instance_type": ("cloud instance type", "cloud instance types"),
    "rental_type": ("rental type", "rental types"), "gpu_manufacturer": ("GPU maker", "GPU makers"),
    "status": ("status", "statuses"),
}


def key_name(key: str, plural: bool = False) -> str:
    singular, many = _KEY_NAMES.get(key, (key.replace("_", " "), key.replace("_", " ") + "s"))
    return many if plural else singular


class Dollars(ticker.Formatter):
    """Dollar tick labels: ``$1,234``; ``$50k`` and ``$1.5M`` from $10,000 up (wider labels
    run into each other); cents on every tick when the ticks are closer than a dollar."""

    def __init__(self) -> None:
        super().__init__()
        self._ticks: list[float] = []

    def set_locs(self, locs: list[float]) -> None:
        super().set_locs(locs)
        self._ticks = [float(t) for t in locs]

    def __call__(self, x: float, pos: int | None = None) -> str:
        amount, sign = abs(x), "-" if x < 0 else ""
        if amount >= 1_000_000:
            return f"{sign}${amount / 1_000_000:,.4g}M"
        if amount >= 10_000:
            return f"{sign}${amount / 1000:,.4g}k"
        # all ticks alike: "$0.50, $1.00, $1.50", not "$0.50, $1, $1.50"
        ticks = self._ticks or [x]
        cents = max(abs(t) for t in ticks) < 100 and any(
            not math.isclose(t, round(t), abs_tol=1e-9) for t in ticks)
        return usd(x, cents=cents)


def short(text: str, width: int = 32) -> str:
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def plain(ax: Axes) -> None:
    """Show every text of ``ax`` as typed: a ``$`` in a user's name must not start math mode."""
    texts = [ax.title,
             ax.xaxis.label, ax.yaxis.label, *ax.texts,
             *ax.get_xticklabels(), *ax.get_yticklabels()]
    legend = ax.get_legend()
    if legend is not None:
        texts.extend(legend.get_texts())
    for text in texts:
        text.set_parse_math(False)


def no_data(ax: Axes, title: str, message: str = "no data") -> Axes:
    ax.set_title(title)
    ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", color="#666666")
    ax.set_xticks([])
    ax.set_yticks([])
    plain(ax)
    return ax


def stack_legend(ax: Axes, key: str) -> None:
    """The legend of stacked bars, top to bottom as the stack, outside the plot on the right."""
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles[::-1], labels[::-1], title=key_name(key), loc="upper left",
              bbox_to_anchor=(1.01, 1.0), frameon=False, fontsize=9)


def require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} is missing the column(s) {', '.join(missing)}")


# -- figures ------------------------------------------------------------------------------------


def new_axes(figsize: tuple[float, float]) -> Axes:
    """A new pyplot figure, so that a notebook shows it inline; pyplot is loaded only here."""
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize, layout="constrained")
    return ax


def agg_axes(figsize: tuple[float, float]) -> Axes:
    """A figure outside pyplot (no global state, nothing kept alive after it is saved)."""
    figure = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(figure)
    return figure.add_subplot()


def clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def utc_naive(values: pd.Series) -> np.ndarray:
    """UTC instants as naive ``datetime64`` (what matplotlib's date units take)."""
    return pd.DatetimeIndex(values).tz_convert("UTC").tz_localize(None).to_numpy()


def date_axis(ax: Axes) -> None:
    locator = mdates.AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    # day ticks read "Nov 05" (a bare "05" looks like an hour), hour ticks "Nov 05 14:00"
    formats = ["%Y", "%b", "%b %d", "%H:%M", "%H:%M", "%S.%f"]
    zero_formats = ["", "%Y", "%b", "%b %d", "%H:%M", "%H:%M"]
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(
        locator, formats=formats, zero_formats=zero_formats))



def rectangles(ax: Axes, x: np.ndarray, y: np.ndarray, width: np.ndarray, height: np.ndarray,
               colors: Sequence[str], label: str | None = None, **props: object) -> None:
    """Bars as ``ax.bar`` draws them (a ``Rectangle`` each, from (``x``, ``y``), in data
    units: dates as ``mdates.date2num``), the first one labelled for the legend, added without
    updating the axes' data limits: the caller sets both limits. ``ax.bar`` spends four
    fifths of its time on those limits, about a millisecond a bar (a year's status timeline
    and spend chart draw a thousand)."""
    for k, (left, bottom, w, h, colour) in enumerate(zip(
            x.tolist(), y.tolist(), width.tolist(), height.tolist(), colors, strict=True)):
        ax.add_artist(Rectangle((left, bottom), w, h, facecolor=colour,
                                label=label if k == 0 and label is not None else "_nolegend_",
                                **props))  # type: ignore[arg-type]


class Chart(NamedTuple):
    """A chart of a report: its figure size, and how to draw it on an axes of that size (its
    frames prepared once, for both)."""

    size: tuple[float, float]
    draw: Callable[[Axes], Axes]


# -- saving -------------------------------------------------------------------------------------

#: Dots per inch of a report's PNG charts.
DPI = 120


def save_png(figure: Figure, path: Path, dpi: int) -> Path:
    """Save ``figure`` to ``path`` so that a crash leaves the old file or the new one."""
    with atomic_file(path) as handle:  # no address is drawn in a chart: never private
        # no Software/version stamp: the same data gives the same bytes on any install
        figure.savefig(handle, format="png", dpi=dpi, metadata={"Software": None})
    return path


def svg_document(figure: Figure, name: str) -> str:
    """``figure`` as the page's SVG document (``chart_svgs``)."""
    buffer = io.StringIO()
    with rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None,
                                                      "Format": None, "Type": None})
    text = buffer.getvalue()
    # a label's NUL or ESC would make the document invalid XML (a broken picture)
    return for_svg(text[text.index("<svg"):])
