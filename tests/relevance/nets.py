"""Small Keras networks for the relevance tests (built here, not imported from the product)."""

import contextlib

import keras
import numpy as np


def taylor_net(input_shape=(22, 23, 21, 1), widths=(4, 6), dense_units=8, n_classes=3, seed=0):
    """The product's block structure (seed 000 §3.1) at test size.

    Per block: conv_a Conv3D(relu, valid) → conv_b Conv3D (linear) → BN → ReLU → AvgPool3D(2);
    then flatten → dense1 (relu) → logits.
    """
    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input(input_shape, name="input")
    for b, k in enumerate(widths, start=1):
        x = keras.layers.Conv3D(k, 3, activation="relu", name=f"block{b}_conv_a")(x)
        x = keras.layers.Conv3D(k, 3, name=f"block{b}_conv_b")(x)
        x = keras.layers.BatchNormalization(name=f"block{b}_bn")(x)
        x = keras.layers.ReLU(name=f"block{b}_relu")(x)
        x = keras.layers.AveragePooling3D(2, name=f"block{b}_pool")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(dense_units, activation="relu", name="dense1")(x)
    outputs = keras.layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="taylor_net")


def randomize_batch_norm(model, rng, x=None, negative_gamma=False):
    """Give every BatchNormalization non-trivial parameters so it is not the identity.

    With ``x`` the moving statistics are calibrated on it, layer by layer, as training
    would (so activations neither die nor explode in tiny random nets); γ ∈ [0.5, 2]
    (every other one negated with ``negative_gamma``), β ∈ [−0.2, 0.2].
    """
    for layer in model.layers:
        if not isinstance(layer, keras.layers.BatchNormalization):
            continue
        n = layer.gamma.shape[0]
        gamma = rng.uniform(0.5, 2.0, n)
        if negative_gamma:
            gamma[::2] *= -1
        layer.gamma.assign(gamma.astype("float32"))
        layer.beta.assign(rng.uniform(-0.2, 0.2, n).astype("float32"))
        if x is None:
            layer.moving_mean.assign(rng.normal(0.0, 0.3, n).astype("float32"))
            layer.moving_variance.assign(rng.uniform(0.5, 2.0, n).astype("float32"))
        else:
            inputs = np.asarray(keras.Model(model.inputs[0], layer.input)(x))
            axes = tuple(range(inputs.ndim - 1))
            layer.moving_mean.assign(inputs.mean(axis=axes).astype("float32"))
            layer.moving_variance.assign(inputs.var(axis=axes).astype("float32") + 1e-6)
    return model


def positive_logit_bias(model, x, margin=1.0):
    """Shift the logits layer's bias so every logit is positive on ``x`` (DTD positivity)."""
    logits = np.asarray(model(x))
    layer = model.get_layer("logits")
    layer.bias.assign(layer.bias.numpy() - logits.min(axis=0) + margin)
    return model


def gm_volume(rng, shape, batch=2):
    """Grey-matter-like probabilities in [0, 1] with uneven shapes."""
    return rng.uniform(0.0, 1.0, (batch, *shape)).astype("float32")


def bn_free_copy(model):
    """The same network with every BN folded into its conv_b by hand."""
    x = inputs = keras.Input(model.input_shape[1:])
    for layer in model.layers[1:]:
        if isinstance(layer, keras.layers.BatchNormalization):
            continue
        clone = layer.__class__.from_config(layer.get_config())
        x = clone(x)
        weights = layer.get_weights()
        if layer.name.endswith("_conv_b"):
            bn = model.get_layer(layer.name.replace("_conv_b", "_bn"))
            gamma, beta, mean, var = (w.astype(np.float64) for w in bn.get_weights())
            scale = gamma / np.sqrt(var + bn.epsilon)
            weights = [weights[0] * scale, (weights[1] - mean) * scale + beta]
        clone.set_weights(weights)
    return keras.Model(inputs, x)


def small_chain(n_classes=4, input_shape=(9, 8, 1), seed=0):
    """A tiny chain with every supported kind of step, small enough for dense matrices.

    conv_a Conv2D(relu) → pool AvgPool2D(2) → conv_b Conv2D (linear) → bn → relu → flatten →
    dense1 (relu) → logits (``n_classes``).
    """
    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input(input_shape, name="input")
    x = keras.layers.Conv2D(3, 3, activation="relu", name="conv_a")(x)
    x = keras.layers.AveragePooling2D(2, name="pool")(x)
    x = keras.layers.Conv2D(4, 2, name="conv_b")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU(name="relu")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(6, activation="relu", name="dense1")(x)
    outputs = keras.layers.Dense(n_classes, name="logits")(x)
    return keras.Model(inputs, outputs, name="small_chain")


def trained_small_chain(rng, n_classes=4, n=48, epochs=20, seed=1):
    """:func:`small_chain` briefly trained on a learnable toy task (class = brightest quadrant
    band), with its training inputs."""
    model = small_chain(n_classes, seed=seed)
    x = rng.uniform(0.0, 1.0, (n, 9, 8, 1)).astype("float32")
    y = rng.integers(0, n_classes, n)
    for i, label in enumerate(y):  # a class-specific bright band the net can learn
        x[i, 2 * label:2 * label + 2] = np.clip(x[i, 2 * label:2 * label + 2] + 0.6, 0.0, 1.0)
    model.compile(optimizer=keras.optimizers.Adam(0.02),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x, y, epochs=epochs, batch_size=16, verbose=0)
    return model, x, y


@contextlib.contextmanager
def float64_policy():
    """Keras builds float64 layers inside (floatx and the dtype policy), restored on leaving."""
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    try:
        yield
    finally:
        keras.config.set_floatx(floatx)
        keras.config.set_dtype_policy(policy)


def float64_twin(model):
    """``model`` rebuilt with float64 layers and its weights upcast (exactly: the same numbers),
    so the engine explains it in float64 and a comparison with a float64 reference measures the
    rule, not float32 round-off (which a near-zero LRP denominator magnifies by its condition)."""
    def as_float64(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": "float64"})

    with float64_policy():
        twin = keras.models.clone_model(model, clone_function=as_float64)
    twin.set_weights([w.astype(np.float64) for w in model.get_weights()])
    assert all(w.dtype == np.float64 for w in twin.get_weights()) and twin.compute_dtype == "float64"
    return twin
