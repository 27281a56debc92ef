"""What the methods are scored on: the subjects, their inputs and logits, baseline, brain, ground truth."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from brainage.data.reference_images import mean_image as split_mean
from brainage.errors import EvaluateError
from brainage.faithfulness.ground_truth import GroundTruth, load_ground_truth
from brainage.faithfulness.perturbation import logit_function, make_baseline, patch_labels
from brainage.faithfulness.randomisation import cascade_groups


@dataclass(frozen=True)
class ScoringInputs:
    """The scored subjects and everything each method's maps are scored against.

    Attributes
    ----------
    rows : ndarray
        The subjects' rows in the cohort table.
    subjects : DataFrame
        ``subject_id, age, bin, predicted`` and ``logit_<k>`` for every class ``k``.
    x : ndarray (n, *crop, 1)
    logits : ndarray (n, n_classes)
        The trained network's logits (target modes resolve their classes from them).
    labels : ndarray (n,)
        The subjects' age bins.
    predict : callable
        ``predict(inputs) -> logits``, batched.
    baseline : ndarray, shaped like ``x``
        What a removed patch is replaced by.
    brain : ndarray of bool, the crop's shape
        Voxels of the training split's mean GM above ``localisation.brain_threshold``.
    truth : GroundTruth
    rand_pos : ndarray
        Positions (into ``x``) of the subjects re-explained in the randomisation cascade.
    class_pos : ndarray
        Positions of the subjects whose youngest- and oldest-class maps are compared.
    groups : list
        The cascade steps, top down: ``[(label, [layer names])]``.
    flag_after : str
        The cascade step at which an unchanged map is flagged.
    predicted : ndarray (n,) or None
        The model's predicted class where it is not the arg-max of ``logits`` (an ensemble's:
        the arg-max of its mean probabilities, while ``logits`` are its mean logits).
    """

    rows: np.ndarray
    subjects: pd.DataFrame
    x: np.ndarray
    logits: np.ndarray
    labels: np.ndarray
    predict: Callable
    baseline: np.ndarray
    brain: np.ndarray
    truth: GroundTruth
    rand_pos: np.ndarray
    class_pos: np.ndarray
    groups: list
    flag_after: str
    predicted: np.ndarray | None = None

    @property
    def subject_ids(self) -> np.ndarray:
        return self.subjects["subject_id"].to_numpy()

    def classes(self, mode) -> np.ndarray:
        """The class each subject's map is about in the target mode ``mode``."""
        return mode.classes(self.logits, self.labels, self.predicted)


def spread_over_bins(rows: np.ndarray, bins: np.ndarray, limit: int | None) -> np.ndarray:
    """At most ``limit`` of ``rows``, taken in turn from each age bin (in row order), sorted."""
    rows = np.asarray(rows)
    if limit is None or len(rows) <= limit:
        return rows
    queues = [list(rows[bins == k]) for k in np.unique(bins)]
    picked = []
    while len(picked) < limit:
        for queue in queues:
            if queue and len(picked) < limit:
                picked.append(queue.pop(0))
    return np.sort(np.asarray(picked))


def training_mean(prep) -> np.ndarray:
    """Mean cropped GM image of the training split (the perturbation baseline, and the brain mask)."""
    return split_mean(prep, prep.indices("train"))


