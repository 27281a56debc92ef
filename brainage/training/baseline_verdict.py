"""Whether a baseline beat the network on the run's own test split, said in plain words."""
from __future__ import annotations


def beating_baselines(metrics: dict, regression: bool) -> list:
    """``(name, score)`` of every baseline whose test score beats the network's on the same split:
    a lower MAE for a regression run, a higher accuracy for a classifier. Point estimates: the
    summary's intervals say how sure each difference is."""
    key, better = ("mae", float.__lt__) if regression else ("test_accuracy", float.__gt__)
    ours = metrics.get(key)
    if ours is None:
        return []
    return [(name, float(entry[key])) for name, entry in (metrics.get("baselines") or {}).items()
            if entry.get(key) is not None and better(float(entry[key]), float(ours))]


def baseline_verdict(metrics: dict, regression: bool, better_setting: str | None) -> str | None:
    """One paragraph for the run's summary when a baseline beat the network, naming the
    documented setting that does better (``trainer.baselines.better_setting``); None when the
    network is ahead of every baseline."""
    beaten = beating_baselines(metrics, regression)
    if not beaten:
        return None
    if regression:
        scores = ", ".join(f"{name} {score:.2f} y" for name, score in beaten)
        head = f"A baseline beat the network: test MAE {metrics['mae']:.2f} y against {scores}."
    else:
        scores = ", ".join(f"{name} {100 * score:.1f} %" for name, score in beaten)
        head = (f"A baseline beat the network: test accuracy {100 * metrics['test_accuracy']:.1f} % "
                f"against {scores}.")
    if better_setting:
        return f"{head} A documented setting that does better: {better_setting}"
    return f"{head} No documented setting of this experiment beats it yet."
