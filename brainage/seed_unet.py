"""Seed 003 (Matos et al. 2019) on our data: a 3D U-Net segments the hippocampi; guided backprop,
DTD and others explain the summed logits of its predicted mask.

``python -m brainage.seed_unet`` (``make unet``) cuts a box around both hippocampi out of the
quick cohort's GM maps, labels each subject with the Neuromorphometrics hippocampi carried by the
subject's own synthetic deformation, trains a small U-Net, scores Dice on held-out subjects and
explains the test subjects' predicted masks (:mod:`brainage.segmentation`). Settings:
``configs/unet.yaml``.

Outputs (``outputs/seed_unet/<date>_<time>/``): ``metrics.json`` (Dice on the validation and
test splits with the atlas-prior baseline, each method's conservation), ``model.keras``,
``figures/unet_relevance.png``, ``maps/<subject>_{label,prediction,<method>}.nii.gz``.
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from brainage.runs import hydra_entry, run_stage
from brainage.segmentation.figures import region_figure
from brainage.segmentation.scores import dice

FIGURE_DPI = 120


def run_unet(cfg, run_dir) -> dict:
    """Load, train, score, explain; write ``metrics.json``, the model, the figure and the maps to
    ``run_dir``; returns the summary written to ``metrics.json``."""
    # deferred: imports nibabel, pandas and scipy, not needed for --help
    from brainage.data.settings import DataSettings
    from brainage.segmentation.dataset import load_segmentation_data
    from brainage.segmentation.experiment import run_experiment
    from brainage.segmentation.maps import write_maps
    from brainage.segmentation.settings import UNetSettings

    started = time.perf_counter()
    settings = UNetSettings.from_cfg(cfg)
    data = load_segmentation_data(DataSettings.from_cfg(cfg.data), settings, run_dir)
    run = run_experiment(data, settings)
    run_dir = Path(run_dir)
    run.model.save(run_dir / "model.keras")
    figure = _write_figure(run, data, settings, run_dir / "figures")
    maps = write_maps(run, data, settings.threshold, settings.display, run_dir / "maps")
    summary = {"structure": list(settings.labels), "atlas": settings.atlas,
               "labels_warped": data.warped, "box": data.box.to_dict(),
               "n_subjects": int(len(data.table)), **run.summary, "figure": str(figure),
               "maps": maps, "seconds": round(time.perf_counter() - started, 1)}
    (run_dir / "metrics.json").write_text(json.dumps(summary, indent=2))
    return summary


def _write_figure(run, data, settings, folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    row, predicted = run.explained[0], run.logits[0] > settings.threshold
    sid = data.table["subject_id"].iloc[row]
    score = float(dice(predicted[None], data.y[row][None])[0])
    maps = {f"{e.tag}" + ("" if e.rel_error is None else f" (cons. {e.rel_error[0]:.0e})"): e.maps[0]
            for e in run.explanations}
    title = (f"U-Net hippocampus, test subject {sid} (Dice {score:.3f}): relevance of the summed "
             "logits of the predicted mask (label contour green)")
    path = folder / "unet_relevance.png"
    region_figure(data.x[row, ..., 0], data.y[row].astype(bool), predicted, maps, title).savefig(
        path, dpi=FIGURE_DPI)
    return path


def report_lines(summary: dict, run_dir) -> list[str]:
    """What the command line prints: Dice, the atlas-prior baseline, conservation per method."""
    test = summary["scores"]["test"]
    lines = [f"U-Net ({summary['parameters']} parameters, {summary['n_train']} training subjects, "
             f"{summary['train_seconds']:.0f} s): test Dice median {test['dice']['median']:.3f} "
             f"(mean {test['dice']['mean']:.3f}, n={test['dice']['n']}); atlas prior "
             f"{test['atlas_prior_dice']['median']:.3f}"]
    for tag, m in summary["methods"].items():
        cons = "a gradient method: no conservation identity" if not m["layer_wise"] else (
            f"conservation max rel. error {m['rel_error_max']:.1e} (with what ε and biases absorbed "
            f"added back: {m['books_rel_error_max']:.1e})")
        lines.append(f"  {tag}: {cons}")
    lines.append(f"metrics.json, figures/ and maps/ in {run_dir}")
    return lines


def _main(cfg, run_dir=None) -> None:
    """Command line; ``run_dir`` stands in for Hydra's run directory (tests)."""
    run_dir, summary = run_stage(run_unet, cfg, run_dir=run_dir)
    print("\n".join(report_lines(summary, run_dir)))


main = hydra_entry(_main, "unet")


if __name__ == "__main__":
    main()
