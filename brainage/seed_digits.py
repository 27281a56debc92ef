"""Seed 000 §2.2.3 on digits: DTD heat maps, "anti-heatmaps" and a misclassified digit.

``python -m brainage.seed_digits`` (``make digits``) re-runs the seed's MNIST experiment offline on
scikit-learn's bundled 8×8 digits upsampled to 28×28 (:mod:`brainage.digits.data`): the seed's fully
connected 784-300-100-10 network and its CNN are trained, deep Taylor decomposition explains every
class of the test digits, and the seed's claim that normalised heat maps and anti-heatmaps are exact
negatives is measured (:mod:`brainage.digits.antiheatmap`). Sizes and training: ``configs/digits.yaml``.

Outputs (``outputs/seed_digits/<date>_<time>/``): ``figures/digits_dense.png``,
``figures/digits_cnn.png``, ``figures/digits_misclassified.png``, ``digits.json`` and ``digits.csv``
(accuracy, conservation and the anti-heatmap measurements per network).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from brainage.digits.data import load_digits_upsampled, source_note, split_digits
from brainage.digits.experiment import NETWORKS, results_table, run_network
from brainage.digits.figures import examples_figure, misclassified_figure
from brainage.digits.settings import DigitsSettings
from brainage.runs import hydra_entry, run_stage

FIGURE_DPI = 110


def run_digits(cfg, run_dir) -> dict:
    """Train both networks, explain, measure, and write figures, ``digits.json`` and ``digits.csv``
    to ``run_dir``; returns the summary written to ``digits.json``."""
    started = time.perf_counter()
    settings = DigitsSettings.from_cfg(cfg)
    figures = Path(run_dir) / "figures"
    figures.mkdir(parents=True, exist_ok=True)
    x, y = load_digits_upsampled(settings.size, settings.limit, settings.seed)
    split = split_digits(x, y, settings.test_fraction, settings.seed)
    note = source_note(settings.size)
    runs = [run_network(name, settings, split) for name in NETWORKS]
    for run in runs:
        examples_figure(run.name, split.x_test, split.y_test, run.logits, run.maps_all, run.picks,
                        run.result["test_accuracy"], note).savefig(figures / f"digits_{run.name}.png",
                                                                   dpi=FIGURE_DPI)
    misclassified_figure([(run.name, run.misclassified) for run in runs], note).savefig(
        figures / "digits_misclassified.png", dpi=FIGURE_DPI)
    results = {run.name: run.result for run in runs}
    summary = {"data": note, "n_digits": int(len(y)), "explainer": settings.explainer,
               "networks": results, "seconds": round(time.perf_counter() - started, 1)}
    (Path(run_dir) / "digits.json").write_text(json.dumps(summary, indent=2))
    results_table(results).to_csv(Path(run_dir) / "digits.csv", index=False)
    return summary


def report_lines(summary: dict, run_dir) -> list[str]:
    """What the command line prints: the data, each network's accuracy, conservation and claim."""
    lines = [summary["data"]]
    for name, r in summary["networks"].items():
        lines.append(f"{name}: test accuracy {100 * r['test_accuracy']:.1f} %, DTD conservation max "
                     f"rel. error {r['conservation_max_rel_error']:.1e}")
        lines.append("  " + r["claim"])
    lines.append(f"figures and digits.json in {run_dir}")
    return lines


def _main(cfg, run_dir=None) -> None:
    """Command line; ``run_dir`` stands in for Hydra's run directory (tests)."""
    run_dir, summary = run_stage(run_digits, cfg, run_dir=run_dir)
    print("\n".join(report_lines(summary, run_dir)))


main = hydra_entry(_main, "digits")


if __name__ == "__main__":
    main()
