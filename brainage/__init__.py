"""brainage: brain-age CNN on grey-matter MRI, explained with deep Taylor decomposition."""

import os

# TensorFlow enables its oneDNN kernels by default only on some (Intel) CPUs. Without them, on
# the AMD EPYC cores this project also runs on, Conv3D ran several times slower (a full-network
# training step 6.6x, benchmarks/engine/onednn.py; docs/performance.md). Set before
# TensorFlow is imported; TF_ENABLE_ONEDNN_OPTS=0 in the environment still turns them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")


def _join(separator: str, items) -> str:
    """``${brainage.join:+,${.list}}`` in a config: the list's items joined (a folder name,
    ``configs/data/planted.yaml``). Registered here, on the package's import, so that every entry
    (a stage, Hydra's ``--cfg job --resolve``, a test's compose) resolves it."""
    return str(separator).join(str(item) for item in items)


def _register_resolvers() -> None:
    from omegaconf import OmegaConf

    if not OmegaConf.has_resolver("brainage.join"):
        OmegaConf.register_new_resolver("brainage.join", _join)


_register_resolvers()
