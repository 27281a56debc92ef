"""What the baselines are: ``trainer.baselines`` of the ``train`` config, read once."""
from __future__ import annotations

from dataclasses import dataclass

from brainage.errors import TrainError
from brainage.training.baselines.catalogue import BASELINES


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
        """Read ``trainer.baselines``; None (a run saved before baselines existed) is off.

        Raises
        ------
        TrainError
            An unknown model, a non-positive block size or penalty, an empty penalty grid.
        """
        if node is None:
            return cls(False, (), 1, "", (), ())
        settings = cls(
            enabled=bool(node.enabled),
            models=tuple(str(m) for m in node.models),
            block_size=int(node.block_size),
            atlas=str(node.atlas),
            ridge_alphas=tuple(float(a) for a in node.ridge_alphas),
            logistic_cs=tuple(float(c) for c in node.logistic_cs),
            better_setting=node.get("better_setting"),
        )
        if settings.enabled:
            settings._check()
        return settings

    def _check(self) -> None:
        unknown = [m for m in self.models if m not in BASELINES]
        if unknown:
            raise TrainError(f"trainer.baselines.models: unknown {', '.join(unknown)}; expected "
                             f"some of {', '.join(BASELINES)}")
        if self.block_size < 1:
            raise TrainError(f"trainer.baselines.block_size={self.block_size}; expected >= 1")
        for key in ("ridge_alphas", "logistic_cs"):
            values = getattr(self, key)
            if not values or min(values) <= 0:
                raise TrainError(f"trainer.baselines.{key}={list(values)}; expected one or more "
                                 "positive penalties")
