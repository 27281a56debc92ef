"""The four stages (train, explain, evaluate, infer) end to end on a tiny cohort, reduced to a
fingerprint that a refactor must leave unchanged (issue 25: "the outputs of make train / make
explain / make evaluate / make infer on the tiny end-to-end fixtures are identical before and
after"). ``tests/project/test_outputs_unchanged.py`` compares a fresh run with
``golden_outputs.json``.

Each stage runs as ``make <stage>`` runs it, ``python -m brainage.<stage> key=value ...`` in a
process of its own, on the tests' tiny fixtures: :func:`tests.builders.write_cohort` (24
subjects on a 22 x 25 x 21 grid, three bins), ``TINY_MODEL`` cut to one block, six epochs (the
network then classifies the six test subjects; after two it predicted mostly the middle bin and
the explain run had no youngest group); two explain methods; evaluate on six subjects with four
perturbation steps and two randomised subjects; infer with 200 permutations and two label
shuffles. Every seed is fixed, and so is the numerical environment (:data:`STAGE_ENV`): CPU only,
TensorFlow's intra-op pool at two threads and its oneDNN kernels off (Eigen's kernels are built
for one instruction set, oneDNN picks its kernels per CPU), BLAS single-threaded,
``PYTHONHASHSEED``.

Why the environment is pinned, and how the numbers are rounded (measured on the 2-core Xeon this
was written on):

* three runs in fresh processes gave bit-identical outputs: every float of every table, map,
  JSON file and weight equal (only times, pids and Keras' ``shared_object_id`` differ, and are
  dropped), and byte-identical fingerprints; a rerun in the same environment needs no tolerance;
* a change of float summation order in training is amplified, not absorbed. With one intra-op
  thread instead of two, the validation loss after six epochs moved by 7e-4 (relative), a map's
  maximum by 8 %, AOPC's margin over the random map by 20 %; with oneDNN's kernels instead of
  Eigen's, the training loss moved by 5e-6 and AOPC by 1e-4. No rounding hides that, so the
  environment is pinned instead;
* what the rounding has to absorb is a refactor that reorders arithmetic after the network (a
  mean taken another way, float32 against float64 accumulation): about 1e-7 relative, up to 1e-5
  where signed sums cancel. Floats are stored with :data:`SIGNIFICANT` = 5 significant digits
  and compared to a relative :data:`RTOL` of 1e-4, at least one unit of the fifth digit, so a
  value that rounds the other way at a digit boundary is no change. The oneDNN switch above, the
  smallest real change measured, then shows in 23 files (344 values: history, logits, AOPC, maps,
  t-maps); with 4 digits (1e-3) it would show in 10, with 6 (1e-5) in 79, a tolerance only ten
  times the noise that cancelling sums can have;
* float32 round-off residuals are noise at any digit: a conservation error of 2.8e-8 became
  1.2e-11 with one thread. Values under keys or files named like :data:`ROUNDOFF` (conservation
  errors) are compared to an absolute :data:`ROUNDOFF_ATOL` of 1e-6, as
  ``tests.builders.assert_same_table`` does; everything else to :data:`ATOL` = 1e-12 (a standard
  error of equal values came out 0 or 5e-17). Numbers inside text (``verdict.md``, sentences in
  JSON) are compared to one unit of their last printed digit plus 1e-6 (the verdict prints the
  conservation error, 2.0e-07 or 1.1e-07, as round-off goes).

The fingerprint of a run keeps what the stages compute and drops what changes from run to run:

* CSV tables: column names and every value, floats to :data:`SIGNIFICANT` significant digits;
* JSON and YAML: the same, keys that vary between runs (times, durations, hosts, pids, commands,
  library versions, devices, timings) removed (:func:`volatile`), the temporary folder written
  ``<base>``;
* NIfTI and ``.npy``: shape, dtype, affine, the header's display range and description, the
  data's sum, absolute sum, extremes, non-zero count and quantiles, and a volume's absolute
  values summed plane by plane along each axis (a map moved by a voxel or flipped changes these);
* ``.keras`` models and ``.h5`` weights: the architecture (``config.json``) and each array's
  shape and the same statistics;
* Markdown: its lines, the temporary folder written ``<base>``;
* figures, HTML reports, the viewer's data, logs and Hydra's runtime file: existence only
  (they embed times and paths, and show what the files above hold).

Regenerate the golden file after an intended change (from the repository root, with the
project's virtualenv)::

    python -m tests.project.golden --write

``--print DIR`` runs the pipeline into ``DIR`` and prints the fingerprint instead.
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).with_name("golden_outputs.json")
STAGES = ("train", "explain", "evaluate", "infer")

SIGNIFICANT = 5
"""Significant digits every float is stored with (the module docstring says why)."""
RTOL = 1e-4
"""Relative tolerance of the comparison: at least one unit of the fifth significant digit."""
ATOL = 1e-12
"""Absolute tolerance near zero (a standard error of equal values is 0 or 5e-17)."""
ROUNDOFF = re.compile(r"conservation|rel_error")
"""Keys and files whose numbers are float32 round-off residuals (conservation errors)."""
ROUNDOFF_ATOL = 1e-6
"""Their absolute tolerance, as ``tests.builders.assert_same_table`` uses for ``rel_error``."""
TEXT_ATOL = 1e-6
"""Numbers printed in text: one unit of their last digit, plus this."""

# Keys whose values change from run to run or machine to machine, dropped wherever they occur.
VOLATILE_KEYS = frozenset({
    "started", "ended", "resumed", "pid", "host", "hostname", "command", "date", "time",
    "timestamp", "created", "seconds", "phase_seconds", "timings", "elapsed", "duration", "git",
    "git_commit", "commit", "version", "versions", "python", "platform", "devices",
    "keras_version", "date_saved", "shared_object_id", "nilearn", "numpy", "scipy", "sklearn",
    "tensorflow", "jax", "torch", "nibabel", "pandas",
})
# ..._seconds, ..._s, ..._s_per_map, ..._per_s, ..._per_s_after_first_epoch, ..._version
VOLATILE_PATTERN = re.compile(r"(^|_)(seconds|s|per_s)(_|$)|_time$|_version$")
# Files whose whole content is run-specific (Hydra's runtime settings, logs): existence only.
EXISTENCE_ONLY = (".png", ".html", ".log", ".svg", ".pdf", ".txt", ".js")
EXISTENCE_NAMES = frozenset({"hydra.yaml"})

# ``make <stage>`` in a process of its own, in a fixed numerical environment (module docstring).
STAGE_ENV = {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu", "KERAS_BACKEND": "tensorflow",
             "TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "1",
             "TF_ENABLE_ONEDNN_OPTS": "0", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
             "MKL_NUM_THREADS": "1", "PYTHONHASHSEED": "0", "TF_CPP_MIN_LOG_LEVEL": "3",
             "TQDM_DISABLE": "1", "MPLBACKEND": "Agg"}

# The tiny model of tests.builders cut to one block, six epochs (it then learns the bins).
TRAIN = ["seed=0", "trainer.epochs=6", "model.widths=[2]", "trainer.learning_rate=3e-3"]
EXPLAIN = ["progress=false", "explainer=[dtd,gradient_x_input]", "subjects=all", "batch_size=8",
           "targets=[predicted]", "figures.subjects=1"]
EVALUATE = ["progress=false", "explainer=[dtd,gradient_x_input]", "subjects=all",
            "subjects_limit=6", "batch_size=6", "perturbation.patch=2", "perturbation.steps=4",
            "perturbation.patches_per_step=3", "randomisation.subjects=2", "class_maps.subjects=2",
            "localisation.brain_threshold=0.05", "localisation.threshold=0.1", "seed=0"]
INFER = ["voxelwise.n_perm=200", "regions.n_perm=200", "null_check.shuffles=2", "seed=0",
         "n_jobs=1"]

# The class signal of write_cohort's volumes: the crop's box [4:12, 5:13, 4:11] at offset (1, 2, 1).
BOX = (slice(5, 13), slice(7, 15), slice(5, 12))
CONTROL = (slice(13, 20), slice(7, 15), slice(5, 12))
TOP = (slice(None), slice(None), slice(14, None))


# --------------------------------------------------------------------------- the pipeline

def write_inputs(base: Path) -> dict:
    """The tiny cohort (24 subjects, three bins), an atlas on its grid and a ground truth."""
    import pandas as pd

    from tests.builders import TRAIN_SOURCE, write_cohort, write_gm

    cohort = write_cohort(base / "cohort", n_per_bin=8, seed=0)
    labels = np.zeros(TRAIN_SOURCE, np.int16)
    labels[TOP] = 3
    labels[BOX] = 1
    labels[CONTROL] = 2
    atlas = write_gm(base / "atlas" / "atlas.nii.gz", labels)
    names = base / "atlas" / "atlas.csv"
    pd.DataFrame({"index": [1, 2, 3], "name": ["Left_Box", "Right_Control", "Top"]}).to_csv(
        names, index=False)
    truth = base / "ground_truth"
    effect = np.zeros(TRAIN_SOURCE, np.float32)
    effect[BOX] = 0.6
    write_gm(truth / "age_effect.nii.gz", effect)
    regions = np.zeros(TRAIN_SOURCE, np.int16)
    regions[BOX] = 1
    regions[CONTROL] = 2
    write_gm(truth / "regions.nii.gz", regions)
    pd.DataFrame({"name": ["Box", "Control"], "index": [1, 2], "role": ["ageing", "control"],
                  "factor": [1.0, 0.0]}).to_csv(truth / "regions.csv", index=False)
    return {"cohort": cohort, "atlas": atlas, "labels": names, "ground_truth": truth}


def stage_overrides(base: Path, inputs: dict) -> tuple[dict, dict]:
    """Each stage's command-line overrides, reading the previous stages' run directories, and
    those run directories."""
    from tests.builders import TINY_MODEL, cohort_overrides

    runs = {stage: base / "outputs" / stage / "golden" for stage in STAGES}
    atlas = ["atlas=custom", f"atlas.path={inputs['atlas']}", f"atlas.labels={inputs['labels']}"]
    return {
        "train": [*TINY_MODEL, *cohort_overrides(inputs["cohort"], base / "cache"), *TRAIN],
        "explain": [f"train_dir={runs['train']}", *atlas, *EXPLAIN],
        "evaluate": [f"train_dir={runs['train']}",
                     f"localisation.ground_truth={inputs['ground_truth']}", *EVALUATE],
        "infer": [f"explain_dir={runs['explain']}", f"outputs_dir={base / 'outputs'}", *INFER],
    }, runs


def run_pipeline(base: Path, repo: Path = REPO, log=None) -> dict:
    """Run the four stages in sequence into ``base/outputs/<stage>/golden``; their directories."""
    base = Path(base)
    base.mkdir(parents=True, exist_ok=True)
    overrides, runs = stage_overrides(base, write_inputs(base))
    env = {**os.environ, **STAGE_ENV, "PYTHONPATH": str(repo)}
    _check_package(repo, env)
    for stage in STAGES:
        t0 = time.perf_counter()
        result = subprocess.run(
            [sys.executable, "-m", f"brainage.{stage}", *overrides[stage],
             f"hydra.run.dir={runs[stage]}"], cwd=base, env=env, capture_output=True, text=True,
            timeout=600)
        if result.returncode != 0:
            raise RuntimeError(f"brainage.{stage} exited {result.returncode}:\n"
                               f"{result.stderr[-4000:]}")
        if log:
            log(f"{stage}: {time.perf_counter() - t0:.1f} s")
    return runs


def _check_package(repo: Path, env: dict) -> None:
    """The stages import ``brainage`` from ``repo`` (not an editable install of another tree)."""
    found = subprocess.run([sys.executable, "-c", "import brainage; print(brainage.__file__)"],
                           env=env, capture_output=True, text=True, check=True).stdout.strip()
    if not Path(found).resolve().is_relative_to(Path(repo).resolve()):
        raise RuntimeError(f"the stages would import brainage from {found}, not from {repo}")


# --------------------------------------------------------------------------- the fingerprint

def significant(x: float, digits: int = SIGNIFICANT):
    """``x`` to ``digits`` significant digits; NaN and infinities as strings (valid JSON)."""
    x = float(x)
    if math.isnan(x) or math.isinf(x):
        return str(x)
    if x == 0:
        return 0.0
    return float(f"{x:.{digits - 1}e}")


def volatile(key) -> bool:
    """Whether a JSON/YAML key or a table column holds something that varies between runs."""
    key = str(key).lower()
    return key in VOLATILE_KEYS or VOLATILE_PATTERN.search(key) is not None


def normalise(value, base: str):
    """JSON-like ``value`` with volatile keys dropped, floats rounded, ``base`` as ``<base>``."""
    if isinstance(value, dict):
        return {str(k): normalise(v, base) for k, v in value.items() if not volatile(k)}
    if isinstance(value, (list, tuple)):
        return [normalise(v, base) for v in value]
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return significant(value)
    if isinstance(value, str):
        return value.replace(base, "<base>")
    return normalise(str(value), base)


def _table(path: Path, base: str) -> dict:
    import pandas as pd

    sep = "\t" if path.suffix == ".tsv" else ","
    table = pd.read_csv(path, sep=sep, keep_default_na=False, na_values=[""])
    columns = {}
    for name in table.columns:
        if volatile(name):  # history.csv's seconds per epoch
            continue
        column = table[name]
        if column.dtype.kind == "f":
            values = [None if math.isnan(v) else significant(v) for v in column]
        elif column.dtype.kind in "iub":
            values = [v.item() if hasattr(v, "item") else v for v in column]
        else:  # text, or numbers mixed with text ("n/a"): each number compared as a number
            values = [_cell(v, base) for v in column]
        columns[str(name)] = values
    return {"kind": "table", "rows": len(table), "columns": columns}


def _cell(value, base: str):
    if isinstance(value, float) and math.isnan(value):
        return None
    try:
        return significant(float(value))
    except (TypeError, ValueError):
        return normalise(str(value), base)


def array_stats(data) -> dict:
    """Shape, dtype, and for numbers: non-finite and non-zero counts, sum, absolute sum,
    extremes and the 1, 10, 50, 90 and 99 % quantiles of the finite values."""
    data = np.asarray(data)
    out = {"shape": list(data.shape), "dtype": str(data.dtype)}
    if data.size == 0 or data.dtype.kind not in "fiub":
        return out
    values = data.astype(np.float64)
    finite = values[np.isfinite(values)]
    out.update({"non_finite": int(values.size - finite.size), "nonzero": int(np.count_nonzero(finite))})
    if finite.size:
        q = np.quantile(finite, [0.01, 0.1, 0.5, 0.9, 0.99])
        out.update({"sum": significant(finite.sum()), "abs_sum": significant(np.abs(finite).sum()),
                    "min": significant(finite.min()), "max": significant(finite.max()),
                    "quantiles_1_10_50_90_99": [significant(v) for v in q]})
    return out


def _profiles(data) -> dict:
    """A volume's absolute values summed over every plane along each axis: a map moved by one
    voxel, or flipped, keeps its sum and quantiles but not these."""
    data = np.asarray(data)
    if data.ndim != 3 or data.dtype.kind not in "fiub":
        return {}
    magnitude = np.abs(np.nan_to_num(data.astype(np.float64)))
    others = [tuple(a for a in range(3) if a != axis) for axis in range(3)]
    return {"abs_profiles": [[significant(v) for v in magnitude.sum(axis=o)] for o in others]}


def _nifti(path: Path, base: str) -> dict:
    import nibabel as nib

    img = nib.load(str(path))
    header = img.header
    data = np.asanyarray(img.dataobj)
    out = {"kind": "nifti", **array_stats(data), **_profiles(data),
           "affine": [[significant(v) for v in row] for row in img.affine],
           "cal": [significant(header["cal_min"]), significant(header["cal_max"])],
           "descrip": normalise(header["descrip"].item().decode(errors="replace"), base)}
    return out


def _h5_arrays(source) -> dict:
    """Every dataset of an HDF5 file (a path or a file object), summarised."""
    import h5py

    arrays = {}
    with h5py.File(source, "r") as h5:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                arrays[name] = array_stats(obj[()])
        h5.visititems(visit)
    return arrays


def _keras(path: Path, base: str) -> dict:
    """A ``.keras`` archive: its architecture and each weight array's summary."""
    with zipfile.ZipFile(path) as archive:
        names = sorted(archive.namelist())
        config = json.loads(archive.read("config.json")) if "config.json" in names else None
        weights = (_h5_arrays(io.BytesIO(archive.read("model.weights.h5")))
                   if "model.weights.h5" in names else {})
    return {"kind": "keras", "members": names, "config": normalise(config, base),
            "weights": weights}


