"""``python -m hbcore``: the headless command line."""

import sys

from hbcore.cli import main

sys.exit(main())
