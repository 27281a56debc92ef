"""The networks the stages train, each one Keras functional graph with stable layer names (the
relevance engine addresses layers by them), picked by ``model.architecture``:

* :mod:`brainage.model.taylor2019` — the four-block 3D CNN of Taylor 2019 (seed 000, section 3.1);
* :mod:`brainage.model.resnet3d` — a small residual 3D CNN (issue #14);
* :mod:`brainage.model.sfcn` — the SFCN of Peng et al. 2021 (issue #14);
* :mod:`brainage.model.parts` — checks and the age-regression head every architecture shares;
* :mod:`brainage.model.settings` — the ``model`` config group read once (:class:`ModelSettings`).
"""

from brainage.model.parts import age_head, fold_age_head
from brainage.model.resnet3d import build_resnet3d
from brainage.model.settings import (
    ARCHITECTURES,
    REGRESSION_LOSSES,
    TASKS,
    ModelSettings,
    model_from_config,
)
from brainage.model.sfcn import build_sfcn
from brainage.model.taylor2019 import (
    SEED_INPUT_SHAPE,
    build_model,
    feature_shape,
    minimum_input_size,
)

__all__ = ["ARCHITECTURES", "REGRESSION_LOSSES", "SEED_INPUT_SHAPE", "TASKS", "ModelSettings", "age_head",
           "build_model", "build_resnet3d", "build_sfcn", "feature_shape", "fold_age_head",
           "minimum_input_size", "model_from_config"]
