"""tiefnet serve's API (FastAPI's TestClient, no network): predictions prepared exactly as
``tiefnet predict`` prepares a file, the grid world's value and policy iteration, every bad input a 4xx
with a message, concurrent requests on one loaded model, a page that loads nothing from elsewhere."""
import io
import re
from concurrent.futures import ThreadPoolExecutor
from importlib import resources

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx (pip install '.[test]')")
from fastapi.testclient import TestClient  # noqa: E402

from tiefnet.data import load_mnist  # noqa: E402
from tiefnet.data.image import load_digit  # noqa: E402
from tiefnet.serve import create_app, find_models  # noqa: E402
from tiefnet.serve.app import MAX_BODY  # noqa: E402
from tiefnet.vision.mnist import Config, run  # noqa: E402


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    run(Config(hidden="30", epochs=2, train_size=3000, cost="cross-entropy", init="scaled", eta=0.5),
        root / "dense", progress=False, log=lambda line: None)
    run(Config(model="cnn", epochs=1, train_size=200, batch_size=20), root / "cnn", progress=False,
        log=lambda line: None, warn=lambda line: None)
    (root / "not-a-model").mkdir()
    return root


@pytest.fixture(scope="module")
def client(folders):
    return TestClient(create_app(find_models([], folders)))


def png(image: np.ndarray, scale: int = 10) -> bytes:
    """An MNIST image (784,) as a PNG the size of the page's canvas (white ink on black)."""
    picture = Image.fromarray((255 * image.reshape(28, 28)).astype(np.uint8)).resize((28 * scale, 28 * scale))
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def test_the_runs_folder_gives_its_digit_models(client):
    assert sorted((m["name"], m["kind"]) for m in client.get("/api/models").json()) == [("cnn", "cnn"),
                                                                                       ("dense", "dense")]


def test_an_image_is_prepared_as_tiefnet_predict_prepares_a_file(client, tmp_path):
    test = load_mnist().test
    right = 0
    for k in range(20):
        data = png(np.asarray(test.x[k]))
        (tmp_path / "d.png").write_bytes(data)
        pixels = load_digit(tmp_path / "d.png")  # what tiefnet predict feeds the network
        by_image = client.post("/api/predict/dense/image", content=data, headers={"Content-Type": "image/png"})
        by_pixels = client.post("/api/predict/dense/pixels", json={"pixels": pixels.tolist()})
        assert by_image.status_code == 200 and by_image.json() == by_pixels.json()
        result = by_image.json()
        assert abs(sum(result["probabilities"]) - 1) < 1e-5 and len(result["hidden"]) == 30
        right += result["digit"] == int(test.y[k])
    assert right >= 16  # a 784-30-10 net trained for two epochs on 3,000 images


def test_a_cnn_shows_its_feature_maps(client):
    result = client.post("/api/predict/cnn/pixels", json={"pixels": [0.0] * 392 + [1.0] * 392}).json()
    maps = np.asarray(result["feature_maps"])
    assert result["kind"] == "cnn" and maps.ndim == 3 and maps.shape[1] == maps.shape[2]


def test_concurrent_requests_on_one_model_agree(client):
    images = [load_mnist().test.x[k].tolist() for k in range(16)]
    alone = [client.post("/api/predict/dense/pixels", json={"pixels": x}).json() for x in images]
    with ThreadPoolExecutor(8) as pool:
        together = list(pool.map(lambda x: client.post("/api/predict/dense/pixels", json={"pixels": x}).json(),
                                 images * 4))
    assert together == alone * 4


LECTURE_POLICY = {(1, 3): "→", (2, 3): "→", (3, 3): "→", (1, 2): "↑", (3, 2): "↑", (1, 1): "↑", (2, 1): "←",
                  (3, 1): "←", (4, 1): "←"}


