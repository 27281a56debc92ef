"""Independent float64 references for the layers only graphs have: explicit matrices by index
arithmetic (nothing here calls Keras or the engine), on channel-last C-order flat vectors."""

import numpy as np


def conv_transpose_matrix(kernel, in_spatial, strides, padding):
    """Matrix (n_in·c_in × n_out·c_out) of a transposed convolution; ``kernel`` in Keras layout
    (..., c_out, c_in). Input voxel ``i`` adds ``K[k]`` to output voxel ``i·s + k − crop``: the
    full output is ``(n − 1)·s + k``, 'same' keeps ``n·s`` of it, cropping ``(k − s) // 2`` first."""
    nd = len(in_spatial)
    window, (cout, cin) = kernel.shape[:nd], kernel.shape[nd:]
    full = [(n - 1) * s + k for n, s, k in zip(in_spatial, strides, window)]
    if padding == "valid":
        out, crop = full, [0] * nd
    else:
        out = [n * s for n, s in zip(in_spatial, strides)]
        crop = [(f - o) // 2 for f, o in zip(full, out)]
    w = np.zeros((int(np.prod(in_spatial)) * cin, int(np.prod(out)) * cout))
    for i in np.ndindex(*in_spatial):
        rows = np.ravel_multi_index(i, in_spatial) * cin + np.arange(cin)
        for k in np.ndindex(*window):
            o = [ii * s + ki - c for ii, s, ki, c in zip(i, strides, k, crop)]
            if all(0 <= oi < n for oi, n in zip(o, out)):
                cols = np.ravel_multi_index(o, out) * cout + np.arange(cout)
                w[np.ix_(rows, cols)] += kernel[k].T
    return w, out


def copy_matrix(in_spatial, channels, geometry):
    """0/1 matrix of a layer whose output voxel ``o`` copies input voxel ``source(o)`` (None: a
    zero), every channel alike; ``geometry`` is ``(out_spatial, source)`` from a ``*_map`` below."""
    out_spatial, source = geometry
    w = np.zeros((int(np.prod(in_spatial)) * channels, int(np.prod(out_spatial)) * channels))
    for o in np.ndindex(*out_spatial):
        p = source(o)
        if p is not None:
            rows = np.ravel_multi_index(p, in_spatial) * channels + np.arange(channels)
            cols = np.ravel_multi_index(o, out_spatial) * channels + np.arange(channels)
            w[rows, cols] = 1.0
    return w


def upsampling_map(in_spatial, size):
    """Nearest-neighbour upsampling: output ``o`` copies input ``o // size``."""
    return [n * s for n, s in zip(in_spatial, size)], lambda o: tuple(oi // s for oi, s in zip(o, size))


def cropping_map(in_spatial, cropping):
    """Cropping ``((before, after), ...)``: output ``o`` copies input ``o + before``."""
    out = [n - a - b for n, (a, b) in zip(in_spatial, cropping)]
    return out, lambda o: tuple(oi + a for oi, (a, _) in zip(o, cropping))


def padding_map(in_spatial, padding):
    """Zero padding ``((before, after), ...)``: output ``o`` copies input ``o − before`` or is 0."""
    out = [n + a + b for n, (a, b) in zip(in_spatial, padding)]

    def source(o):
        p = tuple(oi - a for oi, (a, _) in zip(o, padding))
        return p if all(0 <= pi < n for pi, n in zip(p, in_spatial)) else None

    return out, source


def sum_matrix(n, signs):
    """Add/Subtract of ``len(signs)`` inputs of size ``n`` as a matrix on their concatenation."""
    return np.concatenate([s * np.eye(n) for s in signs], axis=0)


def concat_matrix(spatial, channels):
    """Concatenate along channels of inputs with ``channels[k]`` channels, as a 0/1 matrix on the
    inputs flattened one after the other."""
    n, total = int(np.prod(spatial)), sum(channels)
    w = np.zeros((n * total, n * total))
    row = 0
    for k, c in enumerate(channels):
        offset = sum(channels[:k])
        for v in range(n):
            for ch in range(c):
                w[row, v * total + offset + ch] = 1.0
                row += 1
    return w
