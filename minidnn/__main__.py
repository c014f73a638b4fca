"""``python -m minidnn ...`` is the ``minidnn`` command."""
from .cli import main

raise SystemExit(main())
