"""An ensemble's members loaded as one model: every member's Keras model and its analyzers.

A method that names a reference image (``reference: youngest_mean``, integrated gradients'
``baseline``) takes it from each member's own training split, so a member's map is the map it
gives alone; :attr:`LoadedEnsemble.member_methods` keeps each member's resolved parameters, from
which an analyzer of a changed copy of the member (the evaluate stage's randomised weights) is
built again.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from brainage.data.reference_images import with_reference_images
from brainage.ensemble.members import Ensemble
from brainage.ensemble.one_model import EnsembleAnalyzer, EnsembleModel
from brainage.trained import TrainRun, load_analyzers, load_model


@dataclass(frozen=True)
class LoadedEnsemble:
    """The members predicting as one (``model``), explaining as one per method (``analyzers``),
    and each member's method parameters, references resolved (``member_methods``, member order)."""

    model: EnsembleModel
    analyzers: dict
    member_methods: tuple


def load_ensemble(ensemble: Ensemble, input_shape: tuple, methods: dict,
                  reference_cohort: Callable[[TrainRun], object]) -> LoadedEnsemble:
    """Every member's model (checked against ``input_shape``) and its analyzer of each of
    ``methods``; ``reference_cohort(train)`` is the cohort whose training split gives the member's
    named reference images."""
    models, analyzers, member_methods = [], [], []
    for member in ensemble.members:
        model = load_model(member.train, input_shape)
        resolved = with_reference_images(methods, reference_cohort(member.train))
        models.append(model)
        analyzers.append(load_analyzers(model, resolved))
        member_methods.append(resolved)
    per_method = {name: EnsembleAnalyzer(tuple(a[name] for a in analyzers), ensemble.is_regression)
                  for name in methods}
    return LoadedEnsemble(EnsembleModel(tuple(models), ensemble.is_regression), per_method,
                          tuple(member_methods))
