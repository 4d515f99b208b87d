"""``python -m tiefnet.cli ...`` is ``tiefnet ...``."""
import sys

from tiefnet.cli import main

if __name__ == "__main__":  # importing this module (as tests do) runs nothing
    sys.exit(main())
