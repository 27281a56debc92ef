"""An ensemble training run (``trainer.ensemble=N``): its members' folders and its summary.

With ``trainer.ensemble=N`` (N >= 2) the training stage trains N members seeded ``seed``,
``seed + 1``, … ``seed + N - 1``, each a complete training run of its own in
``members/<k>_seed<s>/`` (``.hydra/config.yaml`` with the member's seed, ``run.json``, and every
file a single run writes), so that any stage opens a member alone. The run directory then gets

* ``ensemble.json`` (:data:`~brainage.ensemble.members.ENSEMBLE_FILE`): the members' relative
  paths, seeds and test scores, whether they share one test split, and the ensemble's own test
  score on it (mean softmax probabilities, or mean predicted age, as ``make predict
  train_dirs=…`` combines them; :mod:`brainage.ensemble.combine`);
* ``metrics.json`` (last: it marks the run finished): the ensemble's test score against the
  median and the best member's.

The members share the test split when ``data.split_seed`` is fixed (or one cohort is handed to
:func:`brainage.train.train`); when it follows the seed (``split_seed: ${seed}`` or null) each
member has its own split, a member's test subjects are others' training subjects, and no
ensemble test score is given. The stage opens the whole run as one ensemble:
``train_dirs=[<run>]`` (:func:`brainage.ensemble.members.open_ensemble`).
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from brainage.ensemble.members import ENSEMBLE_FILE, MEMBERS_DIR
from brainage.ensemble.test_score import combined_test_scores
from brainage.runs import RunRecord
from brainage.runs.record import FAILED, FINISHED, INTERRUPTED
from brainage.training.checkpoint import resume_command
from brainage.training.outputs import json_safe

log = logging.getLogger(__name__)

# Each task's test score in a member's metrics.json, and whether more is better.
SCORES = {"classification": ("test_accuracy", True), "regression": ("mae", False)}
_UNSHARED = ("the members were tested on different splits (data.split_seed follows the seed), so "
             "each one's test subjects are other members' training subjects and the ensemble has "
             "no honest test score; fix data.split_seed=<n> for one shared split")


def member_dir(run_dir: Path, member: int, seed: int) -> Path:
    """``<run_dir>/members/<member>_seed<seed>``."""
    return Path(run_dir) / MEMBERS_DIR / f"{member}_seed{seed}"


def is_ensemble_config(cfg) -> bool:
    """Whether the composed ``train`` config asks for an ensemble (``trainer.ensemble`` >= 2)."""
    from omegaconf import OmegaConf

    members = OmegaConf.select(cfg, "trainer.ensemble", default=None)
    return isinstance(members, int) and not isinstance(members, bool) and members >= 2


def resume_members_command(run_dir) -> str:
    """How an interrupted ensemble run goes on: member by member."""
    return (f"{resume_command(Path(run_dir) / MEMBERS_DIR / '<k>_seed<s>')} for the interrupted "
            f"member (the finished ones: train_dirs=[{Path(run_dir) / MEMBERS_DIR}])")


def start_member(directory: Path, config) -> RunRecord:
    """Make ``directory`` a run directory of its own before its member trains: ``.hydra/
    config.yaml`` (the member's config, which ``trainer.resume`` continues) and ``run.json``
    (running)."""
    from omegaconf import OmegaConf

    (directory / ".hydra").mkdir(parents=True, exist_ok=True)
    (directory / ".hydra" / "config.yaml").write_text(OmegaConf.to_yaml(config))
    record = RunRecord("train", continue_with=resume_command(directory))
    record.save(directory)
    return record


def end_member(directory: Path, record: RunRecord, error: BaseException | None) -> None:
    """Record in the member's ``run.json`` how it ended: finished, failed or interrupted."""
    if error is None:
        record.end(directory, FINISHED)
    elif isinstance(error, KeyboardInterrupt):
        record.end(directory, INTERRUPTED, "Ctrl-C or SIGTERM")
    else:
        record.end(directory, FAILED, f"{type(error).__name__}: {error}")


def member_line(member: int, n_members: int, seed: int, metrics: dict, directory: Path) -> str:
    """The progress line of a finished member: ``member 1/5 (seed 42): test accuracy 66.7 %``."""
    task = metrics.get("task", "classification")
    key, _ = SCORES[task]
    value = metrics.get(key)
    score = "-" if value is None else (f"test accuracy {100 * value:.1f} %" if task ==
                                       "classification" else f"test MAE {value:.2f} y")
    return f"ensemble member {member + 1}/{n_members} (seed {seed}): {score} — {directory}"


def summarise_ensemble(run_dir: Path, members: list[tuple[Path, int, dict]]) -> dict:
    """Write ``ensemble.json``, then ``metrics.json``, from the finished members.

    Parameters
    ----------
    members : list of (directory, seed, metrics)
        Each member's run directory, seed and ``metrics.json`` contents, in member order.

    Returns
    -------
    dict
        The contents of ``metrics.json``.
    """
    run_dir = Path(run_dir)
    task = members[0][2].get("task", "classification")
    key, higher = SCORES[task]
    scores = [m.get(key) for _, _, m in members]
    shared = _shared_test_split([d for d, _, _ in members])
    own = _ensemble_score([d for d, _, _ in members], key, task) if shared else None
    record = {
        "n_members": len(members), "task": task, "score": key, "higher_is_better": higher,
        "members": [{"path": d.relative_to(run_dir).as_posix(), "seed": seed, key: score}
                    for (d, seed, _), score in zip(members, scores)],
        "seeds": [seed for _, seed, _ in members],
        "shared_test_split": shared,
        "ensemble": own,
        "note": None if shared else _UNSHARED,
    }
    (run_dir / ENSEMBLE_FILE).write_text(json.dumps(json_safe(record), indent=2) + "\n")
    metrics = _ensemble_metrics(record, scores, key, higher)
    log.info("%s", _summary_line(metrics, run_dir))
    # metrics.json last: its presence marks a finished run.
    (run_dir / "metrics.json").write_text(json.dumps(json_safe(metrics), indent=2) + "\n")
    return metrics


def _ensemble_metrics(record: dict, scores: list, key: str, higher: bool) -> dict:
    """The short ``metrics.json``: the ensemble's test score against the median and best member."""
    known = np.asarray([s for s in scores if s is not None], dtype=float)
    best = None
    if len(known):
        best_index = max(range(len(scores)), key=lambda i: _rank(scores[i], higher))
        best = {"path": record["members"][best_index]["path"], key: scores[best_index]}
    own = record["ensemble"]
    return {"task": record["task"], "ensemble": True, "n_members": record["n_members"],
            "score": key, "higher_is_better": higher,
            "shared_test_split": record["shared_test_split"],
            "ensemble_test": own[key] if own else None,
            "median_member": float(np.median(known)) if len(known) else None,
            "best_member": best, "note": record["note"]}


def _rank(score, higher: bool) -> float:
    if score is None:
        return -np.inf
    return score if higher else -score


def _shared_test_split(dirs: list[Path]) -> bool:
    """Whether every member's ``split.csv`` has the same test subjects."""
    import pandas as pd

    def tested(directory):
        split = pd.read_csv(directory / "split.csv", dtype={"subject_id": str})
        return set(split.loc[split["split"] == "test", "subject_id"])

    first, *others = (tested(d) for d in dirs)
    return all(other == first for other in others)


def _ensemble_score(dirs: list[Path], key: str, task: str) -> dict:
    """The ensemble's test score (``key``) from its members' ``test_predictions.csv``
    (:func:`~brainage.ensemble.test_score.combined_test_scores`) and its test subjects' count."""
    scores = combined_test_scores(dirs, task == "regression")
    return {key: scores[key], "n_test": scores["test_n"]}


def _summary_line(metrics: dict, run_dir: Path) -> str:
    key = metrics["score"]
    name = "test accuracy" if key == "test_accuracy" else "test MAE"

    def shown(value):
        if value is None:
            return "-"
        return f"{100 * value:.1f} %" if key == "test_accuracy" else f"{value:.2f} y"

    best = metrics["best_member"]
    return (f"ensemble of {metrics['n_members']} ({run_dir}): {name} {shown(metrics['ensemble_test'])}"
            f" (median member {shown(metrics['median_member'])}, best member "
            f"{shown(best and best[key])})"
            + ("" if metrics["shared_test_split"] else f"; {metrics['note']}"))
