"""The timed network (random weights) with its compiled forward pass and one analyzer per method."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from brainage.benchmark.settings import BenchSettings
from brainage.errors import BrainageError, ModelError

# The seed's three age bins. Weights are random, so only the count of logits matters.
SEED_CLASSES = 3
# Always timed: their ratio DTD ÷ gradient is the headline number.
REQUIRED_METHODS = ("gradient", "dtd")


@dataclass(frozen=True)
class BenchSetup:
    """Everything a row of the benchmark times: built once, used for every batch size."""

    settings: BenchSettings
    model: object
    forward: Callable
    analyzers: dict
    methods: tuple[str, ...]

    @property
    def n_classes(self) -> int:
        return int(self.model.output_shape[-1])


def build_network(settings: BenchSettings):
    """The ``model`` config group's network for ``settings.shape`` volumes, freshly initialised."""
    from omegaconf import OmegaConf

    from brainage.model import model_from_config

    n_classes = None if settings.model.get("n_classes") is not None else SEED_CLASSES
    try:
        return model_from_config(OmegaConf.create(settings.model), settings.shape,
                                 n_classes=n_classes)
    except ValueError as err:
        raise ModelError(f"bench: cannot build the network for shape={list(settings.shape)}: {err}") from None


def timed_methods(settings: BenchSettings) -> tuple[str, ...]:
    """The explainers to time: the configured ones (all when null) with gradient and DTD first."""
    from brainage.relevance import METHODS

    methods = list(settings.methods or METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise BrainageError(f"bench: unknown methods {unknown}; known: {list(METHODS)}")
    for required in REQUIRED_METHODS:
        if required not in methods:
            methods.insert(0, required)
    return tuple(methods)


def method_params(settings: BenchSettings) -> dict[str, dict]:
    """Per-method parameters: Grad-CAM on the last block's second convolution, IG's steps."""
    last_block = len(settings.model["widths"])
    return {"gradcam": {"layer": f"block{last_block}_conv_b"},
            "integrated_gradients": {"steps": settings.ig_steps}}


def build_setup(settings: BenchSettings) -> BenchSetup:
    """Seed, build the network, compile its forward pass and make every analyzer."""
    import keras

    from brainage.relevance import compile_function, make_analyzer

    keras.utils.set_random_seed(settings.seed)
    model = build_network(settings)
    methods = timed_methods(settings)
    params = method_params(settings)
    jit = settings.jit_compile
    analyzers = {m: make_analyzer(model, m, jit_compile=jit, **params.get(m, {})) for m in methods}
    forward = compile_function(lambda v: model(v, training=False), True, jit)
    return BenchSetup(settings, model, forward, analyzers, methods)