@pytest.mark.parametrize("method", ["value", "policy"])
def test_the_grid_world_converges_to_the_lecture_policy(client, method):
    state = client.get("/api/gridworld", params={"method": method, "steps": 10000}).json()
    assert state["converged"]
    arrows = {tuple(c): a for c, a in zip(state["cells"], state["policy"])}
    assert {c: arrows[c] for c in LECTURE_POLICY} == LECTURE_POLICY
    assert arrows[(4, 3)] == "E+1" and arrows[(4, 2)] == "E-1"
    if method == "value":  # the lecture's U(1,1) = 0.705 for R = -0.04, gamma = 1
        assert abs(state["utilities"][state["cells"].index([1, 1])] - 0.705) < 5e-4
        first = client.get("/api/gridworld", params={"steps": 1}).json()
        assert not first["converged"] and first["steps"] == 1


@pytest.mark.parametrize("method, path, kwargs, status", [
    ("post", "/api/predict/nope/pixels", {"json": {"pixels": [0.0] * 784}}, 404),
    ("post", "/api/predict/dense/pixels", {"json": {"pixels": [0.0] * 783}}, 422),
    ("post", "/api/predict/dense/pixels", {"json": {"pixels": [2.0] * 784}}, 422),
    ("post", "/api/predict/dense/pixels", {"content": b'{"pixels": [NaN]}',
                                           "headers": {"Content-Type": "application/json"}}, 422),
    ("post", "/api/predict/dense/pixels", {"json": {"pixels": ["a"] * 784}}, 422),
    ("post", "/api/predict/dense/pixels", {"content": b"{", "headers": {"Content-Type": "application/json"}}, 422),
    ("post", "/api/predict/dense/image", {"content": b"not an image", "headers": {"Content-Type": "image/png"}}, 400),
    ("post", "/api/predict/dense/image", {"content": b"", "headers": {"Content-Type": "image/png"}}, 400),
    ("post", "/api/predict/dense/image", {"content": png(np.zeros(784)), "headers": {"Content-Type": "image/png"}},
     400),
    ("post", "/api/predict/dense/image", {"content": b"x", "headers": {"Content-Type": "text/plain"}}, 415),
    ("post", "/api/predict/dense/image", {"content": b"x" * (MAX_BODY + 1),
                                          "headers": {"Content-Type": "image/png"}}, 413),
    ("post", "/api/predict/..%2F..%2Fetc/image", {"content": b"x", "headers": {"Content-Type": "image/png"}}, 404),
    ("get", "/api/gridworld", {"params": {"gamma": 0}}, 422),
    ("get", "/api/gridworld", {"params": {"reward": "nan"}}, 422),
    ("get", "/api/gridworld", {"params": {"method": "magic"}}, 422),
    ("get", "/api/gridworld", {"params": {"steps": 10**9}}, 422),
    ("get", "/static/../pyproject.toml", {}, 404),
])
def test_bad_input_is_a_4xx_with_a_message(client, method, path, kwargs, status):
    response = getattr(client, method)(path, **kwargs)
    assert response.status_code == status, response.text
    assert response.json().get("detail")


def test_a_blank_drawing_says_so(client):
    response = client.post("/api/predict/dense/image", content=png(np.zeros(784)),
                           headers={"Content-Type": "image/png"})
    assert "blank" in response.json()["detail"]


def test_the_page_loads_nothing_from_elsewhere(client):
    page = client.get("/")
    assert page.status_code == 200 and "<canvas" in page.text
    static = resources.files("tiefnet.serve") / "static"
    for name in ("index.html", "app.js", "style.css"):
        text = (static / name).read_text()
        assert not re.search(r"https?://|//[a-z0-9.-]+\.[a-z]{2,}", text), name
        assert client.get(f"/static/{name}").status_code == 200
    schema = client.get("/openapi.json").json()
    assert {"/api/models", "/api/predict/{name}/pixels", "/api/predict/{name}/image", "/api/gridworld"} <= set(
        schema["paths"])
    assert client.get("/docs").status_code == 404  # FastAPI's docs page would load a CDN's scripts


def test_a_named_folder_that_is_no_digit_model_is_refused(folders):
    from tiefnet.errors import TiefnetError

    with pytest.raises(TiefnetError):
        find_models([folders / "not-a-model"])
