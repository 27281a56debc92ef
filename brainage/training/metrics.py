"""Test metrics of a training run (``metrics.json``) and their summary next to the seed's figures."""
from __future__ import annotations

from brainage.data.cohort import bin_labels
from brainage.training.checkpoint import RunState
from brainage.training.classification import classification_metrics
from brainage.training.settings import TrainSettings

# Seed 000, section 3.1: test accuracy per bin (10-39, 40-69, 70-100) and overall after 34 epochs.
SEED_BIN_EDGES = [10, 40, 70, 101]
SEED_PER_BIN_ACCURACY = [0.8158, 0.3509, 1.0]
SEED_ACCURACY = 0.7222


def run_metrics(settings: TrainSettings, data, state: RunState, logits, timings: dict,
                baselines: dict | None = None) -> dict:
    """The contents of ``metrics.json``: test metrics of ``logits``, the split, the run's course,
    the baselines on the same split.

    Parameters
    ----------
    logits : array (n_test, n_classes)
        The kept model's outputs on the test split, in split order.
    timings : dict
        From :func:`run_timings`.
    baselines : dict, optional
        From :func:`brainage.training.baselines.suite.fit_baselines`.
    """
    metrics = classification_metrics(data.labels("test"), logits.argmax(axis=-1), data.n_classes)
    metrics.update(
        bin_edges=[float(e) for e in data.bin_edges],
        bin_labels=bin_labels(data.bin_edges),
        n_per_bin_split=counts_per_bin(data),
        class_weights={str(int(k)): float(v) for k, v in data.class_weights.items()}
        if data.class_weights else None,
        epochs_run=state.epochs_done,
        best_epoch=state.best_epoch,
        stopped_early=state.stopped_early,
        monitor=settings.monitor,
        best_monitor_value=state.best_value,
        seed=settings.seed,
        resumed=settings.resume is not None,
        init_from=state.init_from,
        precise_bn={"enabled": settings.precise_bn, "batches": settings.precise_bn_batches},
        cv_folds=settings.cv_folds,
        cv_fold=settings.cv_fold,
        baselines=baselines or {},
        timings=timings,
    )
    return metrics


def run_timings(placement: dict, state: RunState, n_train: int, n_test: int,
                predict_seconds: float) -> dict:
    """``metrics.json``'s ``timings``: where the run ran (``placement``: backend, devices,
    distribution, replicas, dtype policy), then seconds and volumes per second."""
    epoch_seconds = [row["seconds"] for row in state.history]
    steps = state.train_step_seconds
    steady = steps[1:] or steps
    return {
        **placement,
        "train_seconds": float(sum(epoch_seconds)),
        "seconds_per_epoch": float(sum(epoch_seconds) / max(len(epoch_seconds), 1)),
        # Training steps only (validation excluded); the first epoch includes compilation.
        "train_volumes_per_s": _rate(n_train * len(steps), sum(steps)),
        "train_volumes_per_s_after_first_epoch": _rate(n_train * len(steady), sum(steady)),
        "predict_volumes_per_s": _rate(n_test, predict_seconds),
    }


def counts_per_bin(data) -> dict:
    """``{split: [volumes of bin 0, bin 1, ...]}`` for train, val and test."""
    counts = {}
    for split in ("train", "val", "test"):
        labels = data.labels(split)
        counts[split] = [int((labels == k).sum()) for k in range(data.n_classes)]
    return counts


def format_summary(metrics: dict) -> str:
    """Test accuracy per bin with 95 % intervals next to the seed's figures (seed 000, section
    3.1), then the network beside the baselines fitted on the same split."""
    labels = metrics["bin_labels"]
    seed_comparable = [float(e) for e in metrics["bin_edges"]] == [float(e) for e in SEED_BIN_EDGES]
    counts = metrics["confusion_matrix"]
    intervals = metrics["test_per_bin_accuracy_ci95"]
    lines = [f"{'age bin':<14}{'n test':>7}{'accuracy % (95 % CI)':>24}{'seed 000 %':>12}"]
    for k, label in enumerate(labels):
        seed = SEED_PER_BIN_ACCURACY[k] if seed_comparable else None
        lines.append(f"{label:<14}{sum(counts[k]):>7}"
                     f"{_with_interval(metrics['test_per_bin_accuracy'][k], intervals[k]):>24}"
                     f"{_pct(seed):>12}")
    lines.append(f"{'overall':<14}{metrics['test_n']:>7}"
                 f"{_with_interval(metrics['test_accuracy'], metrics['test_accuracy_ci95']):>24}"
                 f"{_pct(SEED_ACCURACY if seed_comparable else None):>12}")
    lines.append(f"{'balanced':<14}{'':>7}{_pct(metrics['test_balanced_accuracy']):>24}"
                 f"{_pct(None):>12}")
    if metrics.get("baselines"):
        lines += ["", *baseline_table(metrics)]
    return "\n".join(lines)


def baseline_table(metrics: dict) -> list:
    """Lines: the network and each baseline on the same test split (accuracy with its 95 %
    interval, per bin, balanced, the penalty chosen on the validation split)."""
    bins = "".join(f"{label:>8}" for label in metrics["bin_labels"])
    lines = [f"{'same split, test accuracy %':<28}{'(95 % CI)':>24}{bins}{'balanced':>10}  penalty"]
    rows = [("CNN", metrics, "-")]
    rows += [(name, entry, f"{entry['penalty']['name']}={entry['penalty']['value']:g}")
             for name, entry in metrics["baselines"].items()]
    for name, entry, penalty in rows:
        per_bin = "".join(f"{_pct(a):>8}" for a in entry["test_per_bin_accuracy"])
        lines.append(f"{name:<28}"
                     f"{_with_interval(entry['test_accuracy'], entry['test_accuracy_ci95']):>24}"
                     f"{per_bin}{_pct(entry['test_balanced_accuracy']):>10}  {penalty}")
    return lines


def _pct(value) -> str:
    return "-" if value is None else f"{100 * value:.2f}"


def _with_interval(value, interval) -> str:
    if value is None:
        return "-"
    if not interval:
        return _pct(value)
    return f"{100 * value:.2f} ({100 * interval[0]:.1f}-{100 * interval[1]:.1f})"


def _rate(count: float, seconds: float) -> float | None:
    return float(count / seconds) if seconds > 0 else None
