"""Errors tiefnet raises for bad input. The CLI prints each as one line, never a traceback."""


class TiefnetError(Exception):
    """Base class: a problem with the user's input, data, model files or settings."""


class ConfigError(TiefnetError, ValueError):
    """A setting out of range, or an architecture/option that does not parse."""


class DataError(TiefnetError):
    """A data file that is missing, truncated, corrupt or fails its checksum."""


class CheckpointError(TiefnetError):
    """A model folder with missing, mismatched or unreadable files."""


class ShapeError(TiefnetError, ValueError):
    """An array of the wrong shape at a model's boundary."""


class TrainingDiverged(TiefnetError):
    """The cost became NaN or infinite; training stopped, the last good checkpoint is kept."""
