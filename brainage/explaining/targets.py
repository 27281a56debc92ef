"""Which logit a map explains, and the tag its file carries.

A target is ``predicted`` (the arg-max class), ``true`` (the subject's age bin), a class index, or
``all`` (one map per class). The tag names the map file ``<subject>_<method>_<tag>.nii.gz``:
``predicted``, ``true`` or ``class<k>``. The first requested target is the *primary* one: group
maps, region tables and overlay figures use its map of each subject (for ``all``, the map of the
predicted class).
"""
from __future__ import annotations

from brainage.errors import ExplainError


def target_specs(targets) -> tuple:
    """The requested targets: ``predicted``, ``true``, ``all`` or class indices.

    YAML (and so Hydra's command line) reads a bare ``true`` as the boolean True, which is also
    the integer 1: it is taken back to the target ``true`` rather than silently becoming class 1.
    """
    specs = [targets] if isinstance(targets, (str, int)) else list(targets)
    out = []
    for spec in specs:
        if spec is True:
            spec = "true"
        if not (spec in ("predicted", "true", "all")
                or (isinstance(spec, int) and not isinstance(spec, bool))):
            raise ExplainError(f"target {spec!r}; expected predicted, true, all or a class index")
        out.append(spec)
    return tuple(out)


def check_target_classes(specs: tuple, n_classes: int, run_dir) -> None:
    """Class-index targets must be classes of the model (checked before any data is read).

    Raises
    ------
    ExplainError
        Naming the target and the classes the training run ``run_dir`` has.
    """
    for spec in specs:
        if isinstance(spec, int) and not isinstance(spec, bool) and not 0 <= spec < n_classes:
            raise ExplainError(f"target {spec}: no such class; the training run {run_dir} has "
                               f"{n_classes} classes, 0 to {n_classes - 1} (one per age bin)")


def map_tags(spec, n_classes: int) -> list[str]:
    """File tag of each class slice the analyzer returns for ``spec`` (one, or one per class)."""
    if spec == "all":
        return [f"class{k}" for k in range(n_classes)]
    return [class_tag(spec)]


def class_tag(spec) -> str:
    """``predicted``/``true`` as they are; a class index ``k`` as ``class<k>``."""
    return f"class{spec}" if isinstance(spec, int) else str(spec)


def primary_tag(spec, predicted: int) -> str:
    """Tag of a subject's primary map under the first target ``spec``."""
    return f"class{int(predicted)}" if spec == "all" else class_tag(spec)
