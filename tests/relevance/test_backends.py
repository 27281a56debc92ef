"""TensorFlow and JAX give the same maps (the GPU machine only has JAX)."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from brainage.relevance import METHODS, make_analyzer

from .nets import gm_volume, positive_logit_bias, randomize_batch_norm, taylor_net

ROOT = Path(__file__).resolve().parents[2]
PARAMS = {"gradcam": {"layer": "block2_conv_b"}, "integrated_gradients": {"steps": 4}}

JAX_WORKER = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np
    from brainage.relevance import make_analyzer
    assert keras.backend.backend() == "jax", keras.backend.backend()
    model_path, data_path, out_path, params = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    model = keras.saving.load_model(model_path)
    x = np.load(data_path)["x"]
    maps = {}
    for name, kwargs in params.items():
        e = make_analyzer(model, name, **kwargs).explain(x)
        maps[name] = e.maps
        maps[name + "__trace"] = np.array(list(e.trace.values()))
    maps["dtd_all"] = make_analyzer(model, "dtd", bn_mode="canonize").explain(x, target="all").maps
    np.savez(out_path, **maps)
    """
)


@pytest.mark.slow  # ~20 s: a JAX subprocess compiles every method
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="compares in-process TF with a JAX subprocess")
def test_tensorflow_and_jax_maps_agree(tmp_path, rng):
    pytest.importorskip("jax")
    shape = (20, 21, 19, 1)
    x = gm_volume(rng, shape, batch=2)
    model = positive_logit_bias(randomize_batch_norm(taylor_net(shape), rng, x), x)
    model.save(tmp_path / "net.keras")
    np.savez(tmp_path / "x.npz", x=x)
    params = {name: PARAMS.get(name, {}) for name in METHODS}
    (tmp_path / "worker.py").write_text(JAX_WORKER)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    subprocess.run(
        [sys.executable, str(tmp_path / "worker.py"), str(tmp_path / "net.keras"), str(tmp_path / "x.npz"),
         str(tmp_path / "jax.npz"), json.dumps(params)],
        check=True, env=env, cwd=ROOT, capture_output=True, timeout=300,
    )
    jax_maps = np.load(tmp_path / "jax.npz")
    for name, kwargs in params.items():
        e = make_analyzer(model, name, **kwargs).explain(x)
        scale = np.abs(e.maps).max()
        np.testing.assert_allclose(jax_maps[name], e.maps, rtol=1e-4, atol=1e-5 * scale, err_msg=name)
        if e.trace:
            trace = np.array(list(e.trace.values()))
            np.testing.assert_allclose(
                jax_maps[name + "__trace"], trace, rtol=1e-5, atol=1e-5 * np.abs(trace).max(), err_msg=name
            )
    tf_all = make_analyzer(model, "dtd", bn_mode="canonize").explain(x, target="all").maps
    np.testing.assert_allclose(jax_maps["dtd_all"], tf_all, rtol=1e-4, atol=1e-5 * np.abs(tf_all).max())
