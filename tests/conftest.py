"""Shared fixtures. Per-module helpers live in the test modules themselves (tests/ is not a package);
the device boundary helpers ``dev``/``host`` live in tests/helpers.py, importable from every test module."""

import os
import sys
from pathlib import Path

os.environ.setdefault("TIEFNET_TUNE", "off")  # bit-exact runs; tests/helpers.every_variant forces each variant

import numpy as np
import pytest

from tiefnet.backend import default_dtype

sys.path.insert(0, str(Path(__file__).parent))  # `from helpers import dev, host` in tests/*/


@pytest.fixture
def float64():
    """New parameters and data in float64 for the duration of a test (gradient checks)."""
    with default_dtype(np.float64):
        yield np.float64
