"""CPU time per function of the package, by wrapping it in place: the phase split of
``phases.py`` (the summary) and ``report_phases.py`` (the report)."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any


def timed(owner: Any, name: str, spent: dict[str, float],
          label: Callable[[tuple[Any, ...], dict[str, Any]], str] | None = None) -> None:
    """Wrap ``owner.name`` so that each call's CPU seconds (``time.process_time``: every
    thread's) add to ``spent[label(args, kwargs)]`` (default: ``name``)."""
    function = getattr(owner, name)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            key = name if label is None else label(args, kwargs)
            spent[key] = spent.get(key, 0.0) + time.process_time() - began

    setattr(owner, name, wrapper)
