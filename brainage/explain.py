"""The explain stage: relevance maps in world space, group maps, atlas-region tables, report.

``python -m brainage.explain`` (``make explain``) explains the newest training run unless given
``train_dir=…`` or ``model_path=…``. Outputs go to ``outputs/explain/<date>_<time>/``:
``maps/<subject>_<method>_<target>.nii.gz``, ``group/<method>_bin<k>_mean.nii.gz``,
``regions/<atlas>_subjects.csv``, ``regions/<atlas>_summary.csv``, ``conservation.csv``,
``figures/*.png``, ``report.html`` and ``explain.json``. Everything is written into a hidden
work folder and moved into place at the end, so a failed run never looks complete.

At scale, ``shard=i/n`` explains a deterministic n-th of the subjects (a multirun over i, e.g.
on SLURM) and ``merge=<multirun dir>`` combines the shards into the files above, identical to a
single job (see :mod:`brainage.explain_merge` and the README's "Scaling out").
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from brainage.errors import ExplainError

log = logging.getLogger(__name__)

SHARD_FILE = "shard.json"
SUBJECT_COLUMNS = ["batch", "subject_id", "age", "bin", "predicted", "split"]
CONSERVATION_COLUMNS = ["batch", "subject_id", "method", "target", "output", "relevance_sum",
                        "rel_error", "class", "negative_share"]
REGION_COLUMNS = ["batch", "subject_id", "bin", "method", "region", "n_voxels", "sum", "mean",
                  "density", "share"]


@dataclass
class TrainRun:
    dir: Path
    model_path: Path
    cfg: object  # the training run's resolved config
    split: pd.DataFrame


def resolve_train_run(cfg) -> TrainRun:
    """The training run to explain: ``train_dir``, the run holding ``model_path``, or the newest."""
    from omegaconf import OmegaConf

    from brainage.runs import latest_run

    model_path = cfg.get("model_path")
    if model_path:
        model_path = Path(model_path)
        if not model_path.is_file():
            raise ExplainError(f"model_path={model_path} does not exist")
        train_dir = Path(cfg.get("train_dir") or model_path.parent)
    elif cfg.get("train_dir"):
        train_dir = Path(cfg.train_dir)
        if not train_dir.is_dir():
            raise ExplainError(f"train_dir={train_dir} does not exist; pass a training run "
                               "directory such as outputs/train/<date>_<time>")
        model_path = train_dir / "model.keras"
        if not model_path.is_file():
            raise ExplainError(f"train_dir={train_dir} holds no model.keras (unfinished or not a "
                               "training run); pass a finished run or model_path=…")
    else:
        try:
            train_dir = latest_run("train", cfg.get("outputs_dir", "outputs"))
        except FileNotFoundError as exc:
            raise ExplainError(str(exc)) from exc
        model_path = train_dir / "model.keras"
    config_path = train_dir / ".hydra" / "config.yaml"
    if not config_path.is_file():
        raise ExplainError(f"{train_dir} has no .hydra/config.yaml: cannot tell which data the "
                           "model was trained on")
    split_path = train_dir / "split.csv"
    if not split_path.is_file():
        raise ExplainError(f"{train_dir} has no split.csv")
    split = pd.read_csv(split_path, dtype={"subject_id": str})
    return TrainRun(train_dir, model_path, OmegaConf.load(config_path), split)


def select_subjects(table: pd.DataFrame, subjects) -> np.ndarray:
    """Rows to explain: a split name (``test`` default, ``val``, ``train``), ``all`` or id list."""
    if isinstance(subjects, str):
        if subjects == "all":
            rows = np.arange(len(table))
        elif subjects in ("train", "val", "test"):
            rows = np.flatnonzero(table["split"].to_numpy() == subjects)
        else:
            subjects = [s.strip() for s in subjects.split(",") if s.strip()]
            return select_subjects(table, subjects)
    else:
        wanted = [str(s) for s in subjects]
        known = set(table["subject_id"])
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise ExplainError(f"subjects not in the training run's cohort: {', '.join(unknown[:5])}")
        pos = {sid: i for i, sid in enumerate(table["subject_id"])}
        rows = np.array([pos[s] for s in wanted], dtype=np.int64)
    if len(rows) == 0:
        raise ExplainError(f"subjects={subjects!r} selects no subject; use test, val, train, all "
                           "or a list of subject ids")
    return rows


def method_configs(cfg) -> dict:
    """``{name: params}`` of the methods to run (``explainer=dtd`` or ``explainer=[dtd,gradcam]``)."""
    from omegaconf import OmegaConf

    methods = OmegaConf.to_container(cfg.explainer, resolve=True) if cfg.get("explainer") else {}
    if not methods:
        raise ExplainError("no explanation method selected; use explainer=dtd or "
                           "explainer=[dtd,gradcam]")
    return methods


def target_specs(targets) -> list:
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
    return out


def _target_tags(spec, predicted: np.ndarray, n_classes: int):
    """(engine target argument, file tag per class slice) for one target spec."""
    if spec == "all":
        return "all", [f"class{k}" for k in range(n_classes)]
    if isinstance(spec, int):
        return spec, [f"class{spec}"]
    return spec, [spec]


def parse_shard(value) -> tuple[int, int] | None:
    """``shard=i/n`` -> ``(i, n)`` with ``0 <= i < n``; None or empty -> None (no sharding)."""
    if value is None or str(value).strip() in ("", "null", "None"):
        return None
    text = str(value).strip()
    try:
        i, n = (int(part) for part in text.split("/"))
    except ValueError:
        i, n = -1, 0
    if not 0 <= i < n:
        raise ExplainError(f"shard={text!r}: expected i/n with 0 <= i < n, e.g. shard=0/4 ... "
                           "shard=3/4 (shards count from 0)")
    return i, n


def explain(cfg, run_dir) -> dict:
    """Run the explain stage into ``run_dir``; returns the summary written to ``explain.json``.

    With ``shard=i/n`` only the i-th of n deterministic parts of the subjects is explained and
    the run directory holds that shard (maps and partial tables, ``shard.json`` last); with
    ``merge=<dirs>`` the shards are combined into the same files a single job writes.
    """
    run_dir = Path(run_dir)
    shard = parse_shard(cfg.get("shard"))
    merge = cfg.get("merge")
    if shard and merge:
        raise ExplainError("shard=… and merge=… exclude each other: run the shards first, then "
                           "merge them in a run of their own")
    from brainage.runs import staged_run

    def produce(work: Path) -> dict:
        if merge:
            from brainage.explain_merge import merge_shards

            return merge_shards(cfg, merge, work)
        if shard:
            return _explain_shard(cfg, work, shard)
        return _explain(cfg, work)

    # The marker is written last: its presence says the run (or shard) is complete.
    return staged_run(run_dir, produce, marker=SHARD_FILE if shard else "explain.json",
                      refuse=("report.html", "explain.json", SHARD_FILE))


@dataclass
class Setup:
    """What explaining and combining need: the training run, methods, targets, data, subjects."""

    train: TrainRun
    methods: dict
    specs: list
    prep: object  # PreparedData
    rows: np.ndarray  # selected rows of prep.table, in order
    atlas_name: str


@dataclass
class Part:
    """Results of explaining some batches; every row carries its global ``batch`` index.

    Parts of one run combine by concatenating and sorting on ``batch`` (stable): that restores
    the row order of a single job, whatever the sharding.
    """

    subjects: pd.DataFrame
    conservation: pd.DataFrame
    regions: pd.DataFrame
    group_sum: dict  # (method, bin) -> float64 sum of normalised full-grid maps
    group_n: dict  # (method, bin) -> number of maps in the sum
    traces: list  # {"method", "trace", "batch"}
    seconds: float = 0.0


def training_data(cfg, train: TrainRun, stage: str = "explain", error=ExplainError,
                  progress: bool = True):
    """The training run's cohort rebuilt by the data stage (from its cache), split unchanged.

    ``cfg.data`` may override the run's data config (e.g. a moved cache); a cohort that no
    longer reproduces the run's ``split.csv`` is refused.
    """
    from omegaconf import OmegaConf

    from brainage.data.cohort import prepare_data

    data_cfg = OmegaConf.merge(train.cfg.data, cfg.get("data") or {})
    prep = prepare_data(data_cfg, seed=int(train.cfg.get("seed", 0)), run_dir=None,
                        progress=progress)
    if list(prep.table["subject_id"]) != list(train.split["subject_id"]) or \
            list(prep.table["split"]) != list(train.split["split"]):
        raise error(f"the data stage no longer reproduces {train.dir}/split.csv (the cohort "
                    f"or its files changed since training); {stage} with the original data")
    return prep


def load_analyzers(train: TrainRun, input_shape: tuple, methods: dict, stage: str = "explain",
                   error=ExplainError):
    """The trained model, checked against the data's input shape, and one analyzer per method."""
    import keras

    from brainage.relevance import analyzer_from_config

    model = keras.saving.load_model(train.model_path, compile=False)
    expected = tuple(model.input_shape[1:])
    if expected != tuple(input_shape):
        raise error(f"model {train.model_path} expects inputs {expected} but the data are "
                    f"{tuple(input_shape)}; {stage} with the data the model was trained on")
    analyzers = {}
    for name, params in methods.items():
        try:
            analyzers[name] = analyzer_from_config(model, params)
        except (ValueError, KeyError, TypeError) as exc:
            raise error(f"explainer {name}: {exc}") from exc
    return model, analyzers


