"""Shared fixtures. Helpers live in the test modules themselves (tests/ is not a package)."""

import numpy as np
import pytest

from tiefnet.backend import default_dtype


@pytest.fixture
def float64():
    """New parameters and data in float64 for the duration of a test (gradient checks)."""
    with default_dtype(np.float64):
        yield np.float64

