"""Analytics: everything computed from ``Tables``.

``billing`` is the one cost model (every dollar comes from ``bill_fleet``); ``costs``,
``inventory``, ``lifecycle``, ``quality``, ``timeline``, ``market``, ``storage``, ``finops``
and ``alerts`` only add up its figures; ``periods`` spreads intervals over days and months.
"""