def prepare_setup(cfg) -> Setup:
    """Resolve the training run, methods and targets, rebuild its data, select the subjects."""
    train = resolve_train_run(cfg)
    methods = method_configs(cfg)
    specs = target_specs(cfg.get("targets", ["predicted"]))
    prep = training_data(cfg, train, progress=bool(cfg.get("progress", True)))
    rows = select_subjects(prep.table, cfg.get("subjects", "test"))
    return Setup(train, methods, specs, prep, rows, str(cfg.atlas.name))


def batch_rows(rows: np.ndarray, batch_size: int) -> list:
    """The selected rows cut into the batches a single job explains, in order."""
    return [rows[i:i + batch_size] for i in range(0, len(rows), batch_size)]


def shard_batches(n_batches: int, shard: tuple[int, int]) -> list:
    """Global indices of the batches of shard ``(i, n)``: every n-th batch from the i-th.

    Whole batches keep every subject in the same batch as in a single job (identical maps);
    taking every n-th balances the shards within one batch.
    """
    i, n = shard
    return list(range(i, n_batches, n))


def _explain(cfg, work: Path) -> dict:
    t0 = time.perf_counter()
    setup = prepare_setup(cfg)
    batches = batch_rows(setup.rows, int(cfg.get("batch_size", 4)))
    part = _explain_batches(cfg, setup, batches, range(len(batches)), work)
    return combine_parts(cfg, setup, [part], work, t0)


