"""``python -m astromorphic.neuroglia``: the same as ``astromorphic simulate``."""

from astromorphic.neuroglia.cli import main

raise SystemExit(main())
