"""SmoothGrad (Smilkov, Thorat, Kim, Viégas & Wattenberg 2017) and SmoothGrad × input."""

from __future__ import annotations

import numpy as np
from keras import ops

from brainage.relevance.gradient_methods import GradientAnalyzer
from brainage.relevance.registry import register_method


@register_method("smoothgrad", order=14)
class SmoothGradAnalyzer(GradientAnalyzer):
    """Mean gradient over noisy copies of the input: ``(1/n) Σ_k ∂f/∂x (x + ε_k)``.

    ``ε_k ~ N(0, σ²)`` with ``σ = noise_level · (max x − min x)`` per input (the paper's noise
    level, 10–20 % recommended). The target (and contrast class) is chosen at the clean input
    and kept for every copy; ``outputs`` is the explained value at the clean input. The copies
    go through the network in batches of ``batch_size`` (copies of every input of the batch
    together), not one by one. The noise comes from ``numpy.random.default_rng(seed)``, drawn
    afresh for each :meth:`explain` call, so explaining the same batch twice gives the same maps.

    There is no conservation identity (``rel_error`` compares the map's sum with ``outputs``).

    Parameters
    ----------
    model : keras.Model
    noise_level : float
        Standard deviation of the noise as a fraction of each input's value range (≥ 0).
    samples : int
        Number of noisy copies per input (≥ 1).
    batch_size : int
        Noisy inputs per forward/backward pass (≥ 1; rounded to whole copies of the batch).
    seed : int
        Seed of the noise.
    times_input : bool
        Return ``x ⊙ mean gradient`` (SmoothGrad × input).
    compile, jit_compile, contrast
        See :class:`~brainage.relevance.Analyzer`.
    """

    supports_regions = True  # a region of a per-voxel output: its summed logits' gradient averaged

    def __init__(self, model, *, noise_level=0.15, samples=32, batch_size=16, seed=0,
                 times_input=False, compile=True, jit_compile=False, contrast=None):
        name = "smoothgrad_x_input" if times_input else "smoothgrad"
        if not float(noise_level) >= 0.0:
            raise ValueError(f"{name}: noise_level must be ≥ 0, got {noise_level}")
        for label, value in (("samples", samples), ("batch_size", batch_size)):
            if int(value) < 1:
                raise ValueError(f"{name}: {label} must be ≥ 1, got {value}")
        self.noise_level = float(noise_level)
        self.samples = int(samples)
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        super().__init__(model, times_input=False, compile=compile, jit_compile=jit_compile,
                         contrast=contrast)
        self.smooth_times_input = bool(times_input)
        self.method = name

    def __repr__(self):
        return (f"SmoothGradAnalyzer(noise_level={self.noise_level}, samples={self.samples}, "
                f"batch_size={self.batch_size}, seed={self.seed}, "
                f"times_input={self.smooth_times_input})")

    def noise(self, x: np.ndarray, per_pass: int | None = None):
        """The noise an :meth:`explain` call adds to ``x``: arrays ``(copies, *x.shape)`` of
        ``per_pass`` copies each (default: all ``samples`` at once), drawn in order from one
        generator, so the concatenation does not depend on ``per_pass``."""
        axes = tuple(range(1, x.ndim))
        sigma = self.noise_level * (x.max(axis=axes) - x.min(axis=axes))
        sigma = sigma.reshape((1, -1) + (1,) * (x.ndim - 1)).astype(self.dtype)
        rng = np.random.default_rng(self.seed)
        per_pass = self.samples if per_pass is None else per_pass
        for start in range(0, self.samples, per_pass):
            copies = min(per_pass, self.samples - start)
            # drawn in float32 whatever the engine's type: a seed gives the same noise in either
            yield rng.standard_normal((copies, *x.shape), dtype=np.float32).astype(self.dtype) * sigma

    def _run(self, x, classes, others, mode):
        graph = self._compiled(mode)
        at_x = {k: ops.convert_to_numpy(v) for k, v in graph(x, classes, others).items()}
        chosen, other = at_x["target"].astype(np.int32), at_x["other"].astype(np.int32)
        return self._smoothed(x, at_x, lambda noisy, repeat: graph(
            noisy, np.tile(chosen, (1, repeat)), np.tile(other, (1, repeat))))

    def _explain_region(self, x, target, contrast, output_mask):
        x, spec, classes, mask = self._region_inputs(x, target, contrast, output_mask)
        graph = self._compiled_region()
        at_x = {k: ops.convert_to_numpy(v) for k, v in graph(x, classes, mask).items()}
        smoothed = self._smoothed(x, at_x, lambda noisy, repeat: graph(
            noisy, np.tile(classes, (1, repeat)), np.tile(mask, (repeat,) + (1,) * (mask.ndim - 1))))
        return self._assemble(smoothed, spec)

    def _smoothed(self, x, at_x, gradient):
        """``at_x`` with the maps averaged over :meth:`noise` copies; ``gradient(noisy, repeat)``
        takes ``repeat`` copies of the batch stacked copy-major."""
        per_pass = max(1, self.batch_size // x.shape[0])  # copies of the batch per pass
        total = np.zeros_like(at_x["maps"], dtype=np.float64)
        for copies in self.noise(x, per_pass):
            noisy = (x[None] + copies).reshape((-1,) + x.shape[1:])
            repeat = copies.shape[0]
            grads = ops.convert_to_numpy(gradient(noisy, repeat)["maps"])
            total += grads.reshape(at_x["maps"].shape[:1] + (repeat,) + x.shape).sum(axis=1, dtype=np.float64)
        maps = (total / self.samples).astype(x.dtype)
        if self.smooth_times_input:
            maps = maps * x[None]
        return {**at_x, "maps": maps}


@register_method("smoothgrad_x_input", order=15)
def _smoothgrad_x_input(model, **params) -> SmoothGradAnalyzer:
    """SmoothGrad × input (parameters: :class:`SmoothGradAnalyzer`'s but ``times_input``)."""
    return SmoothGradAnalyzer(model, times_input=True, **params)


__all__ = ["SmoothGradAnalyzer"]
