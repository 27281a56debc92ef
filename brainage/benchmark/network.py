"""The timed network with its compiled forward pass, one analyzer per method and the peer, if any.

The network is the ``model`` group's with random weights (:mod:`~brainage.benchmark.weights`
also randomises biases and BatchNormalization) or, with ``model_path``, a trained model.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from brainage.benchmark.settings import BenchSettings
from brainage.benchmark.weights import load_trained, randomize_statistics
from brainage.benchmark.zennit_peer import PEER_METHODS, ZennitPeer
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
    peer: object | None = None

    @property
    def n_classes(self) -> int:
        return int(self.model.output_shape[-1])

    @property
    def shape(self) -> tuple[int, int, int]:
        """The input volume ``(X, Y, Z)``: ``settings.shape``, or a trained model's."""
        return tuple(int(s) for s in self.model.input_shape[1:4])


def build_network(settings: BenchSettings):
    """The ``model`` config group's network for ``settings.shape`` volumes, freshly initialised."""
    from omegaconf import OmegaConf

    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.model import model_from_config

    n_classes = None if settings.model.get("n_classes") is not None else SEED_CLASSES
    try:
        return model_from_config(OmegaConf.create(settings.model), settings.shape,
                                 n_classes=n_classes)
    except ValueError as err:
        raise ModelError(f"bench: cannot build the network for shape={list(settings.shape)}: {err}") from None


def timed_methods(settings: BenchSettings) -> tuple[str, ...]:
    """The explainers to time: the configured ones (all when null) with gradient and DTD first,
    and the methods a peer runs too appended when there is a peer."""
    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import METHODS

    methods = list(settings.methods or METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise BrainageError(f"bench: unknown methods {unknown}; known: {list(METHODS)}")
    for required in REQUIRED_METHODS:
        if required not in methods:
            methods.insert(0, required)
    if settings.peer:
        methods += [m for m in PEER_METHODS if m not in methods]
    return tuple(methods)


def method_params(settings: BenchSettings, model) -> dict[str, dict]:
    """Per-method parameters: Grad-CAM on the last convolution (the last block's second), IG's steps."""
    import keras

    convolutions = [layer.name for layer in model.layers if isinstance(layer, keras.layers.Conv3D)]
    return {"gradcam": {"layer": convolutions[-1]},
            "integrated_gradients": {"steps": settings.ig_steps}}


def timed_model(settings: BenchSettings):
    """The trained model of ``model_path``, or the ``model`` group's network with random weights,
    biases and BatchNormalization statistics (seeded)."""
    import numpy as np


    if settings.model_path is not None:
        return load_trained(settings.model_path)
    model = build_network(settings)
    randomize_statistics(model, np.random.default_rng(settings.seed))
    return model


def build_peer(settings: BenchSettings, model, analyzers: dict):
    """The peer library's side of the comparison (None without ``peer``)."""
    if settings.peer is None:
        return None
    return ZennitPeer.build(model, analyzers, settings.threads, settings.peer_tolerance)


def build_setup(settings: BenchSettings) -> BenchSetup:
    """Seed, build the network, compile its forward pass, make every analyzer and the peer."""
    import keras

    # deferred: imports keras, which starts TensorFlow/JAX
    from brainage.relevance import compile_function, make_analyzer

    keras.utils.set_random_seed(settings.seed)
    model = timed_model(settings)
    methods = timed_methods(settings)
    params = method_params(settings, model)
    jit = settings.jit_compile
    analyzers = {m: make_analyzer(model, m, jit_compile=jit, **params.get(m, {})) for m in methods}
    forward = compile_function(lambda v: model(v, training=False), True, jit)
    peer = build_peer(settings, model, analyzers)
    return BenchSetup(settings, model, forward, analyzers, methods, peer)
