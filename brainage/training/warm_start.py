"""Starting a training run from another run's weights (``trainer.init_from``).

The new model is built as usual; then each of its layers takes the weights of the source model's
layer of the same name and kind when every weight has the same shape (kernels, biases,
BatchNorm's scale and offset and its moving mean and variance). The other layers keep their fresh
initialisation: an output layer of another size (a classifier's three bins against a regressor's
one age), and a regressor's fixed ``age`` affine, which holds this run's own training ages' mean
and SD. A resumed run never comes here: its checkpoint holds the weights.
"""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path

from brainage.errors import TrainError
from brainage.runs import unfinished_reason

log = logging.getLogger(__name__)

SOURCE_HINT = "pass a finished training run directory (outputs/train/<date>_<time>) or a .keras file"


def source_model_path(init_from) -> Path:
    """The model file ``trainer.init_from`` names: a finished training run's ``model.keras``, or
    a ``.keras`` file (refused inside a run whose ``run.json`` says it did not finish).

    Raises
    ------
    TrainError
        No such path, a folder without ``model.keras``, another kind of file, or an unfinished run.
    """
    given = f"trainer.init_from={init_from}"
    path = Path(init_from)
    if not path.exists():
        raise TrainError(f"{given} does not exist; {SOURCE_HINT}")
    if path.is_dir():
        model, run_dir = path / "model.keras", path
        if not model.is_file():
            raise TrainError(f"{given} holds no model.keras (unfinished or not a training run; an "
                             "ensemble's models are in members/<k>_seed<s>/, a cross-validation's "
                             "in fold<i>/); pass a finished run or a .keras file")
    elif path.suffix == ".keras":
        model, run_dir = path, path.parent
    else:
        raise TrainError(f"{given} is neither a directory nor a .keras file; {SOURCE_HINT}")
    reason = unfinished_reason(run_dir)
    if reason is not None:
        raise TrainError(f"{given}: the training run {run_dir} did not finish, its run.json says "
                         f"{reason}; pass a finished run")
    return model


def warm_start(model, init_from) -> dict:
    """Copy into ``model`` the matching layers of the model ``init_from`` names.

    Returns
    -------
    dict
        What ``metrics.json`` records as ``init_from``: ``source`` (the model file), ``copied``
        and ``fresh`` (layer names, in the model's order).

    Raises
    ------
    TrainError
        A source refused by :func:`source_model_path`, unreadable, made for another input shape,
        or with no layer that matches.
    """
    path = source_model_path(init_from)
    source = _load_source(path, init_from)
    given, wanted = tuple(source.input_shape[1:]), tuple(model.input_shape[1:])
    if given != wanted:
        raise TrainError(f"trainer.init_from={init_from}: its model takes inputs {given}, this "
                         f"run's model {wanted}; start from a run trained on the same grid")
    copied, fresh = copy_matching_weights(source, model)
    if not copied:
        raise TrainError(f"trainer.init_from={init_from}: no layer of its model matches this "
                         "run's model in name and weight shapes; start from a run of the same "
                         "architecture and widths (model.architecture, model.widths)")
    log.info("initialised from %s: copied %s; fresh %s", path, ", ".join(copied),
             ", ".join(fresh) or "none")
    return {"source": str(path), "copied": copied, "fresh": fresh}


def copy_matching_weights(source, model) -> tuple[list, list]:
    """Set each trainable layer of ``model`` with weights to the weights of ``source``'s layer of
    the same name and class when all their shapes agree.

    Returns
    -------
    copied, fresh : list of str
        The names of ``model``'s layers with weights that were copied and that were not.
    """
    by_name = {layer.name: layer for layer in source.layers}
    copied, fresh = [], []
    for layer in model.layers:
        if not layer.weights:
            continue
        match = by_name.get(layer.name)
        # A non-trainable layer (a regressor's fixed age affine) holds this run's own constants.
        if layer.trainable and match is not None and _same_kind(match, layer):
            layer.set_weights(match.get_weights())
            copied.append(layer.name)
        else:
            fresh.append(layer.name)
    return copied, fresh


def _same_kind(source_layer, layer) -> bool:
    return (type(source_layer) is type(layer)
            and [tuple(w.shape) for w in source_layer.weights] == [tuple(w.shape) for w in layer.weights])


def _load_source(path: Path, init_from):
    import keras

    try:
        return keras.saving.load_model(path, compile=False)
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:
        raise TrainError(f"trainer.init_from={init_from}: cannot read {path} as a Keras model "
                         f"({type(exc).__name__}: {exc})") from exc
