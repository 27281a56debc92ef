"""Earlier argparse command lines rewritten as Hydra overrides."""
from hydra.core.override_parser.overrides_parser import OverridesParser

from brainage.training.legacy_args import hydra_overrides

SWEEP = dict(positional="sweep_dir", options={"--out": "out", "--over": "over"})
DISTRIBUTE = dict(positional="n_volumes",
                  options={"--cache": "cache", "--batch-size": "batch_size", "--workers": "workers"},
                  switches={"--warm": "warm"}, lists=("workers",))


def _values(overrides):
    parser = OverridesParser.create()
    return {o.key_or_group: o.value() for o in parser.parse_overrides(overrides)}


def test_positional_and_flags_become_overrides():
    assert hydra_overrides(["multirun/train/2026-01-01_10-00-00", "--over", "seed"], **SWEEP) == [
        "sweep_dir=multirun/train/2026-01-01_10-00-00", "over=seed"]
    assert hydra_overrides(["240", "--cache=/c/volumes.npy", "--workers", "1", "2", "4", "--warm",
                            "--batch-size", "4"], **DISTRIBUTE) == [
        "n_volumes=240", "cache=/c/volumes.npy", "workers=[1,2,4]", "warm=true", "batch_size=4"]


def test_new_forms_and_hydra_options_pass_unchanged():
    argv = ["sweep_dir=a", "-m", "hydra.run.dir=x", "--cfg", "job", "--info", "config"]
    assert hydra_overrides(argv, **SWEEP) == argv
    assert hydra_overrides(["--out"], **SWEEP) == ["--out"]  # no value: Hydra reports it


def test_odd_paths_are_quoted_for_hydra():
    odd = "/data/my runs/it's [1]"
    overrides = hydra_overrides([odd, "--out", "~/tables"], **SWEEP)
    assert _values(overrides) == {"sweep_dir": odd, "out": "~/tables"}
