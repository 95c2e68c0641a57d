"""Old spellings kept working for one release, each with a ``DeprecationWarning``: the one
place that says how a renamed function, a moved name or a parameter now keyword-only warns.

- ``old_spellings(positional=..., renamed=...)`` decorates a helper whose parameters after the
  first became keyword-only (``positional``: their old order) or were renamed (``renamed``:
  old name -> new name);
- ``renamed(function, "old_name")`` is the old name of a renamed function;
- ``moved({...})`` is a module's ``__getattr__`` for names that moved to another module.

Every old spelling is removed in ``REMOVED_IN``.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

__all__ = ["REMOVED_IN", "deprecated", "moved", "old_spellings", "renamed"]

#: The release that drops the old spellings.
REMOVED_IN = "0.3"

F = TypeVar("F", bound=Callable[..., Any])


def deprecated(old: str, new: str, *, stacklevel: int = 3) -> None:
    """Warn that ``old`` is deprecated in favour of ``new`` (a ``DeprecationWarning`` pointing
    at the caller's line)."""
    warnings.warn(
        f"{old} is deprecated and will be removed in {REMOVED_IN}; use {new}",
        DeprecationWarning,
        stacklevel=stacklevel,
    )


def old_spellings(
    *, positional: Sequence[str] = (), renamed: Mapping[str, str] | None = None,
    positional_warns: bool = True, leading: int = 1,
) -> Callable[[F], F]:
    """A decorator: positional arguments after the first are taken as the keywords
    ``positional`` (in that order), and the keyword arguments ``renamed`` (old -> new) as
    their new names, each with a ``DeprecationWarning``; the new spelling passes silently.
    ``positional_warns=False`` leaves the positional warning to the function, when it knows
    a better spelling than the keyword (one warning, never one advising another old form).
    ``leading``: the positional parameters the function keeps (the fleet, and for a writer
    its destination)."""
    names = dict(renamed or {})

    def decorate(function: F) -> F:
        name = function.__name__

        @functools.wraps(function)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if len(args) > leading:
                extra = args[leading:]
                if len(extra) > len(positional):
                    raise TypeError(
                        f"{name}() takes {leading} positional argument"
                        f"{'s' if leading > 1 else ''} but {len(args)} were given"
                    )
                for key, value in zip(positional, extra, strict=False):
                    if key in kwargs:
                        raise TypeError(f"{name}() got multiple values for argument {key!r}")
                    kwargs[key] = value
                shown = ", ".join(f"{key}=..." for key in positional[: len(extra)])
                if positional_warns:
                    deprecated(
                        f"{name}() with positional {', '.join(positional[: len(extra)])}",
                        f"{name}(fleet, {shown})",
                    )
                args = args[:leading]
            for old, new in names.items():
                if old in kwargs:
                    if new in kwargs or (new == "fleet" and args):
                        raise TypeError(f"{name}() got both {old!r} and {new!r}")
                    value = kwargs.pop(old)
                    deprecated(f"{name}({old}=...)", f"{name}({new}=...)")
                    if new == "fleet":
                        args = (value,)
                    else:
                        kwargs[new] = value
            return function(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def renamed(function: F, old: str) -> F:
    """``function`` under its old name ``old``: calling it warns, then calls ``function``."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        deprecated(f"{old}()", f"{function.__name__}()")
        return function(*args, **kwargs)

    wrapper.__name__ = wrapper.__qualname__ = old
    return wrapper  # type: ignore[return-value]


def moved(module: str, names: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``names`` that moved: old name -> ``"package.module"`` or
    ``"package.module:new_name"``. The target is imported on first use only (by name: an old
    path must not make an import circle), with a ``DeprecationWarning``."""

    def __getattr__(name: str) -> Any:
        if name not in names:
            raise AttributeError(f"module {module!r} has no attribute {name!r}")
        target, _, new = names[name].partition(":")
        deprecated(f"{module}.{name}", f"{target}.{new or name}")
        return getattr(importlib.import_module(target), new or name)

    return __getattr__
