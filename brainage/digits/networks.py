"""The seed's two digit classifiers (a dense network and a small CNN) and their training."""
from __future__ import annotations

from collections.abc import Sequence


def build_dense(input_shape=(28, 28, 1), hidden: Sequence[int] = (300, 100), n_classes: int = 10):
    """The seed's fully connected network: Flatten → Dense(300, relu) → Dense(100, relu) → Dense(10)."""
    import keras

    layers = [keras.Input(tuple(input_shape)), keras.layers.Flatten(name="flatten")]
    layers += [keras.layers.Dense(int(h), activation="relu", name=f"dense{i + 1}")
               for i, h in enumerate(hidden)]
    layers.append(keras.layers.Dense(n_classes, name="logits"))
    return keras.Sequential(layers, name="dense")


def build_cnn(input_shape=(28, 28, 1), filters: Sequence[int] = (32, 64, 64), pool_after: int = 2,
              dense_units: int = 64, n_classes: int = 10):
    """The seed's CNN: 3×3 ReLU convolutions, 2×2 average pooling after the first ``pool_after``."""
    import keras

    layers = [keras.Input(tuple(input_shape))]
    for i, f in enumerate(filters):
        layers.append(keras.layers.Conv2D(int(f), 3, activation="relu", name=f"conv{i + 1}"))
        if i < pool_after:
            layers.append(keras.layers.AveragePooling2D(2, name=f"pool{i + 1}"))
    layers += [keras.layers.Flatten(name="flatten")]
    if dense_units:
        layers.append(keras.layers.Dense(int(dense_units), activation="relu", name="dense1"))
    layers.append(keras.layers.Dense(n_classes, name="logits"))
    return keras.Sequential(layers, name="cnn")


def cnn_feature_size(size: int, n_convs: int, pool_after: int) -> int:
    """Edge of the CNN's last feature map for ``size × size`` digits (valid 3×3 convolutions,
    2×2 pooling after the first ``pool_after``); below 1 the network cannot be built."""
    for i in range(n_convs):
        size -= 2
        if i < pool_after:
            size //= 2
    return size


def train_network(model, x, y, epochs: int = 10, batch_size: int = 32, learning_rate: float = 1e-3):
    """Fit with Adam on the logits (softmax cross-entropy in the loss)."""
    import keras

    model.compile(optimizer=keras.optimizers.Adam(float(learning_rate)),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    model.fit(x, y, epochs=int(epochs), batch_size=int(batch_size), verbose=0, shuffle=True)
    return model
