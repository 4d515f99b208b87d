"""The FastAPI application of ``tiefnet serve``.

Every input is checked at the API: a body over :data:`MAX_BODY` bytes is refused (413) while it
arrives, a picture of more than :data:`UPLOAD_PIXELS` pixels before it is decoded, an image that is
no image (or shows no digit) is a 400, numbers of the wrong count or range a 422, an unknown model a
404; no request names a file. Models are loaded once, before the app is made, and only read
afterwards; the heavy work of a request (a search, a caption, a stylisation, decoding a picture) runs
in a worker thread, never in the event loop.
"""
from __future__ import annotations

import asyncio
import contextlib
import math
import re
from importlib import resources
from typing import Annotated, Any

import numpy as np
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.sse import EventSourceResponse, ServerSentEvent
from fastapi.staticfiles import StaticFiles

from tiefnet.errors import TiefnetError
from tiefnet.serve.pictures import DEFAULT_STYLE_SIDE, MAX_STYLE_SIDE
from tiefnet.serve.schemas import (Description, GridWorldState, Moves, Pixels, Position, Prediction,
                                   SampleRequest, TrainingView, TrainSettings)
from tiefnet.serve.training import Training, Trainings

MAX_BODY = 2_000_000  # bytes of one request body (a drawing as PNG is a few kB)
UPLOAD_PIXELS = 4_000_000  # pixels of an uploaded picture, read from its header before it is decoded
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp")
ModelName = Annotated[str, Path(max_length=100, pattern=r"^[A-Za-z0-9._-]+$")]
TrainingId = Annotated[str, Path(max_length=32, pattern=r"^[0-9a-f]+$")]
IMAGE_BODY = {"requestBody": {"required": True, "content": {
    t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES}}}
VIEWS = {"mnist": "a digit model (tiefnet mnist)", "alphazero": "an AlphaZero agent (tiefnet alphazero train)",
         "charrnn": "a char-rnn (tiefnet charrnn train)", "caption": "a captioning model (tiefnet caption train)",
         "fast-style": "a fast style transfer network (tiefnet fast-style train)"}


