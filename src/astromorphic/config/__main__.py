"""``python -m astromorphic.config``: write the schema, check a configuration file."""

from astromorphic.config import main

raise SystemExit(main())
