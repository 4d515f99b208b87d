"""``tiefnet serve``: a local web page over trained models and the lecture's small experiments
(FastAPI + uvicorn, bound to 127.0.0.1, everything served offline by tiefnet itself)."""
from tiefnet.serve.app import create_app
from tiefnet.serve.models import find_models
from tiefnet.serve.predictors import DigitPredictor

__all__ = ["DigitPredictor", "create_app", "find_models"]
