"""The preprocess stage: raw T1-weighted MRI to grey-matter maps on the 1.5 mm MNI grid.

``python -m brainage.preprocess data.root=<raw folder>`` (``make preprocess``) reads BIDS raw (or a
folder of images and a table), never writes into it, and writes a BIDS derivative to
``data/derivatives/<root name>-<hash>/``: per subject modulated and unmodulated GM, brain mask,
native GM, ``preproc.json`` and a QC picture; ``participants.tsv``, ``qc.tsv`` and ``report.html``.
A rerun skips the subjects already done. The run directory, ``outputs/preprocess/<date>_<time>/``,
gets ``preprocess.json`` (the summary, last), ``exclusions.csv`` and the log. The data presets
``t1`` and ``ixi`` read the derivative. The work is :mod:`brainage.preprocessing`.
"""
from __future__ import annotations

from pathlib import Path

from brainage.runs import hydra_entry, run_stage, staged_run

MARKER = "preprocess.json"
CONFIGS = Path(__file__).resolve().parents[1] / "configs"
GENERIC_PRESET = "t1"  # the data preset of any preprocessed root: data=t1 data.root=<root>


def preprocess(cfg, run_dir) -> dict:
    """Run the preprocess stage into ``run_dir``; returns the summary written to ``preprocess.json``."""
    # deferred: imports pandas, nibabel and nilearn, not needed for --help
    from brainage.preprocessing.pipeline import preprocess_cohort
    from brainage.preprocessing.settings import PreprocessSettings

    settings = PreprocessSettings.from_cfg(cfg)
    return staged_run(Path(run_dir), lambda work: preprocess_cohort(settings, work), marker=MARKER)


def next_command(root, derivatives_dir) -> str:
    """The training command that reads this derivative: a data preset whose root is this root
    (``data=ixi``, and the experiments on it), or the generic one with the root."""
    names = sorted(p.stem for p in (CONFIGS / "data").glob("*.yaml"))
    for name in names:
        given = _preset_value(name, "root")
        if _preset_value(name, "format") == "preprocessed" and isinstance(given, str) \
                and "${" not in given and Path(given).resolve() == Path(root).resolve():
            break
    else:
        name = GENERIC_PRESET
    words = [f"make train data={name}"] + ([f"data.root={root}"] if name == GENERIC_PRESET else [])
    if str(_preset_value(name, "derivatives_dir")) != str(derivatives_dir):
        words.append(f"data.derivatives_dir={derivatives_dir}")
    experiments = _experiments_on(name)
    if experiments and len(words) == 1:
        return f"{words[0]}, or an experiment on it: {', '.join(f'experiment={e}' for e in experiments)}"
    return " ".join(words)


def _experiments_on(preset: str) -> list:
    """The experiments whose data is the preset (``override /data: <preset>``)."""
    from omegaconf import OmegaConf

    found = []
    for path in sorted((CONFIGS / "experiment").glob("*.yaml")):
        defaults = OmegaConf.to_container(OmegaConf.load(path), resolve=False).get("defaults", [])
        if any(isinstance(d, dict) and d.get("override /data") == preset for d in defaults):
            found.append(path.stem)
    return found


def _preset_value(name: str, key: str):
    """``key`` of the data preset ``name``, as written in it or in the presets it extends."""
    from omegaconf import OmegaConf

    preset = OmegaConf.to_container(OmegaConf.load(CONFIGS / "data" / f"{name}.yaml"), resolve=False)
    if key in preset:
        return preset[key]
    for parent in reversed([d for d in preset.get("defaults", []) if d != "_self_"]):
        value = _preset_value(parent, key)
        if value is not None:
            return value
    return None


def _main(cfg, run_dir=None) -> None:
    """Command line; ``run_dir`` stands in for Hydra's run directory (tests)."""
    run_dir, s = run_stage(preprocess, cfg, run_dir=run_dir)
    done = f"{s['n_preprocessed']} preprocessed, {s['n_skipped']} already done, {len(s['excluded'])} excluded"
    if "shard" in s:
        print(f"shard {s['shard']}: {done}, into {s['derivative']}; when every shard has finished, "
              f"make preprocess data.root={s['root']} writes the tables and report")
        return
    print(f"{s['n_ok'] + s['n_flagged']} of {s['n_subjects']} subjects ready ({done}, "
          f"{s['n_flagged']} flagged) in {s['derivative']}; QC: {s['report']}; next: "
          f"{next_command(s['root'], cfg.derivatives_dir)}")


main = hydra_entry(_main, "preprocess")

if __name__ == "__main__":
    main()
