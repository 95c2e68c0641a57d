"""The test kit: one fleet model (``fleet``: catalogue, money rule, lifecycles, scenarios as
data), its renderer into API responses (``render``), the sample's seeded fleet (``synthetic``)
and the fake Shadeform API serving scenarios (``fakeapi``), whose names this package gives too.

``fakeapi`` is imported on first use of one of its names (not with the package), so that
``python -m shadeanalytics.testing.fakeapi`` runs it once, without a ``RuntimeWarning``.
"""

import importlib
from types import ModuleType
from typing import Any


def _fakeapi() -> ModuleType:
    return importlib.import_module(f"{__name__}.fakeapi")


def __getattr__(name: str) -> Any:
    if not name.startswith("_") and name not in ("fakeapi", "fleet", "render", "synthetic"):
        module = _fakeapi()
        if name in module.__all__:
            return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *_fakeapi().__all__])
