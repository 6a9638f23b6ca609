"""``python -m aerialsam``: the same as the ``aerialsam`` command."""

from aerialsam.cli import main

raise SystemExit(main())
