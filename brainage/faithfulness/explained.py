"""Maps of a fixed class per input, with their conservation errors: what every phase explains.

The random floor (:data:`RANDOM`) is a Gaussian-noise map per subject, drawn from the subject's row
so that it is the same in every target mode and every run.
"""
from __future__ import annotations

import numpy as np

from brainage.faithfulness.conservation import computed_reference, conservation_errors

RANDOM = "random"  # name of the random-map floor


def explain_maps(analyzer, x: np.ndarray, target, classes: np.ndarray, batch_size: int,
                 identity: str | None = None, progress=None) -> tuple[np.ndarray, np.ndarray]:
    """Maps of a fixed class per input, and their conservation errors (NaN without an identity).

    ``target`` is a :class:`~brainage.faithfulness.targets.TargetMode` (its fixed-class form is
    explained, ``classes`` as the labels); ``progress(n)`` is called after each batch of ``n``.
    """
    mode = target.fixed_class_target
    # Integrated gradients reports f(x): its f(x_ref) is computed here. Reference analyzers
    # (DeepLIFT, reference-rooted DTD) report f(x) − f(x_ref) themselves.
    reference = computed_reference(analyzer, identity, mode, classes)
    maps, errors = [], []
    for i in range(0, len(x), batch_size):
        explanation = analyzer.explain(x[i:i + batch_size], target=mode,
                                       labels=classes[i:i + batch_size])
        maps.append(np.asarray(explanation.maps))
        part = None if reference is None else reference[i:i + batch_size]
        errors.append(conservation_errors(identity, explanation, part))
        if progress is not None:
            progress(len(maps[-1]))
    return np.concatenate(maps), np.concatenate(errors)
