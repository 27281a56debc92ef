"""Benchmark of the relevance engine: time the forward pass, every explainer and a training step.

Modules, bottom up: ``settings`` (the checked ``bench`` config, no heavy imports),
``environment`` (backend, devices and threads, chosen before Keras is imported), ``timing``
(warm-up, repeats, peak memory), ``weights`` (random biases and BatchNormalization statistics,
or a trained model), ``torch_network`` (the network rebuilt in PyTorch), ``zennit_rules`` (our
composites as Zennit hooks), ``zennit_peer`` (Zennit's times, maps and agreement),
``network`` (the timed network, its analyzers and the peer), ``training_step``, ``rows`` (the
measures that fill one row per batch size), ``suite`` (all rows and the machine), ``table``
(``bench.md``). No module imports Keras, TensorFlow, JAX or PyTorch at import time: they are
imported inside functions, after :func:`~brainage.benchmark.environment.configure_environment`
(PyTorch and Zennit first of all: see :func:`~brainage.benchmark.zennit_peer.import_zennit`).
"""