def check_request(model, crop_shape: tuple, settings) -> tuple[list, str]:
    """Check the perturbation, cascade and Grad-CAM settings against the model, before slow work.

    Returns the cascade steps and the step at which an unchanged map is flagged.
    """
    p, r = settings.perturbation, settings.randomisation
    _, n_patches = patch_labels(crop_shape, p.patch)
    removed = p.steps * p.patches_per_step
    if removed > n_patches:
        raise EvaluateError(f"perturbation: {p.steps} steps × {p.patches_per_step} patches = "
                            f"{removed} patches, but the {tuple(crop_shape)} crop has only "
                            f"{n_patches} patches of {p.patch} voxels")
    groups = cascade_groups(model, r.granularity)
    steps = [g for g, _ in groups]
    flag_after = r.flag_after or groups[min(1, len(groups) - 1)][0]
    if r.enabled and flag_after not in steps:
        raise EvaluateError(f"randomisation.flag_after={flag_after!r} is not a cascade step; steps "
                            f"(top down): {steps}")
    step = settings.scorecard.randomisation_step
    if r.enabled and step not in steps:
        raise EvaluateError(f"scorecard.randomisation_step={step!r} is not a cascade step; steps "
                            f"(top down): {steps}")
    if settings.gradcam_layers.enabled:
        gradcam_layers(model, settings.gradcam_layers.layers)
    return groups, flag_after


def gradcam_layers(model, requested) -> list:
    """The conv layers to profile: ``requested``, else every block's ``conv_b``, else every conv."""
    conv = [layer.name for layer in model.layers if "Conv" in type(layer).__name__]
    layers = list(requested or [n for n in conv if n.endswith("conv_b")] or conv)
    unknown = [name for name in layers if name not in conv]
    if unknown:
        raise EvaluateError(f"gradcam_layers.layers: {unknown} are not conv layers of the model; "
                            f"conv layers: {conv}")
    return layers


def prepare_inputs(model, prep, rows: np.ndarray, settings, data_root) -> ScoringInputs:
    """Inputs, logits, baseline, brain mask and ground truth of the subjects ``rows``.

    ``settings`` is a :class:`~brainage.faithfulness.settings.ScoringSettings`; ``data_root`` the
    cohort folder whose ``ground_truth/`` is used unless ``localisation.ground_truth`` names one.
    """
    groups, flag_after = check_request(model, prep.input_shape[:-1], settings)
    x = np.asarray(prep.volumes[rows], dtype=np.float32)[..., None]
    y = prep.labels()[rows]
    predict = logit_function(model, settings.perturbation.batch_size)
    logits = predict(x)
    for mode in settings.targets:  # a class index out of range: refused before slow work
        mode.classes(logits, y)
    subjects = pd.DataFrame({"subject_id": prep.table["subject_id"].to_numpy()[rows],
                             "age": prep.table["age"].to_numpy()[rows], "bin": y,
                             "predicted": logits.argmax(axis=1),
                             **{f"logit_{k}": logits[:, k] for k in range(logits.shape[1])}})
    mean_image = training_mean(prep)
    brain = mean_image > settings.localisation.brain_threshold
    p = settings.perturbation
    baseline = make_baseline(x, p.baseline, mean_image, p.blur_sigma)
    truth = scored_ground_truth(settings.localisation, data_root, prep.grid, brain)
    return ScoringInputs(rows, subjects, x, logits, y, predict, baseline, brain, truth,
                         _spread_positions(rows, y, settings.randomisation.subjects),
                         _spread_positions(rows, y, settings.class_maps.subjects), groups,
                         flag_after)


def _spread_positions(rows: np.ndarray, bins: np.ndarray, n: int) -> np.ndarray:
    """Positions (into ``rows``) of at most ``n`` rows taken in turn from each age bin."""
    position = {int(row): i for i, row in enumerate(rows)}
    return np.array([position[int(row)] for row in spread_over_bins(rows, bins, min(n, len(rows)))])


def scored_ground_truth(settings, data_root, grid, brain: np.ndarray) -> GroundTruth:
    """The ground truth to localise (checked to reach into the brain), or why there is none."""
    if not settings.enabled:
        return GroundTruth(None, None, "localisation disabled (localisation.enabled=false)")
    truth = load_ground_truth(settings, data_root, grid)
    if truth.mask is not None and not (truth.mask & brain).any():
        raise EvaluateError(f"localisation: the ground-truth mask ({truth.note}) has no voxel "
                            "inside the brain mask; lower localisation.threshold or "
                            "localisation.brain_threshold")
    return truth
