"""TensorFlow and JAX give the same maps (the GPU machine only has JAX): every method, contrastive
targets and reference methods, maps and conservation traces."""

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
PARAMS = {"gradcam": {"layer": "block2_conv_b"}, "integrated_gradients": {"steps": 4},
          "smoothgrad": {"samples": 3, "batch_size": 4}, "smoothgrad_x_input": {"samples": 3},
          "deeplift": {"reference": 0.25}, "dtd_reference": {"reference": 0.25}}
# (key, method, parameters, target): every method with its default target, then target modes.
RUNS = [(name, name, PARAMS.get(name, {}), "predicted") for name in METHODS] + [
    ("dtd_all", "dtd", {"bn_mode": "canonize"}, "all"),
    ("dtd_vs_mean", "dtd", {}, "predicted-vs-mean"),
    ("dtd_logodds_all", "dtd", {"bn_mode": "canonize"}, "all-logodds"),
    ("dtd_w2_vs_runnerup", "dtd_w2", {}, "predicted-vs-runnerup"),
    ("lrp_composite_vs_0", "lrp_composite", {"bn_mode": "canonize"}, "predicted-vs-0"),
    ("epsilon_plus_logodds", "epsilon_plus", {}, "predicted-logodds"),
    ("clrp_negated_all", "clrp", {"dual": "negated", "clip": False}, "all"),
    ("sglrp_all", "sglrp", {}, "all"),
    ("deeplift_vs_mean", "deeplift", {"reference": 0.5, "bn_mode": "canonize"}, "predicted-vs-mean"),
    ("dtd_reference_vs_runnerup", "dtd_reference", {"reference": 0.5}, "all-vs-runnerup"),
    ("smoothgrad_logodds", "smoothgrad", {"samples": 2}, "predicted-logodds"),
    ("gradient_vs_mean", "gradient", {}, "predicted-vs-mean"),
]

# The LRP composite divides by pre-activations with their biases (LRP-0 / ε layers), some near
# zero on random weights: float32 round-off, which differs between TensorFlow's oneDNN and XLA's
# convolutions, grows there to 1e-4-4e-3 on ~2 % of the voxels (seen with oneDNN on 2 threads;
# relative L1 below 1e-4 alone and 2.4e-4 beside another test worker). These keys get a
# relative L1 bound of their own and keep the conservation trace check below.
ILL_CONDITIONED = {"lrp_composite": 1e-3}

JAX_WORKER = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np
    from brainage.relevance import make_analyzer
    assert keras.backend.backend() == "jax", keras.backend.backend()
    model_path, data_path, out_path, runs = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
    model = keras.saving.load_model(model_path)
    x = np.load(data_path)["x"]
    out = {}
    for key, name, kwargs, target in runs:
        e = make_analyzer(model, name, **kwargs).explain(x, target=target)
        out[key] = e.maps
        out[key + "__trace"] = np.array(list(e.trace.values()))
        out[key + "__outputs"] = e.outputs
    np.savez(out_path, **out)
    """
)


@pytest.mark.slow  # ~60 s: a JAX subprocess compiles every method and target mode
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="compares in-process TF with a JAX subprocess")
def test_tensorflow_and_jax_maps_agree(tmp_path, rng):
    pytest.importorskip("jax")
    shape = (20, 21, 19, 1)
    x = gm_volume(rng, shape, batch=2)
    # distinct per-class margins: with one margin, each class's smallest logit is exactly 1.0, and
    # subject 1's two non-predicted logits tied, so the runner-up was a float coin toss per backend
    model = positive_logit_bias(randomize_batch_norm(taylor_net(shape), rng, x), x,
                                margin=np.array([1.0, 1.25, 1.5]))
    logits = np.sort(np.asarray(model(x)), axis=-1)
    assert np.all(np.diff(logits, axis=-1) > 1e-3), logits  # no ties: runner-up well defined
    model.save(tmp_path / "net.keras")
    np.savez(tmp_path / "x.npz", x=x)
    (tmp_path / "worker.py").write_text(JAX_WORKER)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    subprocess.run(
        [sys.executable, str(tmp_path / "worker.py"), str(tmp_path / "net.keras"), str(tmp_path / "x.npz"),
         str(tmp_path / "jax.npz"), json.dumps(RUNS)],
        check=True, env=env, cwd=ROOT, capture_output=True, timeout=600,
    )
    jax_maps = np.load(tmp_path / "jax.npz")
    for key, name, kwargs, target in RUNS:  # TF eagerly (its compiled path is tested elsewhere); JAX jitted
        e = make_analyzer(model, name, compile=False, **kwargs).explain(x, target=target)
        scale = np.abs(e.maps).max()
        rel_l1 = np.abs(jax_maps[key] - e.maps).sum() / np.abs(e.maps).sum()
        assert rel_l1 <= ILL_CONDITIONED.get(key, 1e-4), (key, rel_l1)  # 1e-4: make bench peer=zennit's criterion
        if key not in ILL_CONDITIONED:
            np.testing.assert_allclose(jax_maps[key], e.maps, rtol=1e-4, atol=1e-5 * scale, err_msg=key)
        np.testing.assert_allclose(jax_maps[key + "__outputs"], e.outputs, rtol=1e-5,
                                   atol=1e-6 * np.abs(e.outputs).max(), err_msg=key)
        if e.trace:
            trace = np.array(list(e.trace.values()))
            scale = max(np.abs(trace).max(), np.abs(e.scale).max())  # zero-sum traces: their halves' mass
            np.testing.assert_allclose(jax_maps[key + "__trace"], trace, rtol=1e-5, atol=1e-5 * scale, err_msg=key)
