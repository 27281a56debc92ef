"""brainage: brain-age CNN on grey-matter MRI, explained with deep Taylor decomposition."""

import os

# TensorFlow enables its oneDNN kernels by default only on some (Intel) CPUs. Without them, on
# the AMD EPYC cores this project also runs on, Conv3D training ran about 30x slower (measured:
# a training step of the full network 21 s/volume on one core, 0.67 s with oneDNN). Set before
# TensorFlow is imported; TF_ENABLE_ONEDNN_OPTS=0 in the environment still turns them off.
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
