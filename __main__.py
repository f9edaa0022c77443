"""``python -m imagetune``: the command-line interface."""
from .graph_runtime.cli import main

raise SystemExit(main())
