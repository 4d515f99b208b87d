"""The page of ``tiefnet serve`` in a real browser: headless Chromium (Debian's ``chromium``, which
.ci/run installs where it is missing) driven by Playwright, against a server on a free loopback port.

A digit of the MNIST test set is drawn onto the canvas with mouse strokes and read back; a training
started on the page shows its accuracy rising; value iteration stepped to convergence shows the
lecture's policy; a whole game of Connect Four is played by clicks; a sample is written, a scene
captioned, a picture stylised. After each test, the browser's request log shows no request to any
other host, and no script of the page failed.

Every view is photographed: to ``$TIEFNET_SCREENSHOTS`` if set (``docs/screenshots``, the README's
pictures), else to a temporary folder.
"""
from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import numpy as np
import pytest

playwright = pytest.importorskip("playwright.sync_api", reason="the page tests need Playwright (pip install '.[test]')")
uvicorn = pytest.importorskip("uvicorn")

from tiefnet.data import load_mnist  # noqa: E402
from tiefnet.serve import create_app, find_models  # noqa: E402

CHROMIUM = os.environ.get("TIEFNET_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium here (apt-get install chromium)")
LECTURE_POLICY = {(1, 3): "→", (2, 3): "→", (3, 3): "→", (4, 3): "E+1", (1, 2): "↑", (3, 2): "↑", (4, 2): "E-1",
                  (1, 1): "↑", (2, 1): "←", (3, 1): "←", (4, 1): "←"}
SCALE = 10  # canvas pixels per MNIST pixel (280 x 280)


