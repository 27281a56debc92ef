"""The infer stage says what it tests and shows a bar named by the method it is at."""
import logging

from brainage.infer import infer
from tests.inference.synthetic_runs import compose_infer


def test_infer_logs_what_it_tests_and_shows_a_bar_per_method(tiny_explain, tmp_path, caplog,
                                                             capsys):
    with caplog.at_level(logging.INFO, logger="brainage.inference.analysis"):
        infer(compose_infer(tiny_explain, "measure=raw", "methods=[dtd]", "voxelwise.n_perm=200",
                            "regions.n_perm=200", "null_check.shuffles=2"), tmp_path)
    assert any("voxel- and region-wise, then under 2 label shuffles" in r.getMessage()
               for r in caplog.records)
    err = capsys.readouterr().err
    assert "testing: dtd" in err and "testing: dtd (null check)" in err
