"""tiefnet: deep learning from first principles, after the lecture notes (Nielsen, ch. 2 ff.).

    import tiefnet as tn
    net = tn.Sequential(tn.Dense(784, 30), tn.Sigmoid(), tn.Dense(30, 10), tn.Sigmoid())
    tn.fit(net, tn.Quadratic(), tn.SGD(eta=3.0), (x, labels), epochs=30, batch_size=10)
"""
from tiefnet.checkpoint import load_model, save_model
from tiefnet.nn import (
    L1, L2, CrossEntropy, Dense, Dropout, Layer, LogLikelihood, Loss, Quadratic, ReLU, Sequential, Sigmoid,
    Softmax, Step, Tanh,
)
from tiefnet.optim import SGD, Adam, Momentum, ReduceOnPlateau
from tiefnet.train import History, evaluate, fit, predict

__version__ = "0.1.0"

__all__ = [
    "L1", "L2", "SGD", "Adam", "CrossEntropy", "Dense", "Dropout", "History", "Layer", "LogLikelihood", "Loss",
    "Momentum", "Quadratic", "ReLU", "ReduceOnPlateau", "Sequential", "Sigmoid", "Softmax", "Step", "Tanh",
    "evaluate", "fit", "load_model", "predict", "save_model",
]
