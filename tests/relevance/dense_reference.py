"""Independent float64 references: layers as explicit matrices, rules as explicit formulas.

Nothing here calls Keras or the engine: a layer becomes its Toeplitz matrix ``W`` (n_in ×
n_out, channel-last C order) built by index arithmetic, and a rule becomes its ``q_ij``
matrix, ``R_i = Σ_j q_ij / (Σ_i' q_i'j + extra_j) R_j``.
"""

import numpy as np


def _geometry(in_spatial, window, strides, padding):
    if padding == "valid":
        out = [(n - k) // s + 1 for n, k, s in zip(in_spatial, window, strides)]
        pad = [0] * len(in_spatial)
    else:
        out = [-(-n // s) for n, s in zip(in_spatial, strides)]
        pad = [max((o - 1) * s + k - n, 0) // 2 for o, n, k, s in zip(out, in_spatial, window, strides)]
    return out, pad


def conv_matrix(kernel, in_spatial, strides, padding):
    """Toeplitz matrix of an N-D convolution (cross-correlation, TF 'same' convention)."""
    nd = len(in_spatial)
    window, (cin, cout) = kernel.shape[:nd], kernel.shape[nd:]
    out, pad = _geometry(in_spatial, window, strides, padding)
    w = np.zeros((int(np.prod(in_spatial)) * cin, int(np.prod(out)) * cout))
    for o in np.ndindex(*out):
        cols = np.ravel_multi_index(o, out) * cout + np.arange(cout)
        for k in np.ndindex(*window):
            p = [oi * s + ki - pi for oi, s, ki, pi in zip(o, strides, k, pad)]
            if all(0 <= pi < n for pi, n in zip(p, in_spatial)):
                rows = np.ravel_multi_index(p, in_spatial) * cin + np.arange(cin)
                w[np.ix_(rows, cols)] += kernel[k]
    return w, out


def avg_pool_matrix(in_spatial, channels, window, strides, padding):
    """Average pooling as a matrix (the 'same' average counts only real inputs)."""
    out, pad = _geometry(in_spatial, window, strides, padding)
    w = np.zeros((int(np.prod(in_spatial)) * channels, int(np.prod(out)) * channels))
    for o in np.ndindex(*out):
        inside = []
        for k in np.ndindex(*window):
            p = [oi * s + ki - pi for oi, s, ki, pi in zip(o, strides, k, pad)]
            if all(0 <= pi < n for pi, n in zip(p, in_spatial)):
                inside.append(np.ravel_multi_index(p, in_spatial))
        for c in range(channels):
            w[np.array(inside) * channels + c, np.ravel_multi_index(o, out) * channels + c] = 1.0 / len(inside)
    return w, out


def global_avg_matrix(in_spatial, channels):
    n = int(np.prod(in_spatial))
    return np.kron(np.ones((n, 1)) / n, np.eye(channels))


def max_pool_wta(a, window, strides, relevance):
    """Winner-take-all for valid max pooling on one (spatial..., channels) input."""
    in_spatial, channels = a.shape[:-1], a.shape[-1]
    out, _ = _geometry(in_spatial, window, strides, "valid")
    r_in = np.zeros_like(a, dtype=np.float64)
    for o in np.ndindex(*out):
        for c in range(channels):
            best, best_p = -np.inf, None
            for k in np.ndindex(*window):
                p = tuple(oi * s + ki for oi, s, ki in zip(o, strides, k))
                if a[p + (c,)] > best:
                    best, best_p = a[p + (c,)], p
            r_in[best_p + (c,)] += relevance[o + (c,)]
    return r_in


def rule_q(rule, w, b, a, low=None, high=None, gamma=0.25):
    """``q`` matrix (n_in × n_out) and the extra denominator term for one input vector."""
    wp, wn = np.maximum(w, 0), np.minimum(w, 0)
    z = a[:, None] * w
    if rule in ("lrp0", "epsilon"):
        return z, b
    if rule == "gamma":
        g = gamma
        return a[:, None] * (w + g * wp), b + g * np.maximum(b, 0)
    if rule == "zplus":
        return np.maximum(z, 0), 0.0
    if rule == "zbox":
        return z - low[:, None] * wp - high[:, None] * wn, 0.0
    if rule == "w2":
        return w**2, 0.0
    if rule == "flat":
        return (w != 0).astype(float), 0.0
    raise KeyError(rule)


def _shares(q, denominator):
    """``q / denominator`` column-wise; a zero column passes nothing (seed 000, Prop. 1–3)."""
    safe = np.where(denominator == 0, 1.0, denominator)
    return np.where(denominator == 0, 0.0, q / safe)


def rule_reference(rule, w, b, a, relevance, low=None, high=None, epsilon=0.1, alpha=2.0, beta=1.0,
                   gamma=0.25):
    """Input relevance of one input vector ``a`` (n_in,) for output relevance (n_out,)."""
    if rule == "alpha_beta":
        z = a[:, None] * w
        pos, neg = np.maximum(z, 0), np.minimum(z, 0)
        return alpha * _shares(pos, pos.sum(0)) @ relevance - beta * _shares(neg, neg.sum(0)) @ relevance
    q, extra = rule_q(rule, w, b, a, low, high, gamma)
    denominator = q.sum(0) + extra
    if rule == "epsilon":
        denominator = denominator + epsilon * np.where(denominator >= 0, 1.0, -1.0)
    return _shares(q, denominator) @ relevance



def _roundoff(q, extra, relevance, unit, epsilon=0.0, parts=None):
    """First-order round-off bound, per input, of ``R_i = Σ_j q_ij R_j / d_j`` computed in a float
    type of unit round-off ``unit`` from exact inputs (see :func:`rule_roundoff_bound`);
    ``parts``: ``Σ`` of the magnitudes of the products that make up each ``q_ij`` (default ``|q|``)."""
    parts = np.abs(q) if parts is None else parts
    denominator = q.sum(0) + extra
    magnitude = parts.sum(0) + np.abs(extra)
    if epsilon:
        denominator = denominator + epsilon * np.where(denominator >= 0, 1.0, -1.0)
        magnitude = magnitude + epsilon
    kappa = _shares(magnitude, np.abs(denominator))  # condition number of each denominator's sum
    n = 3 * (parts != 0).sum(0) + 2  # terms per denominator: up to 3 per input (zB), bias, ε
    terms = _shares(parts, np.abs(denominator)) * np.abs(relevance)  # |q_ij R_j / d_j|, by parts
    m = 3 * (parts != 0).sum(1)  # terms per input's sum
    return unit * (terms * (n * kappa + 4)).sum(1) + unit * m * terms.sum(1)


def rule_roundoff_bound(rule, w, b, a, relevance, low=None, high=None, epsilon=0.1, alpha=2.0, beta=1.0,
                        gamma=0.25, unit=np.finfo(np.float32).eps / 2):
    """A bound on the round-off of :func:`rule_reference` computed in float32, per input element.

    To first order, a sum of n terms carries an error of at most ``n·u·Σ|terms|`` (``u``: the
    unit round-off), i.e. a relative error ``n·u·κ`` with the sum's condition number
    ``κ = Σ|terms| / |Σ terms|``. The denominator ``d_j`` of every output is such a sum, so each
    share ``q_ij R_j / d_j`` is off by ``(n_j κ_j + 4)·u`` relative (4: the modified kernel, the
    product, the division and the multiplication by ``a_i``), and summing the ``m_i`` shares of an
    input adds ``m_i·u·Σ_j |shares|``. A near-zero denominator has a large ``κ_j``: that is where
    float32 loses digits, and the bound grows with it.
    """
    if rule == "alpha_beta":
        z = a[:, None] * w
        pos, neg = np.maximum(z, 0), np.minimum(z, 0)
        return alpha * _roundoff(pos, 0.0, relevance, unit) + beta * _roundoff(neg, 0.0, relevance, unit)
    q, extra = rule_q(rule, w, b, a, low, high, gamma)
    parts = None
    if rule == "zbox":  # a w − l w⁺ − h w⁻: three products per connection
        parts = np.abs(a[:, None] * w) + np.abs(low[:, None] * np.maximum(w, 0)) + np.abs(high[:, None] * np.minimum(w, 0))
    return _roundoff(q, extra, relevance, unit, epsilon if rule == "epsilon" else 0.0, parts)
