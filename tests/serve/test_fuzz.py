"""tiefnet serve's API under schema-driven fuzzing (schemathesis over ASGI, no network): requests made
from the app's own /openapi.json for every operation, valid and invalid alike (bodies, query and path
parameters, content types), none of which may end in a server error (5xx) or crash the app. The
trainings the fuzzer starts are the test's own (one at a time) and are stopped when it ends."""
import pytest

schemathesis = pytest.importorskip("schemathesis", reason="the fuzz test needs schemathesis (pip install '.[test]')")
from hypothesis import HealthCheck, settings  # noqa: E402
from schemathesis.checks import not_a_server_error  # noqa: E402

from tiefnet.serve import create_app, find_models  # noqa: E402
from tiefnet.serve.training import Trainings  # noqa: E402


@pytest.fixture(scope="module")
def trainings():
    trainings = Trainings(max_running=1)  # what the fuzzer starts runs one at a time ...
    yield trainings
    trainings.stop_all()  # ... and stops at the end of its epoch once the test is over


@pytest.fixture(scope="module")
def api(model_folders, trainings):
    """The schema, read from the app over ASGI; the app's models are made once per test process
    (conftest), so the schema is loaded when the test runs, not when it is collected."""
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(find_models([], model_folders), trainings))


schema = schemathesis.pytest.from_fixture("api")


@pytest.fixture(autouse=True)
def _node_id(request):
    # schemathesis 4.32's lazy schema reads and renames request.node._nodeid (to name the operation in
    # its reports), which pytest 9.2's nodes no longer have: give it one, or every run is an AttributeError
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), database=None)
def test_no_request_makes_the_server_fail(case):
    case.call_and_validate(checks=[not_a_server_error])