def fingerprint_file(path: Path, base: str):
    """One output file's fingerprint (see the module docstring)."""
    suffix = "".join(path.suffixes[-2:]) if path.name.endswith(".nii.gz") else path.suffix
    if path.name in EXISTENCE_NAMES or suffix in EXISTENCE_ONLY:
        return {"kind": "exists"}
    if suffix in (".csv", ".tsv"):
        return _table(path, base)
    if suffix == ".json":
        return {"kind": "json", "value": normalise(json.loads(path.read_text()), base)}
    if suffix in (".yaml", ".yml"):
        import yaml

        return {"kind": "yaml", "value": normalise(yaml.safe_load(path.read_text()), base)}
    if suffix in (".nii", ".nii.gz"):
        return _nifti(path, base)
    if suffix == ".npy":
        data = np.load(path, allow_pickle=False)
        return {"kind": "npy", **array_stats(data), **_profiles(data)}
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as npz:
            return {"kind": "npz", "arrays": {k: array_stats(npz[k]) for k in sorted(npz.files)}}
    if suffix == ".keras":
        return _keras(path, base)
    if suffix == ".h5":
        return {"kind": "h5", "arrays": _h5_arrays(path)}
    if suffix == ".md":
        return {"kind": "text", "lines": path.read_text().replace(base, "<base>").splitlines()}
    return {"kind": "exists"}


