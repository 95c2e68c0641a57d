"""The test kit: one fleet model (``fleet``: catalogue, money rule, lifecycles, scenarios as
data), its renderer into API responses (``render``), the sample's seeded fleet (``synthetic``)
and the fake Shadeform API serving scenarios (``fakeapi``)."""

from .fakeapi import *  # noqa: F403
from .fakeapi import __all__  # noqa: F401
