"""Worker processes (spawn, one ITK thread each), and a subject killed outright while written."""
import json
import subprocess
import sys
import textwrap

import nibabel as nib
import numpy as np
import pytest
from omegaconf import OmegaConf

from brainage.data.derivative import WORK_DIR, derivative_dir, is_complete, subject_file
from brainage.preprocessing.pipeline import preprocess_cohort
from tests.builders import REPO
from tests.preprocessing.conftest import IDS
from tests.preprocessing.fake_steps import fake_preprocess


@pytest.mark.slow
def test_two_worker_processes_each_on_one_thread(raw, settings_for, tmp_path):
    settings = settings_for(raw, "workers=2")
    assert preprocess_cohort(settings, tmp_path, preprocess=fake_preprocess)["n_preprocessed"] == 6
    derivative = derivative_dir(raw, tmp_path / "derivatives")
    for sid in IDS:
        made = nib.load(str(subject_file(derivative, sid, "modulated"))).get_fdata()
        expected = fake_preprocess(raw / sid / "anat" / f"{sid}_T1w.nii.gz", sid, settings.steps).gm_modulated
        np.testing.assert_array_equal(made, expected.get_fdata())
        assert json.loads(subject_file(derivative, sid, "record").read_text())["seconds"]["itk_threads"] == 1


@pytest.mark.slow
def test_a_subject_killed_while_written_is_redone_whole(raw, configure, tmp_path):
    config = tmp_path / "preprocess.yaml"
    OmegaConf.save(configure(raw), config)
    script = textwrap.dedent(f"""
        import os, signal
        import nibabel as nib
        from omegaconf import OmegaConf
        from brainage.preprocessing import subject
        from brainage.preprocessing.pipeline import preprocess_cohort
        from brainage.preprocessing.settings import PreprocessSettings
        from tests.preprocessing.fake_steps import fake_preprocess

        def killed(result, work, subject_id):  # SIGKILL after the first file: no cleanup runs
            if subject_id == "sub-02":
                work.mkdir(parents=True)
                nib.save(result.gm_modulated, str(work / "half.nii.gz"))
                os.kill(os.getpid(), signal.SIGKILL)
            written(result, work, subject_id)

        written, subject._write_images = subject._write_images, killed
        settings = PreprocessSettings.from_cfg(OmegaConf.load({str(config)!r}))
        preprocess_cohort(settings, {str(tmp_path)!r}, preprocess=fake_preprocess)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == -9, result.stderr[-2000:]
    derivative = derivative_dir(raw, tmp_path / "derivatives")
    assert [sid for sid in IDS if is_complete(derivative, sid)] == ["sub-00", "sub-01"]
    assert not (derivative / "sub-02").exists() and (derivative / WORK_DIR / "sub-02").exists()
    (tmp_path / "rerun").mkdir()
    from brainage.preprocessing.settings import PreprocessSettings

    summary = preprocess_cohort(PreprocessSettings.from_cfg(OmegaConf.load(config)), tmp_path / "rerun",
                                preprocess=fake_preprocess)
    assert summary["n_skipped"] == 2 and summary["n_preprocessed"] == 4
    assert all(is_complete(derivative, sid) for sid in IDS) and not (derivative / WORK_DIR).exists()


def test_a_dead_worker_process_is_one_line_that_says_the_done_subjects_are_kept():
    from concurrent.futures import Future
    from concurrent.futures.process import BrokenProcessPool

    from brainage.preprocessing.runner import _result
    from brainage.preprocessing.steps import PreprocessError

    future = Future()
    future.set_exception(BrokenProcessPool("A process in the process pool was terminated abruptly"))
    with pytest.raises(PreprocessError, match=r"^a worker process died \(A process .*\), perhaps out of memory; "
                                              r"the subjects finished so far are kept"):
        _result(future)


@pytest.mark.slow
def test_ctrl_c_stops_worker_processes_in_the_middle_of_their_subjects(raw, tmp_path):
    import multiprocessing
    import signal
    import time

    from brainage.preprocessing.runner import run_jobs
    from brainage.preprocessing.steps import StepSettings
    from brainage.preprocessing.subject import Job
    from tests.preprocessing.fake_steps import slow_preprocess

    def ctrl_c(*_):
        raise KeyboardInterrupt

    jobs = [Job(sid, str(raw / sid / "anat" / f"{sid}_T1w.nii.gz"), str(tmp_path / "derivative"), StepSettings(), 60,
                slow_preprocess) for sid in IDS]
    previous = signal.signal(signal.SIGALRM, ctrl_c)
    signal.alarm(3)
    started = time.perf_counter()
    try:
        with pytest.raises(KeyboardInterrupt):
            run_jobs(jobs, workers=2, on_bad_subject="fail", progress=False)
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert time.perf_counter() - started < 10  # not the minute each subject takes
    assert not multiprocessing.active_children() and not (tmp_path / "derivative").exists()
