"""Ingest: Shadeform responses in, typed tables out.

``schema`` declares every record field once; ``decode`` is the typed fast path over raw bytes;
``normalize`` the general walker (and the JSON path of a problem); ``tables`` holds the result
(``Tables``); ``load`` finds and reads files (``read``, ``read_clusters``, ...).
"""