def _explain_shard(cfg, work: Path, shard: tuple[int, int]) -> dict:
    """Explain shard ``(i, n)`` into ``work``: maps, ``shard/`` tables and group sums."""
    t0 = time.perf_counter()
    setup = prepare_setup(cfg)
    batch_size = int(cfg.get("batch_size", 4))
    batches = batch_rows(setup.rows, batch_size)
    mine = shard_batches(len(batches), shard)
    if not mine:
        raise ExplainError(f"shard={shard[0]}/{shard[1]} has no subjects: the {len(setup.rows)} "
                           f"selected subjects make {len(batches)} batches of batch_size="
                           f"{batch_size}; use at most {len(batches)} shards or a smaller "
                           "batch_size")
    log.info("shard %d/%d: batches %s of %d", shard[0], shard[1], mine, len(batches))
    part = _explain_batches(cfg, setup, batches, mine, work)
    part.seconds = round(time.perf_counter() - t0, 1)
    from brainage.explain_merge import write_shard

    return write_shard(cfg, setup, part, shard, work)


def _explain_batches(cfg, setup: Setup, batches: list, which, work: Path) -> Part:
    """Explain the batches ``which`` (global indices into ``batches``); maps go to ``work/maps``."""
    from tqdm.auto import tqdm

    from brainage.neuro.atlases import load_atlas
    from brainage.neuro.nifti import reference_header, relevance_image, save_atomic
    from brainage.neuro.regions import region_lookup, region_stats

    train, prep, specs = setup.train, setup.prep, setup.specs
    model, analyzers = load_analyzers(train, prep.input_shape, setup.methods)

    grid = prep.grid
    n_classes = prep.n_classes
    ref_img = _grid_image(grid)
    try:
        atlas_img, atlas_table = load_atlas(cfg.atlas.get("path") or setup.atlas_name,
                                            target_img=ref_img,
                                            threshold=float(cfg.atlas.get("threshold", 25)),
                                            labels=cfg.atlas.get("labels"))
    except Exception as exc:
        raise ExplainError(f"atlas {setup.atlas_name}: {exc}") from exc
    region_ids, region_names = region_lookup(np.asarray(atlas_img.dataobj), atlas_table,
                                             bool(cfg.regions.get("merge_hemispheres", False)))
    voxel_ml = float(abs(np.linalg.det(grid.affine[:3, :3]))) / 1000.0

    (work / "maps").mkdir(exist_ok=True)
    conservation, region_rows, subject_info, traces = [], [], [], []
    group_sum = {}
    group_n = {}
    correct_only = bool(cfg.group.get("correct_only", True))
    which = list(which)
    bar = tqdm(total=sum(len(batches[b]) for b in which) * len(analyzers), desc="explaining",
               unit="map", disable=not cfg.get("progress", True))
    labels = prep.labels()
    for b in which:
        batch = batches[b]
        x = np.asarray(prep.volumes[batch], dtype=np.float32)[..., None]
        y = labels[batch]
        # One header read per subject, shared by every method and target.
        headers = [reference_header(prep.table["path"][r] if "path" in prep.table else None, grid)
                   for r in batch]
        logits = np.asarray(model.predict(x, verbose=0))
        predicted = logits.argmax(axis=1)
        for j, r in enumerate(batch):
            subject_info.append({"batch": b, "subject_id": prep.table["subject_id"][r],
                                 "age": prep.table["age"][r], "bin": int(y[j]),
                                 "predicted": int(predicted[j]), "split": prep.table["split"][r]})
        for name, analyzer in analyzers.items():
            for s_i, spec in enumerate(specs):
                target, tags = _target_tags(spec, predicted, n_classes)
                expl = analyzer.explain(x, target=target, labels=y)
                maps = np.asarray(expl.maps)
                per_class = maps if spec == "all" else maps[None]
                outputs = np.asarray(expl.outputs).reshape(len(tags), len(batch))
                sums = np.asarray(expl.relevance_sum).reshape(len(tags), len(batch))
                errors = np.asarray(expl.rel_error).reshape(len(tags), len(batch))
                neg = np.asarray(expl.negative_share).reshape(len(tags), len(batch))
                targets = np.asarray(expl.target).reshape(len(tags), len(batch))
                for c, tag in enumerate(tags):
                    for j, r in enumerate(batch):
                        sid = prep.table["subject_id"][r]
                        vol = per_class[c, j, ..., 0]
                        descrip = (f"{name} target={tag}:class{int(targets[c, j])} "
                                   f"model={train.dir.name}")
                        img = relevance_image(vol, grid, headers[j], descrip)
                        save_atomic(img, work / "maps" / f"{sid}_{name}_{tag}.nii.gz")
                        conservation.append({
                            "batch": b, "subject_id": sid, "method": name, "target": tag,
                            "output": float(outputs[c, j]), "relevance_sum": float(sums[c, j]),
                            "rel_error": float(errors[c, j]), "class": int(targets[c, j]),
                            "negative_share": float(neg[c, j])})
                        primary = s_i == 0 and (spec != "all" or c == predicted[j])
                        if not primary:
                            continue
                        full = np.asarray(img.dataobj)  # the map on the source grid, float32
                        stats = region_stats(full, region_ids, region_names, voxel_ml)
                        stats.insert(0, "method", name)
                        stats.insert(0, "bin", int(y[j]))
                        stats.insert(0, "subject_id", sid)
                        stats.insert(0, "batch", b)
                        region_rows.append(stats)
                        if not correct_only or predicted[j] == y[j]:
                            total = float(full.sum())
                            if total != 0:
                                key = (name, int(y[j]))
                                # float64: shards' partial sums add up to the single job's sum.
                                group_sum[key] = group_sum.get(key, 0) + full.astype(np.float64) / total
                                group_n[key] = group_n.get(key, 0) + 1
                if getattr(expl, "trace", None) is not None and s_i == 0:
                    traces.append({"method": name, "trace": _trace_rows(expl.trace), "batch": b})
                bar.update(len(batch) if s_i == 0 else 0)
    bar.close()
    return Part(subjects=pd.DataFrame(subject_info, columns=SUBJECT_COLUMNS),
                conservation=pd.DataFrame(conservation, columns=CONSERVATION_COLUMNS),
                regions=pd.concat(region_rows, ignore_index=True)[REGION_COLUMNS],
                group_sum=group_sum, group_n=group_n, traces=traces)


