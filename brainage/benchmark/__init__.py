"""Benchmark of the relevance engine: time the forward pass, every explainer and a training step.

Modules, bottom up: ``settings`` (the checked ``bench`` config, no heavy imports),
``environment`` (backend and devices, chosen before Keras is imported), ``timing`` (warm-up,
repeats, peak memory), ``network`` (the timed network and its analyzers), ``training_step``,
``rows`` (the measures that fill one row per batch size), ``suite`` (all rows and the machine),
``table`` (``bench.md``). No module imports Keras, TensorFlow or JAX at import time: they are
imported inside functions, after :func:`~brainage.benchmark.environment.configure_environment`.
"""
