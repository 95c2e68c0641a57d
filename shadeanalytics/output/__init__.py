"""Output: what users read and mail around.

``csvout`` writes every file atomically (CSV and the one atomic-write seam); ``plots`` the charts;
``report`` the report folder and the summary; ``htmlreport`` its page; ``export`` Parquet;
``focus`` FOCUS cost data.
"""
