"""A Hydra callback: a run that continues an earlier one runs in that run's directory.

``python -m brainage.train trainer.resume=outputs/train/<run>`` would otherwise get a new,
near-empty ``outputs/train/<date>_<time>/`` holding the resumed epochs' log. With this callback
(``configs/train.yaml``: ``hydra.callbacks``) Hydra's run directory is the resumed run's, so its
log continues in ``<run>/train.log``.
"""
from __future__ import annotations

from pathlib import Path

from hydra.experimental.callback import Callback
from omegaconf import OmegaConf, open_dict, read_write


class ContinueInPlace(Callback):
    """Set ``hydra.run.dir`` to the directory named by the config key ``key`` when it is set.

    Parameters
    ----------
    key : str
        Dotted config key naming the run to continue, e.g. ``trainer.resume``.
    """

    def __init__(self, key: str):
        self.key = key

    def on_run_start(self, config, **kwargs) -> None:
        target = OmegaConf.select(config, self.key)
        if target:
            with read_write(config.hydra), open_dict(config.hydra):
                config.hydra.run.dir = str(Path(str(target)).absolute())
