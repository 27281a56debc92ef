"""What the explain run's maps say about their method's faithfulness: the newest evaluate verdict."""
from __future__ import annotations

from brainage.runs.scorecards import faithfulness_status
from brainage.trained import OpenedRun


def method_checks(settings, opened: OpenedRun) -> dict:
    """``{method: checks}`` for each map's ``descrip`` and the report: the verdict of the newest
    finished evaluate run of this training run under ``outputs_dir`` ("pass", "fails: …"), or
    "not scored" without one (:func:`brainage.runs.scorecards.faithfulness_status`)."""
    status, _ = faithfulness_status(opened.train.dir, settings.run.outputs_dir,
                                    list(settings.methods))
    return status
