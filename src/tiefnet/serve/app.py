"""The FastAPI application of ``tiefnet serve``.

Every input is checked at the API: a body over :data:`MAX_BODY` bytes is refused (413) before it is
read whole, an image that is no image or shows no digit is a 400, pixels of the wrong number or
range a 422, an unknown model a 404; no request names a file. Models are loaded once, when the app
is made, and only read afterwards.
"""
from __future__ import annotations

import math
from importlib import resources
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from tiefnet.errors import TiefnetError
from tiefnet.serve.predictors import DigitPredictor

MAX_BODY = 2_000_000  # bytes of one request body (a drawing as PNG is a few kB)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp")
ModelName = Annotated[str, Path(max_length=100, pattern=r"^[A-Za-z0-9._-]+$")]


class Pixels(BaseModel):
    """A 28 × 28 digit as ``tiefnet predict`` makes it: 784 grey levels in [0, 1], white ink on black,
    row by row."""

    pixels: list[Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]] = Field(min_length=784,
                                                                                      max_length=784)


class Prediction(BaseModel):
    model: str
    kind: str
    digit: int
    probabilities: list[float]
    hidden: list[float] | None = None
    feature_maps: list[list[list[float]]] | None = None


class GridWorldState(BaseModel):
    method: str
    reward: float
    gamma: float
    steps: int
    converged: bool
    width: int
    height: int
    cells: list[list[int]]
    utilities: list[float]
    policy: list[str]


def create_app(models: dict[str, DigitPredictor]) -> FastAPI:
    """The app over these loaded models (name -> predictor)."""
    # no /docs or /redoc: FastAPI's pages for them load scripts from a CDN, and the page works offline
    app = FastAPI(title="tiefnet", summary="The lecture's models and experiments, on a local page",
                  version=_version(), docs_url=None, redoc_url=None)
    static = resources.files("tiefnet.serve") / "static"

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError):
        # where and what, without the input itself: a NaN or a huge value sent back would not even be JSON
        detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", ""))[:300]} for e in error.errors()[:20]]
        return JSONResponse({"detail": detail}, status_code=422)

    @app.middleware("http")
    async def limit_body(request: Request, call_next):
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > MAX_BODY):
            return JSONResponse({"detail": f"the body is larger than {MAX_BODY:,} bytes"}, status_code=413)
        return await call_next(request)

    @app.get("/", include_in_schema=False)
    def page():
        return FileResponse(str(static / "index.html"), media_type="text/html")

    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/api/models")
    def list_models() -> list[dict[str, str]]:
        """The digit models this server answers with: name and kind (dense or cnn)."""
        return [{"name": p.name, "kind": p.kind} for p in models.values()]

    def predictor(name: str) -> DigitPredictor:
        if name not in models:
            raise HTTPException(404, f"no model {name!r}; this server has {', '.join(models) or 'none'}")
        return models[name]

    # async: a prediction takes well under a millisecond, less than the hop to a worker thread would
    @app.post("/api/predict/{name}/pixels", responses={404: {"description": "no such model"}})
    async def predict_pixels(name: ModelName, body: Pixels) -> Prediction:
        """The digit in 784 prepared pixels (what the page's canvas gives after MNIST's preparation)."""
        return Prediction(**predictor(name).predict(np.asarray(body.pixels, dtype=np.float32)))

    @app.post("/api/predict/{name}/image", responses={400: {"description": "not an image of a digit"},
                                                      404: {"description": "no such model"},
                                                      413: {"description": "too large"},
                                                      415: {"description": "not an image type"}},
              openapi_extra={"requestBody": {"required": True, "content": {
                  t: {"schema": {"type": "string", "format": "binary"}} for t in IMAGE_TYPES}}})
    async def predict_image(name: ModelName, request: Request) -> Prediction:
        """The digit in a PNG/JPEG, prepared exactly as ``tiefnet predict`` prepares a file: grey levels,
        inverted if the border is light, cropped, scaled to 20 px, centre of mass to (14, 14)."""
        from tiefnet.data.image import digit_from_bytes

        chosen = predictor(name)
        kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if kind not in IMAGE_TYPES:
            raise HTTPException(415, f"send the image as one of {', '.join(IMAGE_TYPES)}, not {kind or 'nothing'}")
        data = bytearray()
        async for chunk in request.stream():
            data += chunk
            if len(data) > MAX_BODY:
                raise HTTPException(413, f"the body is larger than {MAX_BODY:,} bytes")
        try:
            x = digit_from_bytes(bytes(data), "the image")
        except TiefnetError as error:
            raise HTTPException(400, str(error)) from None
        return Prediction(**chosen.predict(x))

    @app.get("/api/gridworld")
    def gridworld(method: Annotated[str, Query(pattern="^(value|policy)$")] = "value",
                  reward: Annotated[float, Query(ge=-10.0, le=10.0, allow_inf_nan=False)] = -0.04,
                  gamma: Annotated[float, Query(gt=0.0, le=1.0, allow_inf_nan=False)] = 1.0,
                  steps: Annotated[int, Query(ge=1, le=10_000)] = 1) -> GridWorldState:
        """The lecture's 3 × 4 grid world (5.1) after ``steps`` sweeps of value iteration (from U = 0)
        or iterations of policy iteration: U per field and the greedy policy's arrows."""
        return GridWorldState(**gridworld_state(method, reward, gamma, steps))

    return app


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
