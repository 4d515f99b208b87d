"""tiefnet serve's views (FastAPI's TestClient, no network): a training streamed epoch by epoch as
server-sent events with the numbers ``tiefnet mnist`` gives for its settings, stopped, resumed after
the last event seen, limited in number; a game replayed by its rules and answered by the agent's most
visited move; a char-rnn's sample as ``tiefnet charrnn sample`` draws it; captions with one attention
map per word; a picture in the network's style at the size asked for; every bad input a 4xx."""
import asyncio
import base64
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("httpx", reason="FastAPI's TestClient needs httpx (pip install '.[test]')")
from fastapi.testclient import TestClient  # noqa: E402

from tiefnet.rl.games import make_game  # noqa: E402
from tiefnet.serve import create_app, find_models  # noqa: E402
from tiefnet.serve.app import MAX_BODY  # noqa: E402
from tiefnet.serve.training import Trainings  # noqa: E402

# a small dense run: 784-30-10, sigmoid, quadratic cost, eta 3 (the lecture's first network)
SETTINGS = {"hidden": "30", "train_size": 2000, "epochs": 3, "batch_size": 10, "eta": 3.0, "seed": 5}
SHIPWRECK = Path(__file__).parents[2] / "src" / "tiefnet" / "data" / "style" / "shipwreck.jpg"


@pytest.fixture(scope="module")
def served(model_folders):
    return find_models([], model_folders)


@pytest.fixture(scope="module")
def trainings():
    trainings = Trainings()
    yield trainings
    trainings.stop_all()


@pytest.fixture(scope="module")
def app(served, trainings):
    return create_app(served, trainings)


@pytest.fixture(scope="module")
def client(app):
    return TestClient(app)


def info(folder: Path) -> dict:
    """model.json's info of a model folder, read here rather than by the app."""
    return json.loads((folder / "model.json").read_text())["info"]


def png(picture: Image.Image) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return buffer.getvalue()


def from_data_url(url: str) -> Image.Image:
    head, _, data = url.partition(",")
    assert head == "data:image/png;base64"
    return Image.open(io.BytesIO(base64.b64decode(data)))


# ---- Train in front of you ----

