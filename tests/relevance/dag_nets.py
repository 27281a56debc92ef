"""Small branching Keras networks for the graph tests (built here, not imported from the product)."""

import keras
import numpy as np

L = keras.layers


def residual_concat_net(input_shape=(7, 8, 6, 1), n_classes=3, seed=0, batch_norm=True):
    """Residual block (fan-out of ``conv_a`` into ``conv_b`` and the Add), two concatenated
    branches, a Rescaling, a Subtract, global average and max pooling concatenated, logits."""
    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input(input_shape, name="input")
    a = L.Conv3D(4, 3, padding="same", activation="relu", name="conv_a")(x)
    b = L.Conv3D(4, 3, padding="same", name="conv_b")(a)
    if batch_norm:
        b = L.BatchNormalization(name="bn_b")(b)
    r = L.ReLU(name="res_relu")(L.Add(name="res_add")([a, b]))
    one = L.Conv3D(3, 1, activation="relu", name="branch_1x1")(r)
    three = L.Conv3D(2, 3, padding="same", activation="relu", name="branch_3x3")(r)
    cat = L.Concatenate(name="branch_cat")([one, three, r])
    half = L.Rescaling(0.5, name="half")(cat)
    pooled = L.AveragePooling3D(2, name="pool")(half)
    up = L.UpSampling3D(2, name="up")(pooled)
    crop = L.Cropping3D(((0, 1), (0, 0), (0, 0)), name="crop")(half)
    diff = L.ReLU(name="diff_relu")(L.Subtract(name="diff")([crop, up]))
    diff = L.ZeroPadding3D(((0, 1), (0, 0), (1, 0)), name="pad")(diff)
    g = L.Concatenate(name="global_cat")([L.GlobalAveragePooling3D(name="gap")(diff),
                                          L.GlobalMaxPooling3D(name="gmp")(half)])
    outputs = L.Dense(n_classes, name="logits")(L.Dense(6, activation="relu", name="dense1")(g))
    return keras.Model(inputs, outputs, name="residual_concat_net")


def tiny_unet(input_shape=(6, 8, 4, 1), n_classes=2, seed=0):
    """Encoder (two convs, max pooling), bottom conv, two decoders (Conv3DTranspose and
    UpSampling3D) concatenated with the skip, ZeroPadding + valid conv, Cropping, per-voxel logits."""
    keras.utils.set_random_seed(seed)
    x = inputs = keras.Input(input_shape, name="input")
    e = L.Conv3D(4, 3, padding="same", activation="relu", name="enc_conv1")(x)
    skip = L.Conv3D(4, 3, padding="same", activation="relu", name="enc_conv2")(e)
    bottom = L.Conv3D(6, 3, padding="same", activation="relu", name="bottom_conv")(L.MaxPooling3D(2, name="enc_pool")(skip))
    up_t = L.Conv3DTranspose(4, 2, strides=2, activation="relu", name="dec_transpose")(bottom)
    up_n = L.UpSampling3D(2, name="dec_upsample")(bottom)
    cat = L.Concatenate(name="skip_cat")([skip, up_t, up_n])
    d = L.Conv3D(4, 3, activation="relu", name="dec_conv")(L.ZeroPadding3D(1, name="dec_pad")(cat))
    d = L.Cropping3D(((1, 1), (1, 0), (0, 1)), name="dec_crop")(d)
    head = L.Conv3D(n_classes, 1, name="seg_logits")
    outputs = head(d)
    # Positive weights: every logit is a sum of positive contributions, so z⁺ finds no dead
    # output unit (a negative logit of a random head often has none, and DTD then leaks it).
    head.kernel.assign(np.abs(head.kernel.numpy()))
    return keras.Model(inputs, outputs, name="tiny_unet")


def calibrate_batch_norm(model, rng, x):
    """Moving statistics from ``x`` (activations neither die nor explode), γ ∈ [0.5, 2], β ≤ 0
    so a ReLU after it keeps units with relevance alive under z⁺."""
    for layer in model.layers:
        if isinstance(layer, L.BatchNormalization):
            inputs = np.asarray(keras.Model(model.inputs[0], layer.input)(x))
            axes = tuple(range(inputs.ndim - 1))
            n = layer.gamma.shape[0]
            layer.set_weights([rng.uniform(0.5, 2.0, n), -rng.uniform(0.0, 0.2, n),
                               inputs.mean(axis=axes), inputs.var(axis=axes) + 1e-6])
    return model
