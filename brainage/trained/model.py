"""A finished training run's model, checked against its data, and the analyzers of the
explanation methods a stage selected."""
from __future__ import annotations

from brainage.errors import TrainedRunError
from brainage.trained.run import TrainRun


def method_configs(explainer) -> dict:
    """``{name: params}`` of the methods to run (``explainer=dtd`` or ``explainer=[dtd,gradcam]``)."""
    from omegaconf import OmegaConf

    methods = OmegaConf.to_container(explainer, resolve=True) if explainer else {}
    if not methods:
        raise TrainedRunError("no explanation method selected; use explainer=dtd or "
                              "explainer=[dtd,gradcam]")
    return methods


def load_model(train: TrainRun, input_shape: tuple):
    """The trained Keras model, checked against the data's input shape (a regressor saved with
    its head unfolded is folded: :func:`brainage.model.fold_age_head`)."""
    import keras

    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.model import fold_age_head

    model = fold_age_head(keras.saving.load_model(train.model_path, compile=False))
    expected = tuple(model.input_shape[1:])
    if expected != tuple(input_shape):
        raise TrainedRunError(f"model {train.model_path} expects inputs {expected} but the data "
                              f"are {tuple(input_shape)}; use the data the model was trained on")
    return model


def load_analyzers(model, methods: dict) -> dict:
    """One analyzer per method, ``{name: analyzer}``, from the methods' parameters."""
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import analyzer_from_config

    analyzers = {}
    for name, params in methods.items():
        try:
            analyzers[name] = analyzer_from_config(model, params)
        except (ValueError, KeyError, TypeError) as exc:
            raise TrainedRunError(f"explainer {name}: {exc}") from exc
    return analyzers