def create_app(models: dict[str, Any], trainings: Trainings | None = None) -> FastAPI:
    """The app over these loaded models (name -> a served model with .app and .kind, see
    :mod:`tiefnet.serve.models`) and the page's trainings (a new, empty set by default)."""
    trainings = Trainings() if trainings is None else trainings
    # no /docs or /redoc: FastAPI's pages for them load scripts from a CDN, and the page works offline
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        trainings.stop_all()  # the server stops: so do its trainings (at the end of their epoch)

    app = FastAPI(title="tiefnet", summary="The lecture's models and experiments, on a local page",
                  version=_version(), docs_url=None, redoc_url=None, lifespan=lifespan)
    app.state.trainings = trainings
    static = resources.files("tiefnet.serve") / "static"

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        # where and what, without the input itself: a NaN or a huge value sent back would not even be JSON
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))[:300]} for e in error.errors()[:20]]
        return JSONResponse({"detail": detail}, status_code=422)

    app.add_middleware(BodyLimit, limit=MAX_BODY)

    turns: dict[str, asyncio.Lock] = {}

    async def in_turn(name: str, work, *args):
        """work(*args) in a worker thread, one request at a time per model: one search, caption or
        stylisation already uses the cores, so more at once would only share them. The others wait
        here, in the event loop, not in a thread of the pool that every plain endpoint needs."""
        async with turns.setdefault(name, asyncio.Lock()):
            return await asyncio.to_thread(work, *args)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/api/models")
    def list_models() -> list[dict[str, str]]:
        """The models this server answers with: name, app (the view: mnist, alphazero, charrnn, caption,
        fast-style) and kind (dense or cnn; the game; attention or show-and-tell; the style)."""
        return [{"name": name, "app": m.app, "kind": m.kind} for name, m in models.items()]

    def served(name: str, app: str):
        model = models.get(name)
        if model is None or model.app != app:
            mine = [n for n, m in models.items() if m.app == app]
            what = f"{name!r} is not {VIEWS[app]}" if model is not None else f"no model {name!r}"
            raise HTTPException(404, f"{what}; this server has {', '.join(mine) or 'none'}")
        return model

    # ---- Handwriting (2.4, 3.1-3.3) ----
    # async: a prediction takes well under a millisecond, less than the hop to a worker thread would
    @app.post("/api/predict/{name}/pixels", responses={404: {"description": "no such model"}})
    async def predict_pixels(name: ModelName, body: Pixels) -> Prediction:
        """The digit in 784 prepared pixels (what the page's canvas gives after MNIST's preparation)."""
        return Prediction(**served(name, "mnist").predict(np.asarray(body.pixels, dtype=np.float32)))

    @app.post("/api/predict/{name}/image", responses={400: {"description": "not an image of a digit"},
                                                      404: {"description": "no such model"},
                                                      413: {"description": "too large"},
                                                      415: {"description": "not an image type"}},
              openapi_extra=IMAGE_BODY)
    async def predict_image(name: ModelName, request: Request) -> Prediction:
        """The digit in a PNG/JPEG, prepared exactly as ``tiefnet predict`` prepares a file: grey levels,
        inverted if the border is light, cropped, scaled to 20 px, centre of mass to (14, 14)."""
        from tiefnet.data.image import digit_from_bytes

        chosen = served(name, "mnist")
        data = await image_body(request)
        try:  # decoded in a thread: a large picture takes a while, and the event loop serves everyone
            x = await asyncio.to_thread(digit_from_bytes, data, "the image", UPLOAD_PIXELS)
        except TiefnetError as error:
            raise HTTPException(400, str(error)) from None
        return Prediction(**chosen.predict(x))

    # ---- Train in front of you (2.4-2.7) ----
    @app.post("/api/train", status_code=201, responses={429: {"description": "too many trainings running"}})
    def start_training(settings: TrainSettings) -> TrainingView:
        """Start a small tiefnet mnist training (dense) with these settings; its epochs stream from
        /api/train/{id}/events. Epoch 0 is the untrained network."""
        try:
            training = trainings.start(settings.model_dump())
        except RuntimeError as error:
            raise HTTPException(429, str(error)) from None
        except TiefnetError as error:
            raise HTTPException(422, str(error)) from None
        return TrainingView(**training.view())

    def training_of(id: TrainingId) -> Training:  # also a dependency: a 404 before any event is sent
        training = trainings.get(id)
        if training is None:
            raise HTTPException(404, f"no training {id!r} (a server keeps the last {trainings.keep})")
        return training

    @app.get("/api/train/{id}", responses={404: {"description": "no such training"}})
    def training_state(id: TrainingId) -> TrainingView:
        """The training's settings, status and every epoch measured so far."""
        return TrainingView(**training_of(id).view())

    @app.post("/api/train/{id}/stop", responses={404: {"description": "no such training"}})
    def stop_training(id: TrainingId) -> TrainingView:
        """Stop the training at the end of the epoch it is in."""
        training = training_of(id)
        training.stop()
        return TrainingView(**training.view())

    @app.get("/api/train/{id}/events", response_class=EventSourceResponse,
             responses={404: {"description": "no such training"}})
    async def training_events(request: Request, training: Training = Depends(training_of)):
        """Server-sent events: one "epoch" event per epoch measured (id = its number; a reconnecting
        browser's Last-Event-ID continues after it), then one "end" event with the final status."""
        last = request.headers.get("last-event-id", "")
        sent = int(last) + 1 if re.fullmatch("[0-9]{1,5}", last) else 0
        while True:
            done = training.done  # read before the events: the last epoch is in them once done
            while sent < len(training.events):
                event = training.events[sent]
                yield ServerSentEvent(data=event, event="epoch", id=str(event["epoch"]))
                sent += 1
            if done:
                yield ServerSentEvent(data={"status": training.status, "error": training.error}, event="end")
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.1)

    # ---- Grid world (5.1) ----
    @app.get("/api/gridworld")
    def gridworld(method: Annotated[str, Query(pattern="^(value|policy)$")] = "value",
                  reward: Annotated[float, Query(ge=-10.0, le=10.0, allow_inf_nan=False)] = -0.04,
                  gamma: Annotated[float, Query(gt=0.0, le=1.0, allow_inf_nan=False)] = 1.0,
                  steps: Annotated[int, Query(ge=1, le=10_000)] = 1) -> GridWorldState:
        """The lecture's 3 × 4 grid world (5.1) after ``steps`` sweeps of value iteration (from U = 0)
        or iterations of policy iteration: U per field and the greedy policy's arrows."""
        return GridWorldState(**gridworld_state(method, reward, gamma, steps))

    # ---- Play (5.4) ----
    @app.post("/api/play/{name}", responses={404: {"description": "no such agent"},
                                             422: {"description": "an illegal move"}})
    async def play(name: ModelName, body: Moves) -> Position:
        """The position after ``moves`` and, unless the game is over (or reply is false), the agent's reply: f_theta + MCTS,
        the most visited move, with N, Q and P of every root move and nu, the network's value."""
        agent = served(name, "alphazero")
        try:
            if not body.reply:
                state = await asyncio.to_thread(agent.replay, body.moves)
                return Position(**agent.position(state), agent=None)
            return Position(**await in_turn(name, agent.reply, body.moves, body.simulations, body.seed))
        except TiefnetError as error:
            raise HTTPException(422, str(error)) from None

    # ---- Text (4.4) ----
    @app.post("/api/text/{name}", response_class=StreamingResponse,
              responses={200: {"content": {"text/plain": {}}, "description": "the sample, streamed"},
                         404: {"description": "no such model"}, 422: {"description": "a bad prime"}})
    def sample_text(name: ModelName, body: SampleRequest):
        """The prime, then ``length`` characters drawn one by one from p^(1/T), streamed as they come."""
        sampler = served(name, "charrnn")
        try:
            pieces = sampler.stream(body.prime, body.length, body.temperature, body.seed)
        except TiefnetError as error:
            raise HTTPException(422, str(error)) from None
        return StreamingResponse(pieces, media_type="text/plain; charset=utf-8")

    # ---- Captions (4.4) and style (3.4) ----
    @app.get("/api/caption/{name}/scene", responses={404: {"description": "no such model"}})
    async def caption_scene(name: ModelName,
                      split: Annotated[str, Query(pattern="^(test|compositional)$")] = "test",
                      seed: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,
                      beam: Annotated[int, Query(ge=1, le=10)] = 1) -> Description:
        """A generated scene (the digits of 4.4's scenes) and its caption; with attention, one map of
        the weights alpha per word. The scene's reference captions and digit boxes come with it."""
        model = served(name, "caption")

        def work():
            image, references, boxes = model.scene(split, seed)
            return {**model.describe(image, beam), "references": references, "boxes": boxes}

        try:
            return Description(**await in_turn(name, work))
        except TiefnetError as error:  # e.g. a model whose picture size no scene has
            raise HTTPException(422, str(error)) from None

    @app.post("/api/caption/{name}/image", openapi_extra=IMAGE_BODY,
              responses={400: {"description": "not an image"}, 404: {"description": "no such model"},
                         413: {"description": "too large"}, 415: {"description": "not an image type"}})
    async def caption_image(name: ModelName, request: Request,
                            beam: Annotated[int, Query(ge=1, le=10)] = 1) -> Description:
        """The caption of an uploaded picture (squashed to the model's size, as for training)."""
        model = served(name, "caption")
        data = await image_body(request)
        try:
            image = await asyncio.to_thread(model.picture, data, UPLOAD_PIXELS)
        except TiefnetError as error:
            raise HTTPException(400, str(error)) from None
        return Description(**await in_turn(name, model.describe, image, beam))

    @app.post("/api/style/{name}", openapi_extra=IMAGE_BODY, response_class=Response,
              responses={200: {"content": {"image/png": {}}, "description": "the stylised picture"},
                         400: {"description": "not a picture"}, 404: {"description": "no such model"},
                         413: {"description": "too large"}, 415: {"description": "not an image type"}})
    async def stylize(name: ModelName, request: Request,
                      side: Annotated[int, Query(ge=16, le=MAX_STYLE_SIDE)] = DEFAULT_STYLE_SIDE) -> Response:
        """The picture in the network's style (one forward pass), its longer side at most ``side``."""
        model = served(name, "fast-style")
        data = await image_body(request)
        try:
            png = await in_turn(name, model.stylize, data, side, UPLOAD_PIXELS)
        except TiefnetError as error:
            raise HTTPException(400, str(error)) from None
        return Response(png, media_type="image/png")

    return app


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is a 413, a declared Content-Length before
    anything is read, a body sent in chunks as soon as it has grown past the limit (JSON or image,
    before it is parsed)."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        message = f"the body is larger than {self.limit:,} bytes"
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or len(declared) > 20 or int(declared) > self.limit):
            return await JSONResponse({"detail": message}, status_code=413)(scope, receive, send)
        received = 0

        async def counted():
            nonlocal received
            event = await receive()
            received += len(event.get("body", b""))
            if received > self.limit:  # raised where the route reads its body: the app's 4xx handling
                raise HTTPException(413, message)
            return event

        await self.app(scope, counted, send)


