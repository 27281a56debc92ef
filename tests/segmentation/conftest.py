"""A tiny synthetic cohort around the right hippocampus and the U-Net stage's config for it."""
import numpy as np
import pytest

from brainage.neuro.grid import Grid
from tests.builders import compose_stage

# 3 mm voxels, LAS, an uneven box around the right hippocampus (MNI x 6..51, y -54..3, z -42..9).
AFFINE = np.array([[-3.0, 0, 0, 51], [0, 3.0, 0, -54], [0, 0, 3.0, -42], [0, 0, 0, 1.0]])
SHAPE = (16, 20, 18)
CROP = [12, 14, 14]  # the right hippocampus spans 9 x 12 x 13 voxels of 3 mm
TINY = ["structure.labels=[Right_Hippocampus]", f"crop.shape={CROP}", "network.filters=[2,4]",
        "fit.epochs=2", "fit.batch_size=2", "fit.max_train_subjects=null", "explain.subjects=2"]


@pytest.fixture(scope="package")
def hippocampus_cohort(tmp_path_factory):
    """12 subjects (4 per age bin) of the synthetic generator on the small grid."""
    from brainage.data.synthetic import generate_cohort

    root = tmp_path_factory.mktemp("unet") / "cohort"
    return generate_cohort(root, 12, seed=1, age_distribution="balanced",
                           grid=Grid.build(AFFINE, SHAPE), n_jobs=1, progress=False)


def compose_unet(root, cache, *overrides):
    """The ``unet`` config on the tiny cohort (read as a PAC-layout cohort), tiny sizes."""
    return compose_stage("unet", "data=pac2019", f"data.root={root}", "data.n_subjects=null",
                         "data.source_shape=null", "data.crop_shape=null", "data.crop_offset=null",
                         f"data.cache.dir={cache}", "data.split=[0.5,0.25,0.25]", *TINY, *overrides)
