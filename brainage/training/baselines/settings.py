"""What the baselines are: ``trainer.baselines`` of the ``train`` config, read once."""
from __future__ import annotations

from dataclasses import dataclass

from brainage.config_values import ConfigReader, at_least, flag, integer, number, sequence, text
from brainage.errors import TrainError
from brainage.training.baselines.catalogue import BASELINES

PENALTIES_EXPECTED = "one or more positive penalties"


@dataclass(frozen=True)
class BaselineSettings:
    """The scikit-learn baselines the training stage fits on the CNN's split.

    Attributes
    ----------
    enabled : bool
    models : tuple of str
        Names from :data:`brainage.training.baselines.catalogue.BASELINES`.
    block_size : int
        Edge, in voxels, of the blocks whose means are the downsampled volume's features.
    atlas : str
        A bundled atlas name (:data:`brainage.neuro.atlases.BUNDLED_ATLASES`) or a NIfTI label
        map, resampled to the cohort's grid for the region-mean features.
    ridge_alphas, logistic_cs : tuple of float
        The penalties tried; the one with the best validation accuracy is kept.
    better_setting : str or None
        A documented setting of the experiment that beats these baselines, named in the run's
        summary when a baseline beats the network.
    """

    enabled: bool
    models: tuple
    block_size: int
    atlas: str
    ridge_alphas: tuple
    logistic_cs: tuple
    better_setting: str | None = None

    @classmethod
    def from_cfg(cls, node) -> "BaselineSettings":
        """Read ``trainer.baselines``; None (a run saved before baselines existed) is off. A block
        that is off is read, but its models and sizes are not checked.

        Raises
        ------
        TrainError
            A key missing or of the wrong kind, an unknown model, a non-positive block size or
            penalty, an empty penalty grid; the message names the key
            (``trainer.baselines.block_size``) and what was expected.
        """
        if node is None:
            return cls(False, (), 1, "", (), ())
        block = ConfigReader(node, "trainer.baselines", TrainError)
        enabled = block.value("enabled", flag, "true or false")
        penalties = _penalties if enabled else sequence(number)
        return cls(
            enabled=enabled,
            models=block.value("models", _models if enabled else sequence(text),
                               f"some of {', '.join(BASELINES)}"),
            block_size=block.value("block_size", at_least(1) if enabled else integer, ">= 1"),
            atlas=block.value("atlas", text, "a bundled atlas name or a NIfTI label map"),
            ridge_alphas=block.value("ridge_alphas", penalties, PENALTIES_EXPECTED),
            logistic_cs=block.value("logistic_cs", penalties, PENALTIES_EXPECTED),
            # Runs saved before the key existed lack it.
            better_setting=block.value("better_setting", text, "a setting in words or null",
                                       optional=True) if block.has("better_setting") else None,
        )


def _models(value) -> tuple:
    """Names of :data:`BASELINES`; unknown ones are named in the message."""
    models = sequence(text)(value)
    unknown = [m for m in models if m not in BASELINES]
    if unknown:
        raise TrainError(f"trainer.baselines.models: unknown {', '.join(unknown)}; expected "
                         f"some of {', '.join(BASELINES)}")
    return models


def _penalties(value) -> tuple:
    """One or more positive numbers."""
    penalties = sequence(number)(value)
    if not penalties or min(penalties) <= 0:
        raise ValueError(value)
    return penalties
