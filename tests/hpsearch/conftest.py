"""A PostgreSQL server for the tests of searches that share a study: the one .ci/run started
(TIEFNET_TEST_POSTGRES), else one of this test process's own where PostgreSQL is installed; the
tests that need it skip where there is none."""
import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parents[1]))

import postgres_server  # noqa: E402  (tests/postgres_server.py)


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory):
    url = os.environ.get("TIEFNET_TEST_POSTGRES")
    if url:
        yield url
        return
    if postgres_server.binary("initdb") is None:
        pytest.skip("PostgreSQL is not installed (initdb not found); .ci/run starts one")
    folder = tmp_path_factory.mktemp("postgres")
    try:
        url = postgres_server.start(folder)
    except Exception as error:  # noqa: BLE001 - any reason the server cannot start: the tests skip with it
        pytest.skip(f"PostgreSQL could not be started: {error}")
    yield url
    postgres_server.stop(folder)