async def image_body(request: Request) -> bytes:
    """The request's body as an image's bytes: its type one of IMAGE_TYPES (415); at most MAX_BODY
    bytes (:class:`BodyLimit`: a 413 while it arrives)."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in IMAGE_TYPES:
        raise HTTPException(415, f"send the image as one of {', '.join(IMAGE_TYPES)}, not {kind or 'nothing'}")
    return await request.body()


def gridworld_state(method: str, reward: float, gamma: float, steps: int) -> dict[str, Any]:
    from tiefnet.rl.gridworld import lecture_gridworld
    from tiefnet.rl.mdp import policy_iteration, value_iteration

    world = lecture_gridworld(reward=reward, gamma=gamma)
    try:
        if method == "value":
            solution = value_iteration(world.mdp, epsilon=1e-9, max_sweeps=steps)
        else:
            solution = policy_iteration(world.mdp, max_iterations=steps)
    except (TiefnetError, np.linalg.LinAlgError) as error:
        raise HTTPException(422, f"{method} iteration with R = {reward:g}, gamma = {gamma:g}: {error}") from None
    U = [float(u) if math.isfinite(u) else None for u in solution.U]
    if None in U:
        raise HTTPException(422, f"R = {reward:g} with gamma = {gamma:g} has no finite utilities")
    return {"method": method, "reward": reward, "gamma": gamma, "steps": int(solution.iterations),
            "converged": bool(solution.converged), "width": world.width, "height": world.height,
            "cells": [list(c) for c in world.cells], "utilities": U, "policy": world.arrows(solution.pi)}


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("tiefnet")
    except PackageNotFoundError:
        return "0"
