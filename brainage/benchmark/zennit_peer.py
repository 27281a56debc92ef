"""Zennit (PyTorch) on the same network and weights: its maps, its times and its gradient's.

:class:`ZennitPeer` holds the PyTorch copy of the timed network
(:mod:`~brainage.benchmark.torch_network`) and one Zennit composite per compared method, made
from our analyzer's own rules (:mod:`~brainage.benchmark.zennit_rules`). Both sides run on the
CPU with the same number of threads (``torch.set_num_threads`` here, TensorFlow's intra-op pool
through ``TF_NUM_INTRAOP_THREADS``, set before TensorFlow starts).

Relevance starts, as ours does, at the logit of the predicted class (seed eq. 3.1): the output
gradient handed to Zennit's backward pass is ``one_hot(argmax) · logits``.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from brainage.benchmark.timing import time_call
from brainage.benchmark.torch_network import channels_first, channels_last, torch_network
from brainage.benchmark.zennit_rules import zennit_composite
from brainage.errors import BrainageError

# The methods compared with Zennit: both layer-wise presets whose rules Zennit has.
PEER_METHODS = ("dtd", "lrp_composite")
# Two float32 implementations of one map may differ by the sum of their rounding errors: about
# twice one of them.
FLOAT32_ALLOWANCE = 2.0
INSTALL_HINT = 'pip install -e ".[peer]"'


def import_zennit():
    """``(torch, zennit)``, or a one-line error saying how to install them.

    Call it before TensorFlow is imported: Zennit imports torchvision, which loads PyTorch's
    triton, whose native library crashes the process (segmentation fault) when TensorFlow's is
    already loaded. The ``bench`` stage imports the peer first; a process that already runs
    TensorFlow gets an error instead of the crash.
    """
    import sys

    if "zennit" not in sys.modules and "tensorflow" in sys.modules:
        raise BrainageError("bench: peer=zennit must import PyTorch before TensorFlow (its triton "
                            "crashes when loaded after TensorFlow), and this process already runs "
                            "TensorFlow; start a fresh process (python -m brainage.bench peer=zennit)")
    try:
        import torch
        import zennit
    except ImportError as err:  # includes torchvision failing to load beside another torch
        raise BrainageError(f"bench: peer=zennit needs PyTorch and Zennit ({err}); install the "
                            f"optional extra: {INSTALL_HINT}") from None
    return torch, zennit


@dataclass
class ZennitPeer:
    """The PyTorch network, the Zennit composite of each compared method, and library versions.

    ``tolerance`` is the agreement asked of the maps; a map that misses it is recomputed in
    float64 to tell a real difference from a map that float32 cannot resolve to ``tolerance``.
    """

    network: object
    composites: dict
    versions: dict
    tolerance: float
    _network64: object = field(default=None, repr=False)

    @classmethod
    def build(cls, model, analyzers: dict, threads: int, tolerance: float) -> ZennitPeer:
        """Translate ``model`` and the rules of ``analyzers[m]`` for every ``m`` in :data:`PEER_METHODS`."""
        torch, zennit = import_zennit()
        torch.set_num_threads(int(threads))
        for method in PEER_METHODS:
            if analyzers[method].bn_mode != "passthrough":
                raise BrainageError(f"bench: the Zennit comparison expects BatchNormalization "
                                    f"passed through; {method} folds it")
        composites = {m: zennit_composite(analyzers[m].rules) for m in PEER_METHODS}
        versions = {"torch": torch.__version__, "zennit": _version("zennit"),
                    "torch_threads": torch.get_num_threads()}
        return cls(torch_network(model), composites, versions, float(tolerance))

    def relevance(self, modified, x):
        """Zennit's maps (channels-first tensor) and the explained logits, for tensor ``x``."""
        import torch

        x = x.detach().requires_grad_(True)
        logits = modified(x)
        seed = torch.nn.functional.one_hot(logits.argmax(1), logits.shape[1]).to(logits) * logits.detach()
        (maps,) = torch.autograd.grad(logits, x, grad_outputs=seed)
        return maps, seed.sum(1)

    def relevance64(self, method: str, x):
        """The maps of ``method`` computed in float64 (a copy of the network, made once)."""
        import copy

        if self._network64 is None:
            self._network64 = copy.deepcopy(self.network).double()
        with self.composites[method].context(self._network64) as modified:
            return self.relevance(modified, x.double())[0]

    def gradient(self, x):
        """The predicted logit's gradient with respect to ``x`` (plain autograd)."""
        import torch

        x = x.detach().requires_grad_(True)
        logits = self.network(x)
        seed = torch.nn.functional.one_hot(logits.argmax(1), logits.shape[1]).to(logits)
        return torch.autograd.grad(logits, x, grad_outputs=seed)[0]

    def forward(self, x):
        import torch

        with torch.inference_mode():
            return self.network(x)


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def relative_l1(ours: np.ndarray, theirs: np.ndarray) -> float:
    """``Σ|ours − theirs| / Σ|ours|`` over the whole batch (float64)."""
    ours, theirs = ours.astype(np.float64), theirs.astype(np.float64)
    return float(np.abs(ours - theirs).sum() / max(np.abs(ours).sum(), np.finfo(np.float64).tiny))


