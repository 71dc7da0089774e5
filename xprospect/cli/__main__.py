"""``python -m xprospect.cli``: the ``xprospect`` command."""

from __future__ import annotations

import sys

from xprospect.cli import main

sys.exit(main())
