"""Whether a model's left-right balance of relevance follows the anatomy or the network.

Explains a run's subjects as they are and mirrored along the array's first (x) axis, the
method's reference image mirrored with them, and compares how much relevance (sum of |R|) each
half of the array holds: ``ratio``, the low-x half's over the high-x half's. An imbalance the
anatomy carries swaps sides under mirroring, one the network carries (for example a pooling that
leaves one end of the box unseen: :func:`brainage.model.parts.unseen_input`) stays. With
``ratio = network × anatomy`` and ``ratio_mirrored = network / anatomy``, the two parts are
``network_ratio = sqrt(ratio × ratio_mirrored)`` and ``anatomy_ratio = sqrt(ratio /
ratio_mirrored)``; 1 means no imbalance of that kind.

    python -m brainage.benchmark.mirror_check --train-dir outputs/train/<run> [--subjects test]
        [--method dtd_reference]

prints both ratios, their network and anatomy parts, and the mean change of the prediction
(years, or the predicted class's largest logit).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Callable

import numpy as np


def half_ratio(maps: np.ndarray) -> float:
    """Relevance (sum of |R|) in the low-x half of the array over the high-x half's (maps
    ``N × X × Y × Z``; an odd X leaves the middle slice out)."""
    half = maps.shape[1] // 2
    return float(np.abs(maps[:, :half]).sum() / np.abs(maps[:, maps.shape[1] - half:]).sum())


def mirror_balance(explain: Callable, predict: Callable, volumes: np.ndarray,
                   reference: np.ndarray) -> dict:
    """The halves' ratio as the volumes are and mirrored (``explain(x, reference) -> maps``,
    ``predict(x) -> N`` values), and the mean absolute change of the prediction."""
    mirrored, mirrored_ref = volumes[:, ::-1].copy(), reference[::-1].copy()
    original, flipped = half_ratio(explain(volumes, reference)), half_ratio(explain(mirrored, mirrored_ref))
    return {"n_subjects": int(len(volumes)), "ratio": original, "ratio_mirrored": flipped,
            "network_ratio": float(np.sqrt(original * flipped)),
            "anatomy_ratio": float(np.sqrt(original / flipped)),
            "prediction_change": float(np.mean(np.abs(predict(volumes) - predict(mirrored))))}


def run_balance(train_dir: Path, subjects: str, method: str, batch: int = 4) -> dict:
    """:func:`mirror_balance` of a finished run's ``subjects`` with one explanation method,
    ``batch`` subjects at a time."""
    from brainage.data.reference_images import reference_image
    from brainage.predicting.methods import method_params
    from brainage.trained.cohort import select_subjects, training_data
    from brainage.trained.model import load_analyzers, load_model
    from brainage.trained.run import TrainRunRequest, resolve_train_run

    train = resolve_train_run(TrainRunRequest(train_dir=train_dir, model_path=None,
                                              outputs_dir=Path("outputs"), data={},
                                              subjects=subjects))
    prep = training_data(train, {}, progress=False)
    rows = select_subjects(prep.table, subjects)
    volumes = np.asarray(prep.volumes[rows], np.float32)
    params = method_params(method)
    if "reference" not in params:
        raise SystemExit(f"method {method} has no reference image to mirror; use a reference "
                         "method such as dtd_reference or deeplift")
    name = params["reference"]
    reference = reference_image(prep, name)[..., 0] if isinstance(name, str) else \
        np.full(volumes.shape[1:], float(name), np.float32)
    model = load_model(train, tuple(volumes.shape[1:]) + (1,))

    def explain(x, ref):
        analyzer = load_analyzers(model, {method: {**params, "reference": ref[..., None]}})[method]
        return np.concatenate([np.asarray(analyzer.explain(x[i:i + batch, ..., None]).maps)[..., 0]
                               for i in range(0, len(x), batch)])

    def predict(x):
        out = np.concatenate([np.asarray(model(x[i:i + batch, ..., None], training=False))
                              for i in range(0, len(x), batch)])
        return out[:, 0] if out.shape[1] == 1 else out.max(axis=1)

    return {"train_dir": str(train.dir), "subjects": subjects, "method": method,
            **mirror_balance(explain, predict, volumes, reference)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-dir", required=True, type=Path, help="a finished training run")
    parser.add_argument("--subjects", default="test", help="test, val, train or all")
    parser.add_argument("--method", default="dtd_reference",
                        help="a method of configs/explainer with a reference: dtd_reference, deeplift")
    args = parser.parse_args(argv)
    result = run_balance(args.train_dir, args.subjects, args.method)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