@pytest.fixture(scope="module")
def server(model_folders):
    """The app on a free loopback port, in a thread of this process (the socket bound here and handed
    to uvicorn: no other test process can take the port in between)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    app = create_app(find_models([], model_folders))
    instance = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=instance.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not instance.started:
        assert time.time() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(10)
    sock.close()


@pytest.fixture(scope="module")
def browser(server):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, server):
    """A page of its own for each test. Afterwards: it asked no host but the server (every request the
    browser made, from the request log), and none of its scripts failed."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    asked, errors = [], []
    context.on("request", lambda request: asked.append(request.url))
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.set_default_timeout(60_000)
    yield page
    context.close()
    web = [u for u in asked if not u.startswith(("data:", "blob:"))]
    assert web and [u for u in web if not u.startswith(server + "/")] == []
    assert errors == []


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("TIEFNET_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def strokes(image: np.ndarray, threshold: float = 0.4) -> list[tuple[float, float, float, float]]:
    """The ink of a 28 x 28 digit as horizontal pen strokes on the canvas, every second row (the pen
    is 20 canvas pixels wide: two rows): one stroke per run of pixels above ``threshold``."""
    ink = image.reshape(28, 28) > threshold
    lines = []
    for r in range(0, 28, 2):
        row = ink[r] | ink[r + 1] if r + 1 < 28 else ink[r]
        c = 0
        while c < 28:
            if row[c]:
                end = c
                while end + 1 < 28 and row[end + 1]:
                    end += 1
                y = (r + 1) * SCALE
                lines.append((c * SCALE + SCALE / 2, y, end * SCALE + SCALE / 2, y))
                c = end + 1
            else:
                c += 1
    return lines


def draw(page, image: np.ndarray) -> None:
    box = page.locator("#canvas").bounding_box()
    for x0, y0, x1, y1 in strokes(image):
        page.mouse.move(box["x"] + x0, box["y"] + y0)
        page.mouse.down()
        page.mouse.move(box["x"] + x1 + 0.5, box["y"] + y1, steps=3)
        page.mouse.up()


def test_a_drawn_test_digit_is_read_back(server, page, shots):
    test = load_mnist().test
    page.goto(f"{server}/?tab=handwriting&model=digits")
    page.wait_for_selector("#model option[value=digits]", state="attached")
    read = []
    for k in range(5):  # the first five digits of the test set: 7 2 1 0 4
        page.click("#clear")
        draw(page, np.asarray(test.x[k]))
        page.wait_for_function("(d => d.dataset.asked && d.dataset.asked === d.dataset.answered)"
                               "(document.getElementById('digit'))")
        read.append(int(page.text_content("#digit")))
        if k == 0:
            page.screenshot(path=str(shots / "handwriting.png"))
    assert read == [int(y) for y in test.y[:5]]
    assert page.locator("#hidden .unit").count() == 100  # the hidden layer's activations


def test_a_training_started_on_the_page_learns(server, page, shots):
    page.goto(f"{server}/?tab=train&epochs=4&train_size=2000&eta=3&hidden=30&seed=1")
    page.click("#train-start")
    page.wait_for_selector('#train-status[data-state="finished"]', timeout=120_000)
    accuracies = [float(t.strip(" %")) for t in page.locator("#train-epochs tbody tr td:nth-child(2)").all_text_contents()]
    assert len(accuracies) == 5  # epochs 0 (untrained) to 4
    assert accuracies[0] < 20 and accuracies[-1] > accuracies[0] + 40  # chance, then most digits right
    assert "training=" in page.url and "eta=3" in page.url  # a link reproduces it
    page.screenshot(path=str(shots / "train.png"))


def test_value_iteration_stepped_to_convergence_gives_the_lecture_policy(server, page, shots):
    page.goto(f"{server}/?tab=gridworld")
    page.wait_for_function("document.getElementById('gw-status').textContent.startsWith('1 sweep ')")
    for _ in range(3):  # as fast as clicks come: each one is a sweep, whenever the answers arrive
        page.click("#gw-step")
    page.wait_for_function("document.getElementById('gw-status').textContent.startsWith('4 sweeps')")
    page.click("#gw-run")
    page.wait_for_function("document.getElementById('gw-status').textContent.includes('converged')")
    cells = page.locator("#gw-board td[data-policy]")
    policy = {(int(cells.nth(i).get_attribute("data-x")), int(cells.nth(i).get_attribute("data-y"))):
              cells.nth(i).get_attribute("data-policy") for i in range(cells.count())}
    assert policy == LECTURE_POLICY
    assert "0.705" in page.text_content('#gw-board td[data-x="1"][data-y="1"]')  # the lecture's U(1,1)
    page.screenshot(path=str(shots / "gridworld.png"))


def test_a_whole_game_of_connect_four(server, page, shots):
    page.goto(f"{server}/?tab=play&agent=connect4")
    page.wait_for_selector("#play-board td")
    for move in range(42):
        page.wait_for_function("!document.getElementById('play-status').textContent.includes('thinks')")
        if page.get_attribute("#play-status", "data-terminal") == "true":
            break
        free = [c for c in range(7) if page.locator(f'#play-board td[data-row="0"][data-col="{c}"] .stone').count() == 0]
        moves = int(page.get_attribute("#play-status", "data-moves"))
        with page.expect_response(lambda r: "/api/play/" in r.url):
            page.click(f'#play-board td[data-row="0"][data-col="{free[move % len(free)]}"]')
        page.wait_for_function(f"document.getElementById('play-status').dataset.moves != '{moves}'")
        if move == 2:  # mid-game: the agent's visit counts and nu on the page
            assert page.locator("#play-visits tr").count() > 1 and "ν =" in page.text_content("#play-nu")
            page.screenshot(path=str(shots / "play.png"))
    assert page.get_attribute("#play-status", "data-terminal") == "true"
    status = page.text_content("#play-status")
    assert "game over" in status and any(r in status for r in ("first player wins", "second player wins", "draw"))
    moves = [int(m) for m in page.url.split("moves=")[1].split("&")[0].replace("%2C", ",").split(",")]
    from tiefnet.rl.games import make_game  # the game in the URL is a real, finished game

    game = make_game("connect4")
    state = game.initial()
    for m in moves:
        state = game.play(state, m)
    assert state.terminal


@pytest.mark.parametrize("agent", ["tictactoe", "go5"])
def test_the_other_games_take_a_move_and_answer(server, page, agent):
    page.goto(f"{server}/?tab=play&agent={agent}")
    page.wait_for_selector("#play-board td")
    assert page.is_visible("#play-pass") == (agent == "go5")  # Go has a pass
    with page.expect_response(lambda r: "/api/play/" in r.url):
        page.click('#play-board td[data-action="4"]')
    page.wait_for_function("document.getElementById('play-status').dataset.moves == '2'")
    assert page.locator("#play-board .stone").count() == 2 and page.locator("#play-visits tr").count() > 1
    if agent == "go5":  # Go's board is drawn with row 1 at the bottom, as Go diagrams are
        assert page.locator("#play-board tr").last.locator("td").first.get_attribute("data-action") == "0"


def test_a_sample_is_written_and_streamed(server, page, shots):
    page.goto(f"{server}/?tab=text&textmodel=text&prime=hallo&length=200&textseed=3")
    page.wait_for_selector("#text-model option[value=text]", state="attached")
    page.click("#text-go")
    page.wait_for_selector('#text-out[data-done="true"]')
    text = page.text_content("#text-out")
    assert text.startswith("hallo") and len(text) == len("hallo") + 200
    page.screenshot(path=str(shots / "text.png"))


def test_a_scene_is_captioned_and_a_picture_stylised(server, page, shots):
    page.goto(f"{server}/?tab=pictures&capmodel=captions&capseed=4")
    page.wait_for_selector("#cap-model option[value=captions]", state="attached")
    page.click("#cap-scene")
    page.wait_for_selector("#cap-words .word")
    assert page.locator("#cap-maps figure").count() == page.locator("#cap-words .word").count()
    page.hover("#cap-words .word >> nth=0")
    page.set_input_files("#style-file", str(Path(__file__).parents[2] / "src/tiefnet/data/style/shipwreck.jpg"))
    page.wait_for_selector('#style-out[data-done="true"]')
    assert page.evaluate("document.getElementById('style-out').naturalWidth") == 256
    page.screenshot(path=str(shots / "pictures.png"), full_page=True)
