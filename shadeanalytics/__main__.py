"""``python -m shadeanalytics``: the command line."""

from .cli import main

raise SystemExit(main())
