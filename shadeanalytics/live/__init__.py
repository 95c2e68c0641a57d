"""Live: the Shadeform API and the history that outlives it.

``client`` talks HTTP (retries, deadlines, size caps); ``collect`` polls once into the store;
``locks`` keeps two collectors apart; ``store`` is the SQLite history and its mapping back to
``Tables``.
"""
