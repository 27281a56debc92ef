"""TensorFlow and JAX walk branching graphs alike: maps, traces and explained values of every
layer-wise method, DeepLIFT, DTD rooted at a reference and Grad-CAM on the residual + concatenating net and on a region of the U-Net's output."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pytest

from brainage.relevance import make_analyzer

from .dag_nets import calibrate_batch_norm, residual_concat_net, tiny_unet
from .nets import gm_volume

ROOT = Path(__file__).resolve().parents[2]
# (key, net, method, parameters, target)
RUNS = [
    ("res_dtd", "residual", "dtd", {}, "all"),
    ("res_dtd_canonize", "residual", "dtd", {"bn_mode": "canonize"}, "predicted"),
    ("res_dtd_w2_vs_mean", "residual", "dtd_w2", {}, "predicted-vs-mean"),
    ("res_lrp", "residual", "lrp_composite", {"bn_mode": "canonize"}, "all"),
    ("res_epsilon_plus_logodds", "residual", "epsilon_plus", {}, "predicted-logodds"),
    ("res_sglrp", "residual", "sglrp", {}, "predicted"),
    ("unet_dtd", "unet", "dtd", {}, 1),
    ("unet_lrp_all", "unet", "lrp_composite", {"epsilon": 0.0, "use_bias": False}, "all"),
    ("unet_epsilon_plus", "unet", "epsilon_plus", {}, 0),
    ("res_deeplift", "residual", "deeplift", {}, "all"),
    ("res_dtd_reference_vs_mean", "residual", "dtd_reference", {}, "predicted-vs-mean"),
    ("res_gradcam_in_block", "residual", "gradcam", {"layer": "bn_b"}, "all"),
    ("unet_deeplift", "unet", "deeplift", {}, 1),
    ("unet_dtd_reference", "unet", "dtd_reference", {}, 0),
    # bottom_conv: above enc_pool, whose gradient at tied windows differs by backend (README)
    ("unet_gradcam_region", "unet", "gradcam", {"layer": "bottom_conv"}, 1),
    ("unet_ig_region", "unet", "integrated_gradients", {"steps": 4, "baseline": 0.1}, 1),
    ("unet_smoothgrad_region", "unet", "smoothgrad", {"samples": 3, "batch_size": 4}, 0),
]

JAX_WORKER = textwrap.dedent(
    """
    import json, sys
    import keras, numpy as np
    from brainage.relevance import make_analyzer
    assert keras.backend.backend() == "jax", keras.backend.backend()
    folder, runs = sys.argv[1], json.loads(sys.argv[2])
    data = np.load(folder + "/data.npz")
    out = {}
    for key, net, name, kwargs, target in runs:
        model = keras.saving.load_model(f"{folder}/{net}.keras")
        mask = data["mask"] if net == "unet" else None
        e = make_analyzer(model, name, **kwargs).explain(data[net], target=target, output_mask=mask)
        out[key] = e.maps
        out[key + "__trace"] = np.array(list(e.trace.values()))
        out[key + "__outputs"] = e.outputs
    np.savez(folder + "/jax.npz", **out)
    """
)


@pytest.mark.slow  # ~40 s: a JAX subprocess compiles every run
@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="compares in-process TF with a JAX subprocess")
def test_tensorflow_and_jax_explain_graphs_alike(tmp_path, rng):
    pytest.importorskip("jax")
    x = {"residual": gm_volume(rng, (7, 8, 6, 1)), "unet": gm_volume(rng, (6, 8, 4, 1))}
    models = {"residual": calibrate_batch_norm(residual_concat_net(), rng, x["residual"]), "unet": tiny_unet()}
    mask = np.zeros(models["unet"].output_shape[1:-1], bool)
    mask[:3, 1:6, :2] = True
    for net, model in models.items():
        model.save(tmp_path / f"{net}.keras")
    np.savez(tmp_path / "data.npz", mask=mask, **x)
    (tmp_path / "worker.py").write_text(JAX_WORKER)
    env = {**os.environ, "KERAS_BACKEND": "jax", "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    subprocess.run([sys.executable, str(tmp_path / "worker.py"), str(tmp_path), json.dumps(RUNS)],
                   check=True, env=env, cwd=ROOT, capture_output=True, timeout=600)
    jax_maps = np.load(tmp_path / "jax.npz")
    for key, net, name, kwargs, target in RUNS:  # TF eagerly; JAX jitted
        e = make_analyzer(models[net], name, compile=False, **kwargs).explain(
            x[net], target=target, output_mask=mask if net == "unet" else None)
        scale = np.abs(e.maps).max()
        np.testing.assert_allclose(jax_maps[key], e.maps, rtol=1e-4, atol=1e-5 * scale, err_msg=key)
        np.testing.assert_allclose(jax_maps[key + "__outputs"], e.outputs, rtol=1e-5,
                                   atol=1e-6 * np.abs(e.outputs).max(), err_msg=key)
        trace = np.array(list(e.trace.values()))
        if not trace.size:  # Grad-CAM keeps no trace
            continue
        scale = max(np.abs(trace).max(), np.abs(e.scale).max())
        np.testing.assert_allclose(jax_maps[key + "__trace"], trace, rtol=1e-5, atol=1e-5 * scale, err_msg=key)
