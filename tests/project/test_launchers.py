"""The Hydra launcher configs (submitit local and SLURM) compose for every stage."""
import pytest
import submitit
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from tests.builders import REPO

# --------------------------------------------------------------------------- launchers

# Our launcher files share the plugin's schema names, so Hydra validates them against it (and says so).
SCHEMA_MATCHING = pytest.mark.filterwarnings(r"ignore:\s*'hydra/launcher/submitit_\w+' is validated")


def compose_with_hydra(config_name, *overrides):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose(config_name, overrides=list(overrides), return_hydra_config=True)


@SCHEMA_MATCHING
def test_slurm_launcher_config_makes_a_valid_sbatch_script(tmp_path, monkeypatch):
    from hydra.utils import instantiate
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    cfg = compose_with_hydra("explain", "hydra/launcher=submitit_slurm",
                             "hydra.launcher.partition=gpu", f"hydra.sweep.dir={tmp_path}",
                             "hydra.job.name=explain")
    launcher = instantiate(cfg.hydra.launcher)
    assert type(launcher).__name__ == "SlurmLauncher"
    # What SlurmLauncher.launch hands to submitit, without a cluster (submitit looks for srun).
    monkeypatch.setattr(submitit.SlurmExecutor, "affinity", classmethod(lambda cls: 1))
    params = dict(launcher.params)
    executor = submitit.AutoExecutor(folder=params.pop("submitit_folder"), cluster="slurm",
                                     slurm_max_num_timeout=params.pop("max_num_timeout"))
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    executor.update_parameters(**{k if k in base else f"slurm_{k}": v for k, v in params.items()})
    script = executor._executor._make_submission_file_text("python job.py", "0")
    for line in ("--gpus-per-node=1", "--cpus-per-task=8", "--mem=32GB", "--time=240",
                 "--partition=gpu", "--ntasks-per-node=1", "--job-name=explain"):
        assert f"#SBATCH {line}" in script, line


@SCHEMA_MATCHING
@pytest.mark.parametrize("config_name", ["train", "explain", "sweep", "distribute"])
def test_local_launcher_config_composes_for_every_stage(config_name, tmp_path):
    cfg = compose_with_hydra(config_name, "hydra/launcher=submitit_local",
                             f"hydra.sweep.dir={tmp_path}")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("submitit_launcher.LocalLauncher")
    assert launcher.gpus_per_node == 0 and launcher.timeout_min > 0
    assert OmegaConf.select(compose_with_hydra("train"), "trainer.distribution") == "auto"
