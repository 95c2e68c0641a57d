"""shadeanalytics: Shadeform GPU fleet responses as typed pandas DataFrames."""

from .errors import (
    ApiError,
    DataWarning,
    InputError,
    InvalidJSONError,
    SchemaError,
    ShadeanalyticsError,
)
from .load import read, read_clusters, read_instance_types, read_instances
from .tables import Tables

__all__ = [
    "ApiError",
    "DataWarning",
    "InputError",
    "InvalidJSONError",
    "SchemaError",
    "ShadeanalyticsError",
    "Tables",
    "read",
    "read_clusters",
    "read_instance_types",
    "read_instances",
]

__version__ = "0.1.0"
