"""The infer stage: which voxels and atlas regions' relevance differs between groups of subjects.

``python -m brainage.infer`` (``make infer``) tests the newest finished explain run unless given
``explain_dir=…``: voxel-wise permutation FWE (nilearn ``permuted_ols``, optional TFCE) and, per
atlas region, Hedges' g / partial r with 95 % intervals, t, p, p(FDR) and p(FWE), raw and adjusted
for the region's GM density. Outputs go to ``outputs/infer/<date>_<time>/``: ``maps/``,
``regions/<atlas>_inference.csv``, ``figures/``, ``report.html`` and, last, ``infer.json``; a failed
run never looks finished. On an ensemble's explain run each significant region also says in how
many members the same test holds (:mod:`brainage.inference.member_agreement`). The statistics live
in :mod:`brainage.inference`.
"""
from __future__ import annotations

from pathlib import Path

from brainage.runs import hydra_entry, run_stage, staged_run

MARKER = "infer.json"


def infer(cfg, run_dir) -> dict:
    """Run the infer stage into ``run_dir``; returns the summary written to ``infer.json``."""
    # deferred: imports pandas and scipy, not needed for --help
    from brainage.inference.analysis import run_inference
    from brainage.inference.settings import InferSettings

    settings = InferSettings.from_cfg(cfg)
    return staged_run(Path(run_dir), lambda work: run_inference(settings, work), marker=MARKER,
                      refuse=("report.html",))


def _agreeing(result: dict, summary: dict) -> str:
    """An ensemble's run: in how many members each significant region holds (else nothing)."""
    agreeing = result.get("members_agreeing")
    if not agreeing:
        return ""
    n = summary["ensemble"]["n_members"]
    return f" (members agreeing: {', '.join(f'{r} {k}/{n}' for r, k in agreeing.items())})"


def _main(cfg, run_dir=None) -> None:
    """Command line; ``run_dir`` stands in for Hydra's run directory (tests)."""
    run_dir, summary = run_stage(infer, cfg, run_dir=run_dir)
    counts = [f"{method}: {v['n_significant']} FWE-significant voxels"
              for method, v in summary["voxelwise"].items()]
    for atlas, methods in summary["regions"].items():
        counts += [f"{method}: {r['fwe_significant']} of {r['n_regions']} {atlas} regions"
                   + _agreeing(r, summary) for method, r in methods.items()]
    print(f"tested {summary['design']['name']} in {summary['explain_dir']} — "
          f"{'; '.join(counts)}: {run_dir}/report.html")


main = hydra_entry(_main, "infer")

if __name__ == "__main__":
    main()
