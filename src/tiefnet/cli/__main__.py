"""``python -m tiefnet.cli ...`` is ``tiefnet ...``."""
import sys

from tiefnet.cli import main

sys.exit(main())
