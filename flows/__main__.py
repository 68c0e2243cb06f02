"""`python -m flows` is the same as the `opendata` command."""

import sys

from flows.cli import main

sys.exit(main())
