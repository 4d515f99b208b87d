"""The library core: layers, costs and regularisers (lecture ch. 2)."""
from tiefnet.nn.activations import ACTIVATIONS, ReLU, Sigmoid, Softmax, Step, Tanh
from tiefnet.nn.conv import Conv2d
from tiefnet.nn.dense import Dense
from tiefnet.nn.dropout import Dropout
from tiefnet.nn.embedding import Embedding
from tiefnet.nn.layer import Layer, Sequential
from tiefnet.nn.pool import L2Pool2d, MaxPool2d
from tiefnet.nn.recurrent import LSTM, RNN, clip_gradients
from tiefnet.nn.reshape import Flatten, Reshape
from tiefnet.nn.losses import LOSSES, CrossEntropy, LogLikelihood, Loss, Quadratic
from tiefnet.nn.regularizers import L1, L2, REGULARIZERS

__all__ = [
    "ACTIVATIONS", "LOSSES", "REGULARIZERS", "Conv2d", "CrossEntropy", "Dense", "Dropout", "Embedding", "Flatten",
    "L2Pool2d", "LSTM", "MaxPool2d", "RNN", "Reshape", "clip_gradients", "L1", "L2", "Layer",
    "LogLikelihood", "Loss", "Quadratic", "ReLU", "Sequential", "Sigmoid", "Softmax", "Step", "Tanh",
]
