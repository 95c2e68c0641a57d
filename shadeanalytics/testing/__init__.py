"""The test kit: the fake Shadeform API (``fakeapi``) and synthetic fleets (``synthetic``)."""

from .fakeapi import *  # noqa: F403
from .fakeapi import __all__  # noqa: F401