def _conservation(maps: np.ndarray, outputs: np.ndarray) -> float:
    """Largest ``|Σ R − logit| / |logit|`` over the batch."""
    sums = maps.reshape(len(maps), -1).astype(np.float64).sum(1)
    return float(np.max(np.abs(sums - outputs) / np.abs(outputs)))


def method_entries(peer: ZennitPeer, method: str, analyzer, x: np.ndarray, repeats: int) -> dict:
    """``zennit_<m>_ms``/``_min_ms``, the maps' relative L1 distance to ours
    (``zennit_<m>_rel_l1``) and Zennit's conservation error (``zennit_<m>_max_rel_error``).

    When the distance exceeds the tolerance, ``zennit_<m>_float32_error`` is the distance of
    Zennit's float32 map from its float64 map: how far float32 resolves this map at all.
    """
    import torch

    x_torch = torch.from_numpy(channels_first(x))
    with peer.composites[method].context(peer.network) as modified:
        maps, outputs = peer.relevance(modified, x_torch)
        timing = time_call(lambda: peer.relevance(modified, x_torch)[0].numpy(), repeats)
    maps, outputs = channels_last(maps.numpy()), outputs.numpy().astype(np.float64)
    tag = f"zennit_{method}"
    row = {**{f"{tag}_{k}": v for k, v in timing.ms_per_volume(len(x)).items()},
           f"{tag}_rel_l1": relative_l1(analyzer.explain(x).maps, maps),
           f"{tag}_max_rel_error": _conservation(maps, outputs)}
    if not row[f"{tag}_rel_l1"] <= peer.tolerance:
        exact = channels_last(peer.relevance64(method, x_torch).numpy())
        row[f"{tag}_float32_error"] = relative_l1(exact, maps)
    return row


def peer_entries(peer: ZennitPeer, analyzers: dict, x: np.ndarray, repeats: int) -> dict:
    """Every Zennit and PyTorch entry of a row: each compared method, the gradient, the forward."""
    import torch

    row = {}
    for method in PEER_METHODS:
        row.update(method_entries(peer, method, analyzers[method], x, repeats))
    x_torch = torch.from_numpy(channels_first(x))
    for name, fn in (("gradient", peer.gradient), ("forward", peer.forward)):
        timing = time_call(lambda f=fn: f(x_torch).numpy(), repeats)
        row.update({f"torch_{name}_{k}": v for k, v in timing.ms_per_volume(len(x)).items()})
    return row


def agreement(rows: list[dict], tolerance: float) -> tuple[list[str], list[str]]:
    """``(differences, unresolved)`` over the rows and compared methods.

    Maps agree when their relative L1 distance is at most ``tolerance``. Where float32 cannot
    resolve a map that finely (an ill-conditioned map, e.g. near-zero denominators), two float32
    implementations can only agree to within their two rounding errors: the distance is then
    allowed up to twice Zennit's own float32 error (its float32 map against its float64 map),
    and the row is listed as ``unresolved`` rather than passed silently.
    """
    differences, unresolved = [], []
    for row in rows:
        for m in PEER_METHODS:
            distance = row.get(f"zennit_{m}_rel_l1")
            if distance is None or distance <= tolerance:
                continue
            float32_error = row.get(f"zennit_{m}_float32_error", 0.0)
            line = (f"batch {row['batch']}: Zennit's {m} maps differ from ours by relative L1 "
                    f"{distance:.2e} > {tolerance:g}")
            if distance <= FLOAT32_ALLOWANCE * float32_error:
                unresolved.append(f"{line}, within float32's resolution of this map (Zennit's own "
                                  f"float32 map is {float32_error:.2e} from its float64 map)")
            else:
                differences.append(line + (f" (float32 resolves it to {float32_error:.2e})"
                                           if float32_error else ""))
    return differences, unresolved