def combine_parts(cfg, setup: Setup, parts: list, work: Path, t0: float,
                  extra: dict | None = None) -> dict:
    """Tables, group maps, figures and report from the parts, whose maps are in ``work/maps``.

    The same code serves a single job (one part) and a merge of shards, so both write the same
    files: rows in single-job order, group maps from the summed float64 partial sums.
    """
    from brainage.neuro.nifti import relevance_image, save_atomic
    from brainage.neuro.regions import summarise_regions
    from brainage import report

    prep, grid, atlas_name = setup.prep, setup.prep.grid, setup.atlas_name
    for sub in ("maps", "group", "regions", "figures"):
        (work / sub).mkdir(exist_ok=True)

    def ordered(tables):
        table = pd.concat(tables, ignore_index=True)
        return table.sort_values("batch", kind="stable").drop(columns="batch").reset_index(drop=True)

    conservation = ordered([p.conservation for p in parts])
    conservation.to_csv(work / "conservation.csv", index=False)
    subjects_table = ordered([p.subjects for p in parts])
    subjects_table.to_csv(work / "subjects.csv", index=False)
    region_subjects = ordered([p.regions for p in parts])
    region_subjects.to_csv(work / "regions" / f"{atlas_name}_subjects.csv", index=False)
    region_summary = summarise_regions(region_subjects)
    region_summary.to_csv(work / "regions" / f"{atlas_name}_summary.csv", index=False)

    group_sum, group_n = {}, {}
    for part in parts:
        for key, acc in part.group_sum.items():
            group_sum[key] = group_sum.get(key, 0) + acc
            group_n[key] = group_n.get(key, 0) + part.group_n[key]
    group_paths = {}
    for (name, k), acc in sorted(group_sum.items()):
        mean = (acc / group_n[(name, k)]).astype(np.float32)
        img = relevance_image(grid.crop(mean), grid, None,
                              f"{name} bin{k} mean share n={group_n[(name, k)]}")
        group_paths[(name, k)] = save_atomic(img, work / "group" / f"{name}_bin{k}_mean.nii.gz")

    overlays = _figure_maps(setup, subjects_table, work, cfg.figures.get("subjects", "all"))
    figures = report.make_figures(work, prep, list(setup.methods), overlays, group_paths,
                                  region_summary, conservation, atlas_name,
                                  int(cfg.regions.get("top_k", 10)))
    traces = [{"method": t["method"], "trace": t["trace"]}
              for t in sorted((t for p in parts for t in p.traces), key=lambda t: t["batch"])]
    summary = {
        "train_dir": str(setup.train.dir), "model_path": str(setup.train.model_path),
        "methods": setup.methods, "targets": setup.specs, "atlas": atlas_name,
        "n_subjects": int(len(subjects_table)), "n_maps": int(len(conservation)),
        "group_counts": {f"{n}_bin{k}": v for (n, k), v in sorted(group_n.items())},
        "max_rel_error": {m: float(g["rel_error"].max()) for m, g in conservation.groupby("method")},
        "seconds": round(time.perf_counter() - t0, 1),
        **(extra or {}),
    }
    report.write_html(work, summary, figures, conservation, region_summary, group_paths,
                      subjects_table, traces)
    return summary


