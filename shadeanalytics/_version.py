"""The package's version (pyproject.toml's), in a module of its own: the HTML report's footer
and ``shadeanalytics --version`` read it without importing the whole package."""

__version__ = "0.1.0"
