"""brainage: brain-age CNN on grey-matter MRI, explained with deep Taylor decomposition."""

import os

# TensorFlow enables its oneDNN kernels by default only on some (Intel) CPUs. Without them, on
# the AMD EPYC cores this project also runs on, Conv3D ran several times slower (a full-network
# training step 6.6x, benchmarks/engine/onednn.py; docs/performance.md). Set before
# TensorFlow is imported; TF_ENABLE_ONEDNN_OPTS=0 in the environment still turns them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
