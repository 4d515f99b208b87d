"""The library core: layers, containers, costs and regularisers (lecture ch. 2-5)."""
from tiefnet.nn.activations import ACTIVATIONS, ReLU, Sigmoid, Softmax, Step, Tanh
from tiefnet.nn.attention import SoftAttention
from tiefnet.nn.cells import LSTMCell, RNNCell
from tiefnet.nn.containers import Parallel, Residual, Sequential, Taps
from tiefnet.nn.conv import Conv2d
from tiefnet.nn.dense import Dense
from tiefnet.nn.dropout import Dropout
from tiefnet.nn.embedding import Embedding
from tiefnet.nn.layer import Container, Layer, Param
from tiefnet.nn.losses import LOSSES, CrossEntropy, LogLikelihood, Loss, PolicyValue, Quadratic
from tiefnet.nn.norm import BatchNorm1d, BatchNorm2d, InstanceNorm2d
from tiefnet.nn.pad import ReflectionPad2d, ZeroPad2d
from tiefnet.nn.pool import L2Pool2d, MaxPool2d
from tiefnet.nn.recurrent import LSTM, RNN
from tiefnet.nn.registry import LAYER_TYPES, layer_from_config, layer_to_config, register
from tiefnet.nn.regularizers import L1, L2, REGULARIZERS
from tiefnet.nn.reshape import Flatten, Reshape, TimeFlatten
from tiefnet.nn.upsample import Upsample

__all__ = [
    "ACTIVATIONS", "LAYER_TYPES", "LOSSES", "REGULARIZERS", "Container", "Conv2d", "CrossEntropy", "Dense", "Dropout",
    "Embedding", "Flatten", "L1", "L2", "L2Pool2d", "LSTM", "Layer", "LogLikelihood", "Loss", "MaxPool2d", "Parallel",
    "Param", "PolicyValue", "Quadratic", "RNN", "ReLU", "Reshape", "Residual", "Sequential", "Sigmoid", "Softmax", "Step", "Tanh",
    "Taps", "TimeFlatten", "layer_from_config", "layer_to_config", "register",
    "LSTMCell", "RNNCell", "SoftAttention",
    "BatchNorm1d", "BatchNorm2d", "InstanceNorm2d", "ReflectionPad2d", "Upsample", "ZeroPad2d",
]
