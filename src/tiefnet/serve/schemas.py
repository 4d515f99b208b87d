"""What the API of ``tiefnet serve`` takes and gives (Pydantic models: each value checked, its range
stated, all of it in /openapi.json)."""
from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from tiefnet.serve.games import MAX_SIMULATIONS
from tiefnet.serve.text import MAX_LENGTH, MAX_PRIME


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


class TrainSettings(BaseModel):
    """A small tiefnet mnist run (dense): the page's choices, each within what a page should start."""

    hidden: str = Field("30", pattern=r"^([0-9]{1,3}(,[0-9]{1,3}){0,2})?$",
                        description="hidden layer sizes, comma separated (at most 3 layers of 1-300); '' none")
    activation: Literal["sigmoid", "tanh", "relu"] = "sigmoid"
    cost: Literal["quadratic", "cross-entropy", "log-likelihood"] = "quadratic"
    eta: float = Field(3.0, gt=0.0, le=100.0, allow_inf_nan=False)
    lmbda: float = Field(0.0, ge=0.0, le=100.0, allow_inf_nan=False)
    epochs: int = Field(10, ge=1, le=30)
    batch_size: int = Field(10, ge=1, le=1000)
    train_size: int = Field(5000, ge=100, le=10_000)
    seed: int = Field(0, ge=0, le=2**31 - 1)

    @field_validator("hidden")
    @classmethod
    def _sizes(cls, hidden: str) -> str:
        if any(not 1 <= int(n) <= 300 for n in hidden.split(",") if n):
            raise ValueError("each hidden layer has 1 to 300 neurons")
        return hidden

    @model_validator(mode="after")
    def _batch(self) -> "TrainSettings":
        if self.batch_size > self.train_size:
            raise ValueError(f"the mini-batch size m = {self.batch_size} is larger than the {self.train_size} images")
        return self


class Epoch(BaseModel):
    epoch: int
    seconds: float
    validation_accuracy: float
    validation_cost: float | None = None
    train_accuracy: float | None = None
    train_cost: float | None = None
    eta: float | None = None


class TrainingView(BaseModel):
    id: str
    settings: dict[str, Any]
    status: str
    error: str | None
    epochs: list[Epoch]


class Moves(BaseModel):
    """A game so far: the actions played from the start (as the page numbers them: a cell r * W + c,
    a Connect Four column, Go's pass = H * W)."""

    moves: list[Annotated[int, Field(ge=0, le=10_000)]] = Field(default_factory=list, max_length=1000)
    simulations: int | None = Field(None, ge=1, le=MAX_SIMULATIONS,
                                    description="MCTS simulations of the agent's move (default: its own)")
    seed: int = Field(0, ge=0, le=2**31 - 1)
    reply: bool = Field(True, description="the agent moves in the position reached (false: the position only)")


class Visit(BaseModel):
    action: int
    name: str
    N: int
    Q: float | None
    P: float


class AgentMove(BaseModel):
    action: int
    name: str
    nu: float
    value: float
    simulations: int
    visits: list[Visit]


class Position(BaseModel):
    game: str
    height: int
    width: int
    action_count: int
    board: list[list[int]]
    to_move: int
    moves: list[int]
    legal: list[int]
    pass_action: int | None
    terminal: bool
    result: str | None
    agent: AgentMove | None


class SampleRequest(BaseModel):
    prime: str = Field("", max_length=MAX_PRIME)
    length: int = Field(300, ge=1, le=MAX_LENGTH)
    temperature: float = Field(1.0, ge=0.05, le=5.0, allow_inf_nan=False)
    seed: int | None = Field(None, ge=0, le=2**31 - 1)


class Box(BaseModel):
    word: str
    x0: int
    y0: int
    x1: int
    y1: int


class Description(BaseModel):
    model: str
    kind: str
    words: list[str]
    caption: str
    attention: list[list[list[float]]] | None
    image: str
    references: list[str] | None = None
    boxes: list[Box] | None = None