def _figure_maps(setup: Setup, subjects: pd.DataFrame, work: Path, limit) -> list:
    """``(method, bin, subject, row, map path)`` of the primary map of every explained subject.

    Ordered by method, bin and subject; ``limit`` (``figures.subjects``) is ``all`` or how many
    subjects per method get an overlay figure.
    """
    spec = setup.specs[0]
    row_of = {sid: i for i, sid in enumerate(setup.prep.table["subject_id"])}
    ordered = subjects.sort_values(["bin", "subject_id"], kind="stable")
    per_method = len(ordered) if str(limit) == "all" else int(limit)
    out = []
    for method in setup.methods:
        for sid, k, predicted in ordered[["subject_id", "bin", "predicted"]].head(per_method) \
                .itertuples(index=False):
            if spec == "all":
                tag = f"class{predicted}"
            else:
                tag = f"class{spec}" if isinstance(spec, int) else spec
            out.append((method, int(k), sid, row_of[sid],
                        work / "maps" / f"{sid}_{method}_{tag}.nii.gz"))
    return out


def _trace_rows(trace):
    return {str(k): np.asarray(v).tolist() for k, v in dict(trace).items()}


def _grid_image(grid):
    import nibabel as nib

    return nib.Nifti1Image(np.zeros(grid.source_shape, dtype=np.uint8), grid.affine)


def _main(cfg) -> None:
    from brainage.runs import run_stage

    run_dir, summary = run_stage(explain, cfg)
    if "shard" in summary:
        print(f"explained shard {summary['shard']} ({len(summary['subject_ids'])} subjects): "
              f"{run_dir}; combine the shards with merge=<their multirun directory>")
    else:
        print(f"explained {summary['n_subjects']} subjects with "
              f"{', '.join(summary['methods'])}: {run_dir}/report.html")


def main() -> None:
    import hydra

    hydra.main(version_base="1.3", config_path="../configs", config_name="explain")(_main)()


if __name__ == "__main__":
    main()
