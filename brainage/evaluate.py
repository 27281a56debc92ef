"""The evaluate stage: are the explanations faithful to the network?

``python -m brainage.evaluate`` (``make evaluate``) scores every selected explanation method, plus a
random map as the floor, on a training run (the newest unless ``train_dir=…`` or ``model_path=…``):

* region perturbation (Samek et al. 2017): ``perturbation.csv`` (mean logit drop ± SE per method and
  step), ``aopc.csv`` (AOPC ± SE, ranked), ``aopc_subjects.csv``, ``figures/perturbation.png``;
* cascading parameter randomisation (Adebayo et al. 2018): ``randomisation.csv`` (Spearman and SSIM
  between the trained network's map and each randomised one, mean ± SE per step),
  ``randomisation_subjects.csv``, ``figures/randomisation.png``;
* localisation against the synthetic cohort's ground truth (``<data.root>/ground_truth/``):
  ``localisation.csv`` (relevance mass ratio and AUC per method and age bin),
  ``localisation_subjects.csv``, ``figures/localisation.png`` — skipped, with a note, for cohorts
  without a ground truth;
* ``verdict.md`` (ranking, failed sanity checks, localisation) and ``evaluate.json`` (settings,
  per-method timings).

The metrics themselves live in :mod:`brainage.faithfulness`. Everything is written into a hidden work
folder and moved into place at the end, so a failed run never looks complete.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.errors import EvaluateError

RANDOM = "random"  # name of the random-map floor


# --------------------------------------------------------------------------------------------------
# Entry points


def evaluate(cfg, run_dir) -> dict:
    """Run the evaluate stage into ``run_dir``; returns the summary written to ``evaluate.json``."""
    from brainage.runs import staged_run

    return staged_run(run_dir, lambda work: _evaluate(cfg, work), marker="evaluate.json",
                      refuse=("verdict.md",))


def _main(cfg) -> None:
    from brainage.runs import run_stage

    run_dir, summary = run_stage(evaluate, cfg)
    print(f"evaluated {', '.join(summary['methods'])} on {summary['n_subjects']} subjects: "
          f"{run_dir}/verdict.md")


def main() -> None:
    import hydra

    hydra.main(version_base="1.3", config_path="../configs", config_name="evaluate")(_main)()


# --------------------------------------------------------------------------------------------------
# Settings


def _settings(cfg) -> dict:
    """The evaluate config as plain values, checked before any slow work."""
    from omegaconf import OmegaConf

    from brainage.faithfulness import BASELINES

    def block(name):
        value = cfg.get(name) or {}
        return OmegaConf.to_container(value, resolve=True) if hasattr(value, "_metadata") else dict(value)

    s = {"perturbation": block("perturbation"), "randomisation": block("randomisation"),
         "localisation": block("localisation")}
    p, r, loc = s["perturbation"], s["randomisation"], s["localisation"]
    target = cfg.get("target", "predicted")
    if target not in ("predicted", "true"):
        raise EvaluateError(f"target={target!r}; expected predicted or true")
    limit = cfg.get("subjects_limit")
    if limit is not None and int(limit) < 1:
        raise EvaluateError(f"subjects_limit={limit}; expected a positive number or null (all)")
    if int(cfg.get("batch_size", 4)) < 1:
        raise EvaluateError(f"batch_size={cfg.get('batch_size')}; expected ≥ 1")
    if p.get("baseline", "mean") not in BASELINES:
        raise EvaluateError(f"perturbation.baseline={p.get('baseline')!r}; expected one of "
                            f"{list(BASELINES)}")
    for key in ("patch", "steps", "patches_per_step", "batch_size"):
        if int(p.get(key, 1)) < 1:
            raise EvaluateError(f"perturbation.{key}={p.get(key)}; expected ≥ 1")
    if r.get("granularity", "block") not in ("block", "layer"):
        raise EvaluateError(f"randomisation.granularity={r.get('granularity')!r}; expected block "
                            "or layer")
    if int(r.get("subjects", 4)) < 1:
        raise EvaluateError(f"randomisation.subjects={r.get('subjects')}; expected ≥ 1")
    if loc.get("mask", "effect") not in ("effect", "regions"):
        raise EvaluateError(f"localisation.mask={loc.get('mask')!r}; expected effect or regions")
    if loc.get("mask", "effect") == "regions" and not loc.get("regions"):
        raise EvaluateError("localisation.mask=regions needs localisation.regions=[name, …] "
                            "(names from ground_truth/regions.csv)")
    if loc.get("relevance", "positive") not in ("positive", "absolute"):
        raise EvaluateError(f"localisation.relevance={loc.get('relevance')!r}; expected positive "
                            "or absolute")
    s.update(target=target, limit=None if limit is None else int(limit),
             batch_size=int(cfg.get("batch_size", 4)), seed=int(cfg.get("seed", 0)),
             random_map=bool(cfg.get("random_map", True)), progress=bool(cfg.get("progress", True)))
    return s


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


# --------------------------------------------------------------------------------------------------
# Inputs


def _training_mean(prep, batch: int = 16) -> np.ndarray:
    """Mean cropped GM image of the training split (the perturbation baseline, and the brain mask)."""
    rows = prep.indices("train")
    total = np.zeros(prep.volumes.shape[1:], dtype=np.float64)
    for i in range(0, len(rows), batch):
        total += np.asarray(prep.volumes[rows[i:i + batch]], dtype=np.float64).sum(axis=0)
    return (total / max(len(rows), 1)).astype(np.float32)


def _ground_truth(loc: dict, data_cfg, grid):
    """Cropped ground truth: ``(mask, control mask or None, description)``, or ``(None, None, note)``."""
    import nibabel as nib

    folder = loc.get("ground_truth")
    root = data_cfg.get("root") if hasattr(data_cfg, "get") else None
    folder = Path(folder) if folder else (Path(str(root)) / "ground_truth" if root else None)
    effect_path = folder / "age_effect.nii.gz" if folder else None
    if effect_path is None or not effect_path.is_file():
        if loc.get("ground_truth"):
            raise EvaluateError(f"localisation.ground_truth={folder} holds no age_effect.nii.gz")
        return None, None, (f"no ground truth ({effect_path or 'data.root'} is missing): the cohort "
                            "is not synthetic, so localisation was skipped")

    def cropped(path, what):
        img = nib.load(str(path))
        if tuple(img.shape[:3]) != grid.source_shape:
            raise EvaluateError(f"{path}: {what} of shape {tuple(img.shape)} does not match the "
                                f"cohort grid {grid.source_shape}")
        return grid.crop(np.asarray(img.dataobj))

    table_path = folder / "regions.csv"
    labels_path = folder / "regions.nii.gz"
    table = pd.read_csv(table_path) if table_path.is_file() else None
    labels = cropped(labels_path, "region labels") if labels_path.is_file() else None
    if loc.get("mask", "effect") == "regions":
        if table is None or labels is None:
            raise EvaluateError(f"localisation.mask=regions needs {table_path} and {labels_path}")
        wanted = [str(n) for n in loc["regions"]]
        unknown = [n for n in wanted if n not in set(table["name"])]
        if unknown:
            raise EvaluateError(f"localisation.regions: {', '.join(unknown)} not in {table_path}")
        mask = np.isin(labels, table.loc[table["name"].isin(wanted), "index"].to_numpy())
        what = f"regions {', '.join(wanted)}"
    else:
        threshold = float(loc.get("threshold", 0.2))
        effect = cropped(effect_path, "age effect").astype(np.float32)
        mask = np.abs(effect) > threshold
        what = f"|age effect 20→85| > {threshold:g}"
    control = None
    if table is not None and labels is not None and "role" in table:
        indices = table.loc[table["role"] == "control", "index"].to_numpy()
        if len(indices):
            control = np.isin(labels, indices)
    return mask, control, f"{what} ({folder})"


# --------------------------------------------------------------------------------------------------
# The stage


def _explain_maps(analyzer, x, classes, batch_size):
    """Maps of a fixed class per input (the class explained for the trained network)."""
    return np.concatenate([
        np.asarray(analyzer.explain(x[i:i + batch_size], target="true",
                                    labels=classes[i:i + batch_size]).maps)
        for i in range(0, len(x), batch_size)])


def _evaluate(cfg, work: Path) -> dict:
    from omegaconf import OmegaConf
    from tqdm.auto import tqdm

    from brainage import faithfulness as ff
    from brainage.explain import (load_analyzers, method_configs, resolve_train_run,
                                  select_subjects, training_data)

    t0 = time.perf_counter()
    s = _settings(cfg)
    p, r, loc = s["perturbation"], s["randomisation"], s["localisation"]
    train = resolve_train_run(cfg)
    methods = method_configs(cfg)
    if RANDOM in methods:
        raise EvaluateError(f"explainer name {RANDOM!r} is reserved for the random-map floor "
                            "(random_map=true)")
    prep = training_data(cfg, train, "evaluate", EvaluateError, s["progress"])
    bins_all = prep.labels()
    rows = select_subjects(prep.table, cfg.get("subjects", "test"))
    rows = spread_over_bins(rows, bins_all[rows], s["limit"])

    model, analyzers = load_analyzers(train, prep.input_shape, methods, "evaluate", EvaluateError)
    _, n_patches = ff.patch_labels(prep.input_shape[:-1], int(p.get("patch", 8)))
    removed = int(p.get("steps", 20)) * int(p.get("patches_per_step", 1))
    if removed > n_patches:
        raise EvaluateError(f"perturbation: {p.get('steps')} steps × {p.get('patches_per_step')} "
                            f"patches = {removed} patches, but the {prep.input_shape[:-1]} crop has "
                            f"only {n_patches} patches of {p.get('patch')} voxels")
    groups = ff.cascade_groups(model, r.get("granularity", "block"))
    flag_after = r.get("flag_after") or groups[min(1, len(groups) - 1)][0]
    if r.get("enabled", True) and flag_after not in [g for g, _ in groups]:
        raise EvaluateError(f"randomisation.flag_after={flag_after!r} is not a cascade step; steps "
                            f"(top down): {[g for g, _ in groups]}")

    batch_size = s["batch_size"]
    x = np.asarray(prep.volumes[rows], dtype=np.float32)[..., None]
    y = bins_all[rows]
    predict = ff.logit_function(model, int(p.get("batch_size", 11)))
    logits = predict(x)
    classes = logits.argmax(axis=1) if s["target"] == "predicted" else y
    subjects = pd.DataFrame({"subject_id": prep.table["subject_id"].to_numpy()[rows],
                             "age": prep.table["age"].to_numpy()[rows], "bin": y,
                             "predicted": logits.argmax(axis=1), "class": classes,
                             "logit": logits[np.arange(len(rows)), classes]})

    mean_image = _training_mean(prep)
    brain = mean_image > float(loc.get("brain_threshold", 0.1))
    baseline = ff.make_baseline(x, p.get("baseline", "mean"), mean_image,
                                float(p.get("blur_sigma", 4.0)))
    mask = control = None
    gt_note = "localisation disabled (localisation.enabled=false)"
    if loc.get("enabled", True):
        data_cfg = OmegaConf.merge(train.cfg.data, cfg.get("data") or {})
        mask, control, gt_note = _ground_truth(loc, data_cfg, prep.grid)
        if mask is not None and not (mask & brain).any():
            raise EvaluateError(f"localisation: the ground-truth mask ({gt_note}) has no voxel "
                                "inside the brain mask; lower localisation.threshold or "
                                "localisation.brain_threshold")

    names = list(analyzers) + ([RANDOM] if s["random_map"] else [])
    n_rand = min(int(r.get("subjects", 4)), len(rows))
    position = {int(row): i for i, row in enumerate(rows)}
    rand_pos = np.array([position[int(row)] for row in spread_over_bins(rows, y, n_rand)])
    curves, aopc_rows, loc_rows, originals, timings = [], [], [], {}, {}
    bar = tqdm(total=len(names) * len(rows), desc="perturbation", unit="map",
               disable=not s["progress"])
    for name in names:
        t = time.perf_counter()
        if name == RANDOM:
            maps = np.stack([ff.random_maps(x.shape[1:], s["seed"] + int(row)) for row in rows])
        else:
            maps = _explain_maps(analyzers[name], x, classes, batch_size)
        timings[name] = {"explain_s_per_map": (time.perf_counter() - t) / len(rows)}
        originals[name] = maps[rand_pos]
        if p.get("enabled", True):
            t = time.perf_counter()
            for i in range(len(rows)):
                res = ff.region_perturbation(predict, x[i:i + 1], maps[i:i + 1], classes[i:i + 1],
                                             baseline[i:i + 1], int(p.get("patch", 8)),
                                             int(p.get("steps", 20)),
                                             int(p.get("patches_per_step", 1)))
                curves.append(pd.DataFrame({
                    "subject_id": subjects["subject_id"][i], "method": name,
                    "step": np.arange(res.drops.shape[1]), "fraction_removed": res.fraction_removed,
                    "logit": res.logits[0], "drop": res.drops[0]}))
                aopc_rows.append({"subject_id": subjects["subject_id"][i], "bin": int(y[i]),
                                  "method": name, "aopc": float(res.aopc[0])})
                bar.update(1)
            timings[name]["perturbation_s_per_subject"] = (time.perf_counter() - t) / len(rows)
        else:
            bar.update(len(rows))
        if mask is not None:
            scores = ff.localisation_scores(maps, mask, brain, loc.get("relevance", "positive"),
                                            loc.get("max_voxels", 200_000), s["seed"])
            if control is not None:
                scores["control_ratio"] = ff.localisation_scores(
                    maps, control, brain, loc.get("relevance", "positive"),
                    with_auc=False)["mass_ratio"]
            scores.insert(0, "method", name)
            scores.insert(0, "bin", y)
            scores.insert(0, "subject_id", subjects["subject_id"].to_numpy())
            loc_rows.append(scores)
        del maps
    bar.close()

    rand_table = pd.DataFrame()
    if r.get("enabled", True):
        rand_table = _randomisation(model, methods, x[rand_pos], classes[rand_pos],
                                    subjects["subject_id"].to_numpy()[rand_pos], brain, groups, s,
                                    originals, timings)

    layer_table, compare_maps = _gradcam_layers(model, cfg, x, classes, brain, batch_size, s,
                                                originals, rand_pos)
    results = _write_tables(work, subjects, curves, aopc_rows, rand_table, loc_rows)
    if not layer_table.empty:
        layer_table.to_csv(work / "gradcam_layers.csv", index=False)
        results["gradcam_layers"] = layer_table
    flagged = {}
    if not rand_table.empty:
        flagged = ff.insensitive_methods(rand_table, flag_after, float(r.get("flag_spearman", 0.9)))
    (work / "figures").mkdir()
    _figures(work / "figures", results, names, groups, float(r.get("flag_spearman", 0.9)))
    if compare_maps:
        sid = subjects["subject_id"].to_numpy()[rand_pos[0]]
        ff.methods_figure(x[rand_pos[0]], compare_maps,
                          f"{sid}: DTD, LRP composite, guided backprop and Grad-CAM per layer",
                          work / "figures" / "methods.png")
    summary = {
        "train_dir": str(train.dir), "model_path": str(train.model_path),
        "methods": names, "explainers": methods, "target": s["target"],
        "n_subjects": int(len(rows)), "subjects": list(subjects["subject_id"]),
        "randomisation_subjects": list(subjects["subject_id"].to_numpy()[rand_pos]),
        "perturbation": p, "randomisation": {**r, "flag_after": flag_after,
                                             "cascade": [g for g, _ in groups]},
        "localisation": {**loc, "ground_truth_note": gt_note,
                         "mask_share": (float(mask[brain].mean()) if mask is not None else None)},
        "flagged": flagged, "timings": timings, "seconds": round(time.perf_counter() - t0, 1),
    }
    (work / "verdict.md").write_text(_verdict(summary, results, train))
    return summary


def _gradcam_layers(model, cfg, x, classes, brain, batch_size, s, originals, rand_pos):
    """Grad-CAM at several conv layers: how local and how general its maps are (seed 002).

    Returns the per-layer profile (``map_profile``) and, for the methods figure, the first
    randomisation subject's maps of the compared methods and of every Grad-CAM layer.
    """
    from brainage import faithfulness as ff
    from brainage.relevance import make_analyzer

    settings = dict(cfg.get("gradcam_layers") or {})
    if not settings.get("enabled", True):
        return pd.DataFrame(), {}
    conv = [layer.name for layer in model.layers if "Conv" in type(layer).__name__]
    layers = [name for name in (settings.get("layers") or
                                [n for n in conv if n.endswith("conv_b")] or conv)]
    unknown = [name for name in layers if name not in conv]
    if unknown:
        raise EvaluateError(f"gradcam_layers.layers: {unknown} are not conv layers of the model; "
                            f"conv layers: {conv}")
    rows, compare = [], {}
    first = rand_pos[:1]
    for name in ("dtd", "lrp_composite", "guided_backprop"):
        if name in originals:
            compare[name] = originals[name][0]
    for layer in layers:
        maps = _explain_maps(make_analyzer(model, "gradcam", layer=layer), x, classes, batch_size)
        rows.append({"layer": layer, "n_subjects": len(x), **ff.map_profile(maps, brain,
                                                                            seed=s["seed"])})
        compare[f"gradcam {layer}"] = maps[first][0]
    return pd.DataFrame(rows), compare


def _randomisation(model, methods, x, classes, ids, brain, groups, s, originals, timings):
    """Cascading randomisation of every method on the subjects ``x`` (rows per subject and step)."""
    from tqdm.auto import tqdm

    from brainage import faithfulness as ff
    from brainage.relevance import analyzer_from_config

    r = s["randomisation"]
    tables = []
    for name in tqdm(list(methods), desc="randomisation", unit="method", disable=not s["progress"]):
        def explain_fn(m, inputs, params=methods[name]):
            return _explain_maps(analyzer_from_config(m, params), inputs, classes, s["batch_size"])

        t = time.perf_counter()
        table = ff.cascading_randomisation(
            model, x, explain_fn, seed=s["seed"], mask=brain, signed=bool(r.get("signed", True)),
            max_voxels=r.get("max_voxels", 200_000), original=originals[name], groups=groups)
        timings[name]["randomisation_s"] = time.perf_counter() - t
        table.insert(0, "method", name)
        table.insert(1, "subject_id", ids[table["input"]])
        tables.append(table.drop(columns="input"))
    return pd.concat(tables, ignore_index=True)


def _write_tables(work: Path, subjects, curves, aopc_rows, rand_table, loc_rows) -> dict:
    from brainage.faithfulness import mean_se

    subjects.to_csv(work / "subjects.csv", index=False)
    out = {}
    if curves:
        curves = pd.concat(curves, ignore_index=True)
        rows = []
        for (method, step), g in curves.groupby(["method", "step"], sort=False):
            m, se, n = mean_se(g["drop"])
            rows.append({"method": method, "step": int(step),
                         "fraction_removed": float(g["fraction_removed"].mean()),
                         "mean_drop": m, "se_drop": se, "mean_logit": float(g["logit"].mean()), "n": n})
        out["perturbation"] = pd.DataFrame(rows)
        out["perturbation"].to_csv(work / "perturbation.csv", index=False)
        per_subject = pd.DataFrame(aopc_rows)
        per_subject.to_csv(work / "aopc_subjects.csv", index=False)
        rows = []
        for method, g in per_subject.groupby("method", sort=False):
            m, se, n = mean_se(g["aopc"])
            rows.append({"method": method, "aopc": m, "se": se, "n": n})
        aopc = pd.DataFrame(rows).sort_values("aopc", ascending=False, ignore_index=True)
        aopc.insert(0, "rank", np.arange(1, len(aopc) + 1))
        if RANDOM in set(aopc["method"]):
            floor = aopc.set_index("method").loc[RANDOM]
            aopc["minus_random"] = aopc["aopc"] - floor["aopc"]
            aopc["above_random"] = aopc["minus_random"] > 2 * np.sqrt(aopc["se"] ** 2 + floor["se"] ** 2)
        out["aopc"] = aopc
        aopc.to_csv(work / "aopc.csv", index=False)
    if not rand_table.empty:
        rand_table.to_csv(work / "randomisation_subjects.csv", index=False)
        metrics = [c for c in rand_table.columns if c.startswith(("spearman_", "ssim_"))]
        rows = []
        for (method, step, layer, n_layers), g in rand_table.groupby(
                ["method", "step", "layer", "n_layers"], sort=False):
            row = {"method": method, "step": int(step), "layer": layer, "n_layers": int(n_layers)}
            for c in metrics:
                row[c], row[f"{c}_se"], row["n"] = mean_se(g[c])
            rows.append(row)
        out["randomisation"] = pd.DataFrame(rows)
        out["randomisation"].to_csv(work / "randomisation.csv", index=False)
    if loc_rows:
        per_subject = pd.concat(loc_rows, ignore_index=True)
        per_subject.to_csv(work / "localisation_subjects.csv", index=False)
        metrics = [c for c in ("mass_ratio", "auc", "control_ratio", "brain_share")
                   if c in per_subject]
        rows = []
        for method, g in per_subject.groupby("method", sort=False):
            for label, part in [("all", g)] + [(str(k), h) for k, h in g.groupby("bin")]:
                row = {"method": method, "bin": label, "n": len(part),
                       "mask_share": float(part["mask_share"].iloc[0])}
                for c in metrics:
                    row[c], row[f"{c}_se"], _ = mean_se(part[c])
                rows.append(row)
        out["localisation"] = pd.DataFrame(rows)
        out["localisation"].to_csv(work / "localisation.csv", index=False)
    return out


# --------------------------------------------------------------------------------------------------
# Figures and verdict


def _figures(folder: Path, results: dict, methods: list, groups, flag_spearman: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cmap = matplotlib.colormaps["tab10"]
    colours = {m: cmap(i % 10) for i, m in enumerate(m for m in methods if m != RANDOM)}
    colours[RANDOM] = "black"
    if "perturbation" in results:
        curves, aopc = results["perturbation"], results["aopc"]
        fig, (ax, bx) = plt.subplots(1, 2, figsize=(12, 4.5), width_ratios=[3, 2])
        for method, g in curves.groupby("method", sort=False):
            pct = 100 * g["fraction_removed"]
            se = g["se_drop"].fillna(0)
            ax.plot(pct, g["mean_drop"], label=method, color=colours[method],
                    ls="--" if method == RANDOM else "-")
            ax.fill_between(pct, g["mean_drop"] - se, g["mean_drop"] + se, color=colours[method],
                            alpha=0.15, lw=0)
        ax.axhline(0, color="grey", lw=0.5)
        ax.set(xlabel="input removed, most relevant patches first (%)",
               ylabel="mean drop of the explained logit", title="Region perturbation (MoRF)")
        ax.legend(fontsize=8)
        bx.barh(aopc["method"][::-1], aopc["aopc"][::-1], xerr=aopc["se"].fillna(0)[::-1],
                color=[colours[m] for m in aopc["method"][::-1]])
        bx.set(xlabel="AOPC (higher = more faithful)", title="AOPC ± SE")
        fig.tight_layout()
        fig.savefig(folder / "perturbation.png", dpi=120)
        plt.close(fig)
    if "randomisation" in results:
        table = results["randomisation"]
        steps = ["trained"] + [g for g, _ in groups]
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharex=True)
        for ax, metric, label in zip(axes, ("spearman_abs", "ssim_abs"),
                                     ("Spearman rank correlation (|map|)", "SSIM (|map|, 3-D)")):
            for method, g in table.groupby("method", sort=False):
                xs = np.concatenate([[0], g["step"]])
                ys = np.concatenate([[1.0], g[metric]])
                se = np.concatenate([[0.0], g[f"{metric}_se"].fillna(0)])
                ax.errorbar(xs, ys, yerr=se, label=method, color=colours[method], marker="o", ms=3,
                            capsize=2)
            if metric == "spearman_abs":
                ax.axhline(flag_spearman, color="red", ls=":", lw=1, label="flag threshold")
            ax.set_xticks(range(len(steps)), steps, rotation=45, ha="right")
            ax.set(ylabel=label, xlabel="randomised down to (cumulative, top first)", ylim=(-0.2, 1.05))
        axes[0].set_title("Cascading randomisation (Adebayo et al. 2018)")
        axes[0].legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(folder / "randomisation.png", dpi=120)
        plt.close(fig)
    if "localisation" in results:
        table = results["localisation"]
        methods = list(dict.fromkeys(table["method"]))
        labels = list(dict.fromkeys(table["bin"]))
        fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
        width = 0.8 / len(methods)
        for ax, metric, ref, title in zip(axes, ("mass_ratio", "auc"), (1.0, 0.5),
                                          ("relevance mass ratio (1 = uniform)", "AUC (0.5 = chance)")):
            for i, method in enumerate(methods):
                g = table[table["method"] == method].set_index("bin").loc[labels]
                ax.bar(np.arange(len(labels)) + (i - (len(methods) - 1) / 2) * width, g[metric],
                       width, yerr=g[f"{metric}_se"].fillna(0), color=colours[method], label=method)
            ax.axhline(ref, color="grey", ls="--", lw=1)
            ax.set_xticks(range(len(labels)), ["all" if b == "all" else f"bin {b}" for b in labels])
            ax.set(title=title, xlabel="age bin")
        axes[0].legend(fontsize=8)
        fig.suptitle("Localisation of the synthetic ageing ground truth")
        fig.tight_layout()
        fig.savefig(folder / "localisation.png", dpi=120)
        plt.close(fig)


def _fmt(value, se=None, digits=3) -> str:
    if value is None or not np.isfinite(value):
        return "–"
    if se is None or not np.isfinite(se):
        return f"{value:.{digits}f}"
    return f"{value:.{digits}f} ± {se:.{digits}f}"


def _verdict(summary: dict, results: dict, train) -> str:
    p, r, loc = summary["perturbation"], summary["randomisation"], summary["localisation"]
    lines = [
        "# Faithfulness verdict", "",
        f"Training run `{train.dir}`; {summary['n_subjects']} subjects ({summary['target']} class "
        f"explained); methods: {', '.join(summary['methods'])}.", "",
        "## 1. Region perturbation (Samek et al. 2017)", ""]
    if "aopc" in results:
        aopc = results["aopc"]
        lines += [
            f"Patches of {p.get('patch')}³ voxels on the crop, removed most relevant first, "
            f"{p.get('patches_per_step')} per step for {p.get('steps')} steps (up to "
            f"{100 * results['perturbation']['fraction_removed'].max():.1f} % of the input), replaced "
            f"by the `{p.get('baseline')}` baseline. AOPC = mean drop of the explained logit over the "
            "steps (step 0 included): higher means the map ranks the patches the network uses first.",
            "", "| rank | method | AOPC ± SE | above random |", "|---|---|---|---|"]
        for _, row in aopc.iterrows():
            above = row.get("above_random")
            mark = "floor" if row["method"] == RANDOM else ("yes" if above else "no") \
                if above is not None else "–"
            lines.append(f"| {row['rank']} | {row['method']} | {_fmt(row['aopc'], row['se'])} | {mark} |")
        below = [m for m, a in zip(aopc["method"], aopc.get("above_random", [])) if m != RANDOM and not a]
        if below:
            lines += ["", f"Not clearly above the random floor (AOPC − random ≤ 2 SE): {', '.join(below)}."]
    else:
        lines.append("Skipped (perturbation.enabled=false).")
    lines += ["", "## 2. Sanity check: cascading randomisation (Adebayo et al. 2018)", ""]
    if "randomisation" in results:
        table = results["randomisation"]
        last = table["step"].max()
        lines += [
            f"Weights re-initialised from the top ({' → '.join(r['cascade'])}, cumulative, "
            f"granularity {r.get('granularity')}) on {len(summary['randomisation_subjects'])} subjects; "
            "similarity of the absolute maps to the trained network's (Spearman over brain voxels, "
            "SSIM over the 3-D volume). A faithful map changes once the weights it explains are gone. "
            f"Flag: Spearman > {r.get('flag_spearman')} after randomising down to `{r['flag_after']}`.",
            "", f"| method | Spearman after `{r['flag_after']}` | Spearman, all randomised | "
            "SSIM, all randomised | verdict |", "|---|---|---|---|---|"]
        for method, g in table.groupby("method", sort=False):
            at = g[g["layer"] == r["flag_after"]].iloc[0]
            end = g[g["step"] == last].iloc[0]
            verdict = "**fails** (map ignores the top layers)" if method in summary["flagged"] \
                else "passes"
            lines.append(f"| {method} | {_fmt(at['spearman_abs'], at['spearman_abs_se'])} | "
                         f"{_fmt(end['spearman_abs'])} | {_fmt(end['ssim_abs'])} | {verdict} |")
        lines += ["", "The random map is left out: it depends on no weight by construction."]
    else:
        lines.append("Skipped (randomisation.enabled=false).")
    lines += ["", "## 3. Localisation of the synthetic ground truth", ""]
    if "localisation" in results:
        table = results["localisation"]
        overall = table[table["bin"] == "all"].sort_values("mass_ratio", ascending=False)
        share = loc.get("mask_share")
        lines += [
            f"Mask: {loc['ground_truth_note']}; it covers {100 * share:.1f} % of the brain voxels "
            f"(cohort mean GM > {loc.get('brain_threshold')}), so a perfect map reaches a mass ratio "
            f"of {1 / share:.2f} and AUC 1; a uniform map 1 and 0.5. Scores use "
            f"{loc.get('relevance')} relevance. Control ratio: the same ratio in the regions the "
            "generator left unchanged (primary visual cortex; ≤ 1 is right).", "",
            "| method | mass ratio ± SE | AUC ± SE | control ratio | relevance in brain |",
            "|---|---|---|---|---|"]
        for _, row in overall.iterrows():
            lines.append(f"| {row['method']} | {_fmt(row['mass_ratio'], row['mass_ratio_se'])} | "
                         f"{_fmt(row['auc'], row['auc_se'])} | {_fmt(row.get('control_ratio'))} | "
                         f"{_fmt(row.get('brain_share'))} |")
        lines += ["", "Per age bin: `localisation.csv`."]
    else:
        lines.append(f"Skipped: {loc['ground_truth_note']}.")
    if "gradcam_layers" in results:
        lines += ["", "## 4. Grad-CAM across layers (seed 002)", "",
                  "Roughness = mean |∇map| / mean |map| in the brain (finer, more local detail is "
                  "larger); focus = share of brain voxels holding half the relevance; "
                  "between-subject Spearman = how alike the maps of different subjects are "
                  "(more general is larger). `figures/methods.png` shows one subject's maps "
                  "side by side.", "",
                  "| layer | roughness | focus | between-subject Spearman |", "|---|---|---|---|"]
        for _, row in results["gradcam_layers"].iterrows():
            lines.append(f"| {row['layer']} | {_fmt(row['roughness'])} | {_fmt(row['focus'])} | "
                         f"{_fmt(row['between_subject_spearman'])} |")
    lines += ["", "## Summary", ""]
    if "aopc" in results:
        ranked = [m for m in results["aopc"]["method"] if m != RANDOM]
        lines.append(f"- Most faithful by AOPC: **{ranked[0]}**; order: {' > '.join(ranked)}.")
    if "randomisation" in results:
        flagged = summary["flagged"]
        lines.append("- Failed the randomisation check: " + (", ".join(
            f"{m} (Spearman {v:.2f})" for m, v in flagged.items()) if flagged else "none") + ".")
    if "localisation" in results:
        overall = results["localisation"]
        overall = overall[(overall["bin"] == "all") & (overall["method"] != RANDOM)]
        best = overall.sort_values("auc", ascending=False).iloc[0]
        lines.append(f"- Best localisation of the ageing ground truth: **{best['method']}** "
                     f"(AUC {best['auc']:.3f}, mass ratio {best['mass_ratio']:.2f}).")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