def events(client, id: str, last_event_id: str | None = None) -> list[tuple[str, dict, str | None]]:
    """The training's server-sent events, read to the end of the stream."""
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    with client.stream("GET", f"/api/train/{id}/events", headers=headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        return parse_events("".join(response.iter_text()))


def parse_events(text: str) -> list[tuple[str, dict, str | None]]:
    """Server-sent events as the browser's EventSource reads them: blocks of field lines, one per blank line."""
    parsed = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        fields, data = {}, []
        for line in block.split("\n"):
            if not line or line.startswith(":"):  # a comment (keep-alive)
                continue
            name, _, value = line.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "data":
                data.append(value)
            else:
                fields[name] = value
        if data:  # (event, data, id)
            parsed.append((fields.get("event", "message"), json.loads("\n".join(data)), fields.get("id")))
    return parsed


def epochs_of(stream) -> list[dict]:
    assert [kind for kind, _, _ in stream[:-1]] == ["epoch"] * (len(stream) - 1) and stream[-1][0] == "end"
    return [data for _, data, _ in stream[:-1]]


def train(client, **settings) -> tuple[str, list]:
    """Start a training, follow its events to the end: its id and the events."""
    response = client.post("/api/train", json=settings)
    assert response.status_code == 201, response.text
    id = response.json()["id"]
    return id, events(client, id)


@pytest.fixture(scope="module")
def trained(client):
    return train(client, **SETTINGS)


def test_epoch_0_is_the_untrained_network_and_the_accuracy_rises(client, trained):
    id, stream = trained
    epochs = epochs_of(stream)
    assert [e["epoch"] for e in epochs] == [0, 1, 2, 3]
    assert [event_id for _, _, event_id in stream[:-1]] == ["0", "1", "2", "3"]  # id = the epoch's number
    assert 0.05 <= epochs[0]["validation_accuracy"] <= 0.2  # ten classes, random weights: about chance
    assert "train_accuracy" not in epochs[0] and epochs[0]["seconds"] == 0.0
    accuracies = [e["validation_accuracy"] for e in epochs]
    assert all(a < b for a, b in zip(accuracies, accuracies[1:])) and accuracies[-1] > 0.4
    assert all(0 <= e["train_accuracy"] <= 1 and e["validation_cost"] > 0 for e in epochs[1:])
    assert stream[-1][1] == {"status": "finished", "error": None}

    view = client.get(f"/api/train/{id}").json()
    assert view["id"] == id and view["status"] == "finished" and view["error"] is None
    assert view["settings"] == {**view["settings"], **SETTINGS}  # the defaults filled in, the rest as sent
    assert [{k: v for k, v in e.items() if v is not None} for e in view["epochs"]] == epochs


def test_the_numbers_are_those_of_tiefnet_mnist_with_the_same_settings(trained, tmp_path):
    from tiefnet.vision.mnist import Config, run

    served = epochs_of(trained[1])[1:]
    run(Config(model="dense", **SETTINGS), tmp_path / "run", progress=False, log=lambda line: None)  # the CLI's run
    ran = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [e["epoch"] for e in ran] == [e["epoch"] for e in served]
    for mine, theirs in zip(served, ran):
        assert mine["validation_accuracy"] == theirs["validation_accuracy"]
        assert mine["train_accuracy"] == theirs["train_accuracy"]
        for cost in ("validation_cost", "train_cost"):  # float32 sums: the same up to their rounding
            assert math.isclose(mine[cost], theirs[cost], rel_tol=1e-5)


def test_the_same_seed_gives_the_same_epochs_and_another_seed_others(client, trained):
    def measured(stream):
        return [{k: v for k, v in e.items() if k != "seconds"} for e in epochs_of(stream)]

    _, again = train(client, **SETTINGS)
    assert measured(again) == measured(trained[1])
    _, other = train(client, **{**SETTINGS, "seed": 6, "epochs": 1})
    assert measured(other)[0]["validation_accuracy"] != measured(trained[1])[0]["validation_accuracy"]


def test_a_reconnecting_browser_continues_after_the_last_event_id(client, trained):
    id, stream = trained
    assert events(client, id, "1") == stream[2:]  # epochs 2 and 3, then the end
    assert events(client, id, "3") == stream[-1:]
    assert events(client, id, "not a number") == stream  # from the start


def test_a_last_event_id_of_other_digits_starts_from_the_first_epoch(app, trained):
    # "²" (latin-1 0xB2) is a digit to str.isdigit but not to int(); TestClient would send it as UTF-8,
    # httpx's ASGI transport sends the header's bytes as they are, as a browser's or a proxy's may come
    import httpx

    id, stream = trained

    async def get():
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await client.get(f"/api/train/{id}/events", headers={"Last-Event-ID": b"\xb2"})

    response = asyncio.run(get())
    assert response.status_code == 200, response.text
    assert parse_events(response.text) == stream  # from the start, as for any Last-Event-ID not a number


def test_stop_ends_a_training_at_the_end_of_its_epoch(client):
    response = client.post("/api/train", json={**SETTINGS, "epochs": 30})
    id = response.json()["id"]
    stopping = client.post(f"/api/train/{id}/stop")
    assert stopping.status_code == 200 and stopping.json()["status"] in ("stopping", "stopped")
    stream = events(client, id)
    assert stream[-1][1] == {"status": "stopped", "error": None}
    assert 1 <= len(epochs_of(stream)) < 31  # epoch 0, and the one that ran when the stop came (none if it came first)
    assert client.get(f"/api/train/{id}").json()["status"] == "stopped"
    assert client.post(f"/api/train/{id}/stop").json()["status"] == "stopped"  # a stopped one stays so


@pytest.fixture
def lone(served):
    trainings = Trainings(max_running=1)
    yield TestClient(create_app(served, trainings))
    trainings.stop_all()


def test_no_more_trainings_run_than_the_server_allows(lone):
    first = lone.post("/api/train", json={**SETTINGS, "epochs": 30}).json()["id"]
    refused = lone.post("/api/train", json=SETTINGS)
    assert refused.status_code == 429 and "stop one" in refused.json()["detail"]
    lone.post(f"/api/train/{first}/stop")
    assert events(lone, first)[-1][1]["status"] == "stopped"
    again = lone.post("/api/train", json={**SETTINGS, "epochs": 30})  # its place is free again
    assert again.status_code == 201
    lone.post(f"/api/train/{again.json()['id']}/stop")


@pytest.mark.parametrize("body, field", [
    ({"hidden": "0"}, "hidden"),
    ({"hidden": "1,2,3,4"}, "hidden"),
    ({"hidden": "301"}, "hidden"),
    ({"eta": 0}, "eta"),
    (b'{"eta": NaN}', "eta"),
    (b'{"lmbda": Infinity}', "lmbda"),
    ({"train_size": 10_001}, "train_size"),
    ({"epochs": 0}, "epochs"),
    ({"activation": "softsign"}, "activation"),
    ({"seed": -1}, "seed"),
])
def test_bad_settings_are_a_422_naming_the_setting(client, body, field):
    if isinstance(body, bytes):  # what json= cannot send: NaN and Infinity are no JSON, Python's parser reads them
        response = client.post("/api/train", content=body, headers={"Content-Type": "application/json"})
    else:
        response = client.post("/api/train", json={**SETTINGS, **body})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail[0]["loc"] == ["body", field] and detail[0]["msg"]


@pytest.mark.parametrize("method, path", [("get", "/api/train/{id}"), ("post", "/api/train/{id}/stop"),
                                          ("get", "/api/train/{id}/events")])
def test_an_unknown_training_is_a_404(app, method, path):
    client = TestClient(app, raise_server_exceptions=False)  # a crash should read as its status, 500
    response = getattr(client, method)(path.format(id="0123456789abcdef"))
    assert response.status_code == 404, response.text
    assert "no training" in response.json()["detail"]
    assert getattr(client, method)(path.format(id="not-hex")).status_code == 422


# ---- Play ----

def game_of(model_folders, name: str):
    settings = info(model_folders / name)
    return make_game(settings["game"], **settings.get("game_settings", {}))


def replayed(game, moves):
    state = game.initial()
    for action in moves:
        state = game.play(state, action)
    return state


@pytest.mark.parametrize("name, moves, simulations", [("tictactoe", [], None), ("tictactoe", [4, 0], 40),
                                                      ("tictactoe", [0, 1, 3, 4, 2, 5, 7], 30),
                                                      ("connect4", [3, 3, 2], 25), ("go5", [12, 6], 20)])
def test_the_agent_answers_with_its_most_visited_legal_move(client, model_folders, name, moves, simulations):
    body = {"moves": moves, "seed": 1} | ({} if simulations is None else {"simulations": simulations})
    response = client.post(f"/api/play/{name}", json=body)
    assert response.status_code == 200, response.text
    position = response.json()
    game = game_of(model_folders, name)
    before = replayed(game, moves)
    agent = position["agent"]
    assert agent["action"] in [int(a) for a in game.legal_actions(before)]
    after = game.play(before, agent["action"])  # the position is the one after the agent's move
    assert position["moves"] == moves + [agent["action"]]
    assert position["board"] == after.board.astype(int).tolist() and position["to_move"] == after.player
    assert position["legal"] == ([] if after.terminal else [int(a) for a in game.legal_actions(after)])
    assert position["terminal"] == bool(after.terminal)
    visits = agent["visits"]
    assert [v["action"] for v in visits] == [int(a) for a in game.legal_actions(before)]
    chosen = next(v for v in visits if v["action"] == agent["action"])
    assert chosen["N"] == max(v["N"] for v in visits) and chosen["name"] == agent["name"]
    # every simulation passes one edge of the root (the root's own evaluation is none of them)
    expected = simulations if simulations is not None else info(model_folders / name)["simulations"]
    assert sum(v["N"] for v in visits) == agent["simulations"] == expected
    assert all((v["Q"] is None) == (v["N"] == 0) and -1 <= (v["Q"] or 0) <= 1 for v in visits)
    assert math.isclose(sum(v["P"] for v in visits), 1.0, abs_tol=1e-3) and -1 <= agent["nu"] <= 1
    assert client.post(f"/api/play/{name}", json=body).json() == position  # the same seed, the same search


def test_the_board_holds_the_first_players_stones_as_plus_one(client):
    # tic-tac-toe's cell r * 3 + c; Connect Four's stones fall to the bottom row of their column
    board = client.post("/api/play/tictactoe", json={"moves": [0, 4, 8]}).json()["board"]
    assert board[0][0] == board[2][2] == 1 and board[1][1] == -1
    assert sum(row.count(1) for row in board) == 2 and sum(row.count(-1) for row in board) == 2  # and the agent's
    board = client.post("/api/play/connect4", json={"moves": [3, 3, 0], "simulations": 2}).json()["board"]
    assert board[5][3] == 1 and board[4][3] == -1 and board[5][0] == 1


@pytest.mark.parametrize("name, moves, named", [
    ("connect4", [0] * 7, "move 7 (0)"),  # the column is full after six stones
    ("tictactoe", [4, 4], "move 2 (4)"),  # the cell is taken
    ("tictactoe", [9], "move 1 (9)"),  # no such cell
    ("tictactoe", [0, 3, 1, 4, 2, 5], "move 6"),  # the first player won with move 5
])
def test_an_illegal_move_is_a_422_naming_it(client, name, moves, named):
    response = client.post(f"/api/play/{name}", json={"moves": moves})
    assert response.status_code == 422 and named in response.json()["detail"], response.text


def test_without_a_reply_the_position_is_that_of_the_moves(client, model_folders):
    moves = [3, 3, 4, 2]
    position = client.post("/api/play/connect4", json={"moves": moves, "reply": False}).json()
    state = replayed(game_of(model_folders, "connect4"), moves)
    assert position["agent"] is None and position["moves"] == moves and position["to_move"] == state.player == 0
    assert position["board"] == state.board.astype(int).tolist() and not position["terminal"]


@pytest.mark.parametrize("name, moves, result", [
    ("tictactoe", [0, 3, 1, 4, 2], "first player wins"),  # the top row
    ("tictactoe", [0, 4, 8, 1, 7, 6, 2, 5, 3], "draw"),  # x o x / x o o / o x x
    ("go5", [25, 25], "second player wins"),  # two passes end it: an empty board, komi 7.5 for the second
    ("go5", [12, 25, 25], "first player wins"),  # one stone holds the whole board
])
def test_a_finished_game_gets_its_result_and_no_reply(client, name, moves, result):
    position = client.post(f"/api/play/{name}", json={"moves": moves}).json()
    assert position["agent"] is None and position["terminal"] and position["legal"] == []
    assert position["result"] == result and position["moves"] == moves


def winner(board) -> int:
    """+1 or -1 where a row, column or diagonal of tic-tac-toe is full of one player's stones, else 0."""
    b = np.asarray(board)
    for line in [*b, *b.T, b.diagonal(), np.fliplr(b).diagonal()]:
        if abs(line.sum()) == 3:
            return int(line[0])
    return 0


def test_a_whole_game_against_the_agent_ends(client):
    moves = []
    for _ in range(5):  # the person moves first: at most five of the nine moves are theirs
        position = client.post("/api/play/tictactoe", json={"moves": moves, "simulations": 8}).json()
        if position["agent"] is None:
            break
        assert position["moves"][:len(moves)] == moves and len(position["moves"]) == len(moves) + 1
        moves = position["moves"] if position["terminal"] else position["moves"] + [position["legal"][0]]
    final = client.post("/api/play/tictactoe", json={"moves": moves}).json()
    assert final["terminal"] and final["agent"] is None
    won = winner(final["board"])
    assert won or all(0 not in row for row in final["board"])
    assert final["result"] == {1: "first player wins", -1: "second player wins", 0: "draw"}[won]


@pytest.mark.parametrize("name", ["digits", "text", "nope"])
def test_play_needs_an_alphazero_model(client, name):
    response = client.post(f"/api/play/{name}", json={"moves": []})
    assert response.status_code == 404 and "tictactoe" in response.json()["detail"]


# ---- Text ----

def test_the_sample_is_the_prime_then_length_characters_of_the_vocabulary(client, model_folders):
    vocabulary = set(info(model_folders / "text")["chars"])
    body = {"prime": "hallo ", "length": 80, "temperature": 0.8, "seed": 3}
    with client.stream("POST", "/api/text/text", json=body) as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
        pieces = list(response.iter_text())
    text = "".join(pieces)
    assert pieces[0].startswith("hallo ") and len(pieces) > 1  # the prime first, then as they are drawn
    assert text.startswith("hallo ") and len(text) == len("hallo ") + 80 and set(text) <= vocabulary


def test_the_sample_is_that_of_tiefnet_charrnn_sample_with_the_same_seed(client, model_folders):
    from tiefnet.text.charrnn_sample import load_sampler, sample

    body = {"prime": "hallo", "length": 60, "temperature": 1.5, "seed": 11}
    text = client.post("/api/text/text", json=body).text
    assert client.post("/api/text/text", json=body).text == text
    assert client.post("/api/text/text", json={**body, "seed": 12}).text != text
    model, vocab, warmup = load_sampler(model_folders / "text")
    assert sample(model, vocab, "hallo", 60, 1.5, np.random.default_rng(11), warmup) == text


@pytest.mark.parametrize("body, said", [
    ({"prime": "HALLO"}, "AHLO"),  # the characters outside the vocabulary, named
    ({"prime": "hallo!"}, "!"),
    ({"temperature": 0}, "temperature"),
    ({"temperature": 5.01}, "temperature"),
    ({"length": 0}, "length"),
    ({"prime": "h" * 1001}, "prime"),
])
def test_a_bad_sample_request_is_a_422(client, body, said):
    response = client.post("/api/text/text", json={"length": 10, **body})
    assert response.status_code == 422 and said in json.dumps(response.json()["detail"]), response.text


# ---- Captions ----

def check_description(result, size: int):
    assert result["words"] and result["caption"] == " ".join(result["words"]) and result["kind"] == "attention"
    maps = np.asarray(result["attention"])
    assert maps.shape[0] == len(result["words"]) and maps.shape[1] == maps.shape[2]  # one square map per word
    assert (maps >= 0).all() and np.allclose(maps.sum(axis=(1, 2)), 1.0, atol=5e-3)  # alpha: rounded weights
    image = from_data_url(result["image"])
    assert image.size == (size, size) and image.mode == "RGB"
    return image


def test_a_scene_comes_with_its_caption_references_and_boxes(client, model_folders):
    size = info(model_folders / "captions")["size"]
    response = client.get("/api/caption/captions/scene", params={"seed": 4})
    assert response.status_code == 200, response.text
    result = response.json()
    check_description(result, size)
    assert result["references"] and all(isinstance(r, str) and r for r in result["references"])
    assert result["boxes"]
    for box in result["boxes"]:  # each digit inside the picture, and named by every reference caption
        assert 0 <= box["x0"] < box["x1"] <= size and 0 <= box["y0"] < box["y1"] <= size
        assert all(box["word"] in reference.split() for reference in result["references"])
    assert client.get("/api/caption/captions/scene", params={"seed": 4}).json() == result
    assert client.get("/api/caption/captions/scene", params={"seed": 5}).json()["image"] != result["image"]
    beam = client.get("/api/caption/captions/scene", params={"seed": 4, "beam": 3, "split": "compositional"})
    assert beam.status_code == 200 and beam.json()["words"]


def test_an_uploaded_picture_is_captioned_at_the_models_size(client, model_folders):
    size = info(model_folders / "captions")["size"]
    scene = client.get("/api/caption/captions/scene", params={"seed": 2}).json()
    again = client.post("/api/caption/captions/image", content=png(from_data_url(scene["image"])),
                        headers={"Content-Type": "image/png"}).json()
    assert again["words"] == scene["words"] and again["references"] is None and again["boxes"] is None
    wide = Image.new("RGB", (3 * size, size), "navy")
    wide.paste(Image.new("RGB", (size, size), "yellow"), (size, 0))
    result = client.post("/api/caption/captions/image", content=png(wide), headers={"Content-Type": "image/png"})
    assert result.status_code == 200, result.text
    image = np.asarray(check_description(result.json(), size))  # squashed, not cropped: all three parts show
    assert image[size // 2, size // 2].tolist() == [255, 255, 0] and image[size // 2, 2][2] > 100


@pytest.mark.parametrize("content, kind, status", [
    (b"not an image", "image/png", 400),
    (b"", "image/jpeg", 400),
    (b"\x89PNG\r\n\x1a\n", "image/png", 400),  # a PNG's signature and nothing after it
    (b"x", "text/plain", 415),
    (b"x", "", 415),
    (b"x" * (MAX_BODY + 1), "image/png", 413),
])
def test_a_bad_upload_to_the_captions_is_a_4xx(client, content, kind, status):
    response = client.post("/api/caption/captions/image", content=content, headers={"Content-Type": kind})
    assert response.status_code == status and response.json()["detail"], response.text


def test_a_body_sent_in_chunks_is_counted_while_it_arrives(client):
    chunks = iter([b"x" * 500_000] * 5)  # no Content-Length: a chunked body of 2.5 MB
    response = client.post("/api/caption/captions/image", content=chunks, headers={"Content-Type": "image/png"})
    assert response.status_code == 413, response.text


@pytest.mark.parametrize("path", ["/api/caption/text/scene", "/api/caption/nope/scene"])
def test_captions_need_a_captioning_model(client, path):
    assert client.get(path).status_code == 404


# ---- Style ----

def stylize(client, content: bytes, kind: str = "image/png", **params):
    return client.post("/api/style/style", content=content, headers={"Content-Type": kind}, params=params)


@pytest.mark.parametrize("side", [None, 64, 2000])
def test_a_picture_comes_back_in_style_at_the_side_asked_for(client, side):
    params = {} if side is None else {"side": side}
    original = Image.open(SHIPWRECK).size
    response = stylize(client, SHIPWRECK.read_bytes(), "image/jpeg", **params)
    if side == 2000:  # more than the page's limit
        assert response.status_code == 422
        return
    assert response.status_code == 200 and response.headers["content-type"] == "image/png", response.text
    picture = Image.open(io.BytesIO(response.content))
    assert picture.format == "PNG" and picture.mode == "RGB"
    longest = min(side or 256, max(original))  # 256: the page's default
    assert max(picture.size) == longest
    assert abs(picture.height - original[1] * longest / original[0]) <= 1  # the proportions kept


def test_a_small_picture_keeps_its_size(client):
    small = Image.new("RGB", (40, 30), "white")
    small.paste(Image.new("RGB", (20, 30), "red"))
    response = stylize(client, png(small), side=512)
    assert response.status_code == 200 and Image.open(io.BytesIO(response.content)).size == (40, 30)


@pytest.mark.parametrize("content, status", [
    (png(Image.new("RGB", (4, 4), "red")), 400),  # smaller than the network's filters need
    (b"not an image", 400),
    (b"x" * (MAX_BODY + 1), 413),
])
def test_a_bad_picture_to_style_is_a_4xx(client, content, status):
    response = stylize(client, content)
    assert response.status_code == status and response.json()["detail"], response.text


def test_style_needs_a_style_model(client):
    response = client.post("/api/style/digits", content=SHIPWRECK.read_bytes(), headers={"Content-Type": "image/jpeg"})
    assert response.status_code == 404 and "style" in response.json()["detail"]


# --- what a single request may ask of the server ----------------------------------------------------

def chunks(size: int, piece: int = 100_000):
    """A body of ``size`` bytes sent in chunks, without a Content-Length."""
    for start in range(0, size, piece):
        yield b" " * min(piece, size - start)


@pytest.mark.parametrize("path", ["/api/play/connect4", "/api/train", "/api/text/text", "/api/predict/digits/pixels"])
def test_a_json_body_in_chunks_is_refused_past_the_limit(client, path):
    response = client.post(path, content=chunks(MAX_BODY + 200_000), headers={"Content-Type": "application/json"})
    assert response.status_code == 413 and "larger than" in response.json()["detail"]


@pytest.mark.parametrize("path", ["/api/predict/digits/image", "/api/caption/captions/image", "/api/style/style"])
def test_a_picture_of_too_many_pixels_is_refused_before_it_is_decoded(client, path):
    from tiefnet.serve.app import UPLOAD_PIXELS

    side = int(UPLOAD_PIXELS ** 0.5) + 1  # a few kB of PNG, but more pixels than an upload may have
    response = client.post(path, content=png(Image.new("L", (side, side))), headers={"Content-Type": "image/png"})
    assert response.status_code == 400 and f"{UPLOAD_PIXELS:,}" in response.json()["detail"]


def test_a_diverged_model_is_a_4xx_not_a_text_of_its_prime(model_folders):
    from tiefnet.serve.games import Agent
    from tiefnet.serve.text import TextSampler

    sampler, agent = TextSampler.load("text", model_folders / "text"), Agent.load("c4", model_folders / "connect4")
    for model in (sampler.model, agent.net):  # as after a training that diverged (a file cannot hold NaN)
        for p in model.parameters():
            p.value[...] = np.nan
    client = TestClient(create_app({"text": sampler, "c4": agent}))
    text = client.post("/api/text/text", json={"prime": "hallo", "length": 10})
    assert text.status_code == 422 and "diverged" in text.json()["detail"]
    move = client.post("/api/play/c4", json={"moves": [3]})
    assert move.status_code == 422 and "diverged" in move.json()["detail"]


def test_a_broken_folder_under_runs_is_skipped_and_told(model_folders, tmp_path):
    import shutil

    from tiefnet.errors import TiefnetError

    shutil.copytree(model_folders / "text", tmp_path / "text")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "model.json").write_text('{"app": "charrnn"}')  # no model.npz
    told = []
    assert list(find_models([], tmp_path, warn=told.append)) == ["text"]
    assert len(told) == 1 and "broken" in told[0]
    with pytest.raises(TiefnetError):  # named on the command line: an error
        find_models([tmp_path / "broken"])
