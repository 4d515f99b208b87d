"""tiefnet: deep learning from first principles, after the lecture notes (Nielsen, ch. 2 ff.).

    import tiefnet as tn
    net = tn.Sequential(tn.Dense(784, 30), tn.Sigmoid(), tn.Dense(30, 10), tn.Sigmoid())
    tn.fit(net, tn.Quadratic(), tn.SGD(eta=3.0), (x, labels), epochs=30, batch_size=10)

The names below are imported on first use, so that ``import tiefnet.cli`` can report a bad
``TIEFNET_DEVICE`` (chosen when ``tiefnet.backend`` loads) as one clear error line.
"""
import importlib

__version__ = "0.1.0"

_HOMES = {
    "tiefnet.nn": ["L1", "L2", "BatchNorm1d", "BatchNorm2d", "Conv2d", "CrossEntropy", "Dense", "Dropout", "Embedding",
                   "Flatten", "InstanceNorm2d", "L2Pool2d", "Layer", "LSTM", "LSTMCell", "LogLikelihood", "Loss",
                   "MaxPool2d", "Parallel", "PolicyValue", "Quadratic", "ReflectionPad2d", "Residual", "RNN", "RNNCell", "ReLU",
                   "Reshape", "Sequential", "Sigmoid", "Softmax", "Step", "Tanh", "Taps", "TimeFlatten", "Upsample",
                   "ZeroPad2d"],
    "tiefnet.optim": ["SGD", "Adam", "Momentum", "RMSProp", "ReduceOnPlateau", "clip_gradients"],
    "tiefnet.train": ["History", "evaluate", "fit", "predict", "train_step"],
    "tiefnet.checkpoint": ["load_model", "read_model", "save_model"],
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_HOME_OF)


def __getattr__(name: str):
    if name in _HOME_OF:
        value = getattr(importlib.import_module(_HOME_OF[name]), name)
        globals()[name] = value  # the next look-up is a plain attribute
        return value
    raise AttributeError(f"module 'tiefnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
