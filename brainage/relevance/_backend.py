"""The only backend-specific code of the relevance engine.

Everything else is written with ``keras.ops``; this module supplies the two things
``keras.ops`` lacks: a vector-Jacobian product (``tf.GradientTape`` on TensorFlow,
``jax.vjp`` on JAX) and compilation (``tf.function`` / ``jax.jit``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import keras

SUPPORTED_BACKENDS = ("tensorflow", "jax")


def backend_name() -> str:
    """Name of the active Keras backend, checked to be one the engine supports."""
    name = keras.backend.backend()
    if name not in SUPPORTED_BACKENDS:
        raise RuntimeError(
            f"relevance engine: Keras backend {name!r} is not supported; "
            f"set KERAS_BACKEND to one of {SUPPORTED_BACKENDS}"
        )
    return name


def value_and_vjp(fn: Callable, primals: Sequence) -> tuple[object, Callable]:
    """Evaluate ``fn(*primals)`` and return it with its vector-Jacobian product.

    Parameters
    ----------
    fn : callable
        Function of one or more tensors returning one tensor.
    primals : sequence of tensors
        Points at which ``fn`` is evaluated and differentiated.

    Returns
    -------
    value : tensor
        ``fn(*primals)``.
    vjp : callable
        ``vjp(cotangent) -> tuple`` of one tensor per primal: ``Jᵀ cotangent``.
        It may be called several times (one call per explained class).
    """
    primals = tuple(keras.ops.convert_to_tensor(p) for p in primals)
    if backend_name() == "jax":
        import jax

        value, vjp_fn = jax.vjp(fn, *primals)
        return value, vjp_fn

    import tensorflow as tf

    # Persistent: the same forward is reused for every explained class.
    with tf.GradientTape(persistent=True, watch_accessed_variables=False) as tape:
        for p in primals:
            tape.watch(p)
        value = fn(*primals)

    def vjp_fn(cotangent):
        return tuple(
            tape.gradient(
                value,
                list(primals),
                output_gradients=cotangent,
                unconnected_gradients=tf.UnconnectedGradients.ZERO,
            )
        )

    return value, vjp_fn


def compile_function(fn: Callable, enabled: bool = True, jit_compile: bool | None = None) -> Callable:
    """Compile ``fn`` for the active backend.

    Parameters
    ----------
    fn : callable
        Function of tensors only (no Python-valued arguments).
    enabled : bool
        When False, ``fn`` runs eagerly (useful for debugging).
    jit_compile : bool or None
        TensorFlow only: whether ``tf.function`` uses XLA. JAX always compiles with XLA.
    """
    if not enabled:
        return fn
    if backend_name() == "jax":
        import jax

        return jax.jit(fn)
    import tensorflow as tf

    # No reduce_retracing: shapes must stay static (the class count unrolls a loop).
    return tf.function(fn, jit_compile=bool(jit_compile))