def fingerprint(runs: dict, base: Path) -> dict:
    """Every file under each stage's run directory, keyed ``<stage>/<relative path>``."""
    base = str(Path(base))
    files = {}
    for stage, run in runs.items():
        for path in sorted(Path(run).rglob("*")):
            if path.is_file():
                files[f"{stage}/{path.relative_to(run).as_posix()}"] = fingerprint_file(path, base)
    return files


# --------------------------------------------------------------------------- the comparison

NUMBER = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _same_number(a, b, atol: float) -> bool:
    return math.isclose(a, b, rel_tol=RTOL, abs_tol=atol)


def _last_digit(token: str) -> float:
    """One unit of the last printed digit of a number (``0.054`` → 0.001, ``2.0e-07`` → 1e-08)."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
    return 10.0 ** (int(exponent or 0) - decimals)


def same_text(a: str, b: str) -> bool:
    """Equal texts, or the same words with each printed decimal within one unit of its last
    digit (plus :data:`TEXT_ATOL`): a display value that rounds the other way is no change.
    Integers (counts, bin and subject numbers) must be equal."""
    words_a, words_b = NUMBER.split(a), NUMBER.split(b)
    if words_a != words_b:
        return False
    for x, y in zip(NUMBER.findall(a), NUMBER.findall(b)):
        if x == y:
            continue
        if not any(c in x + y for c in ".eE"):  # counts, bins, subject numbers: exact
            return False
        unit = max(_last_digit(x), _last_digit(y))
        if abs(float(x) - float(y)) > unit * (1 + 1e-9) + TEXT_ATOL:
            return False
    return True


def differences(old, new, where: str = "") -> list:
    """Every place ``new`` differs from ``old``, as ``where: old → new`` (numbers to
    :data:`RTOL` and :data:`ATOL`, or :data:`ROUNDOFF_ATOL` under :data:`ROUNDOFF` keys; text by
    :func:`same_text`)."""
    if isinstance(old, dict) and isinstance(new, dict):
        out = []
        for key in sorted(set(old) | set(new)):
            here = f"{where}/{key}" if where else key
            if key not in new:
                out.append(f"{here}: removed (was {_short(old[key])})")
            elif key not in old:
                out.append(f"{here}: new ({_short(new[key])})")
            else:
                out += differences(old[key], new[key], here)
        return out
    if isinstance(old, list) and isinstance(new, list):
        if len(old) != len(new):
            return [f"{where}: {len(old)} → {len(new)} entries ({_short(old)} → {_short(new)})"]
        out = []
        for i, (a, b) in enumerate(zip(old, new)):
            out += differences(a, b, f"{where}[{i}]")
        return out
    if _is_number(old) and _is_number(new):
        atol = ROUNDOFF_ATOL if ROUNDOFF.search(where) else ATOL
        return [] if _same_number(old, new, atol) else [f"{where}: {old!r} → {new!r}"]
    if isinstance(old, str) and isinstance(new, str):
        return [] if same_text(old, new) else [f"{where}: {_short(old)} → {_short(new)}"]
    return [] if old == new else [f"{where}: {_short(old)} → {_short(new)}"]


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value, limit: int = 200) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= limit else text[:limit] + "…"


def compare(old_files: dict, new_files: dict) -> dict:
    """``{file: [differences]}`` for every file whose fingerprint changed, appeared or went."""
    changes = {}
    for name in sorted(set(old_files) | set(new_files)):
        if name not in new_files:
            changes[name] = [f"{name}: no longer written (was {_short(old_files[name])})"]
        elif name not in old_files:
            changes[name] = [f"{name}: newly written ({_short(new_files[name])})"]
        else:
            found = differences(old_files[name], new_files[name], name)
            if found:
                changes[name] = found
    return changes


def describe(changes: dict, generated_from, shown: int = 200, fingerprint_file=None) -> str:
    """A failure message: every changed file with its count, then up to ``shown`` differences
    (``file/key: old → new``), then how to regenerate the golden file."""
    lines = [f"{sum(map(len, changes.values()))} differences in {len(changes)} files from "
             f"{GOLDEN.name} (generated from {generated_from}):",
             *(f"  {name}: {len(found)}" for name, found in changes.items()), "old → new:"]
    every = [line for found in changes.values() for line in found]
    lines += [f"  {line}" for line in every[:shown]]
    if len(every) > shown:
        lines.append(f"  … and {len(every) - shown} more"
                     + (f"; the new fingerprint is {fingerprint_file}" if fingerprint_file else ""))
    lines.append(regenerate_hint())
    return "\n".join(lines)


def regenerate_hint() -> str:
    return ("If the change is intended, regenerate the golden file from the repository root with "
            "`.venv/bin/python -m tests.project.golden --write` and commit it with the change "
            "(it records the commit it was generated from).")


# --------------------------------------------------------------------------- command line

def _git_head(repo: Path) -> str | None:
    try:
        return subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def _uncommitted(repo: Path) -> list:
    """Files under ``brainage/`` and ``configs/`` that differ from the commit (what a golden file
    generated from a working tree includes beyond ``generated_from``)."""
    try:
        out = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--", "brainage",
                              "configs"], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return []
    return sorted(line[3:] for line in out.splitlines() if not line.endswith(".pyc"))


def golden_document(files: dict, repo: Path = REPO) -> dict:
    return {"generated_from": _git_head(repo), "uncommitted_changes": _uncommitted(repo),
            "regenerate": "python -m tests.project.golden --write",
            "significant_digits": SIGNIFICANT, "rtol": RTOL, "atol": ATOL,
            "roundoff_atol": ROUNDOFF_ATOL, "environment": STAGE_ENV,
            "stages": {s: " ".join(o) for s, o in (("train", TRAIN), ("explain", EXPLAIN),
                                                    ("evaluate", EVALUATE), ("infer", INFER))},
            "files": files}


def dump(document: dict) -> str:
    """Sorted, indented JSON with each list of plain values on one line (a table's column)."""
    return _json(document, 0) + "\n"


def _json(value, depth: int) -> str:
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(str(k))}: {_json(value[k], depth + 1)}" for k in sorted(value)]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        return "[\n" + ",\n".join(inner + _json(v, depth + 1) for v in value) + f"\n{pad}]"
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", action="store_true", help=f"regenerate {GOLDEN.name}")
    action.add_argument("--print", metavar="DIR", help="run into DIR, print the fingerprint")
    parser.add_argument("--out", help="with --write: write here instead")
    args = parser.parse_args(argv)
    say = lambda text: print(text, file=sys.stderr)  # noqa: E731
    if args.print:
        base = Path(args.print).resolve()
        print(dump(golden_document(fingerprint(run_pipeline(base, log=say), base))), end="")
        return 0
    import tempfile

    with tempfile.TemporaryDirectory(prefix="golden-") as tmp:
        base = Path(tmp).resolve()
        document = golden_document(fingerprint(run_pipeline(base, log=say), base))
    out = Path(args.out) if args.out else GOLDEN
    out.write_text(dump(document))
    say(f"wrote {out} ({len(document['files'])} files, from {document['generated_from']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
