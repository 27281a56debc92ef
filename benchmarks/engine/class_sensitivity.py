"""Which DTD-family composite is class-sensitive and still conserves? Measured on a trained run.

Not a test: ``python benchmarks/engine/class_sensitivity.py [--train-dir RUN] [--subjects 4]``
explains test subjects of a finished training run (default: the quick model,
``outputs/train/2026-12-07_02-51-31``; taken in turn from each age bin) for every class with each
candidate and prints, per candidate:

- ``|r|``: Pearson's |r| between the youngest- and the oldest-class map over the brain voxels
  (training split's mean GM > 0.1), mean and per subject (``brainage.faithfulness.class_maps``:
  near 1 = one pattern whichever class is explained; Sixt et al. 2020);
- ``cons``: the largest conservation error ``Explanation.rel_error`` over subjects and classes
  (``|Σ map − z_c| / |z_c|``; for the zero-sum difference of z⁺ flows, ``|Σ map| / |z_c|``) and
  how many maps exceed 1e-5;
- ``rho``: with ``--randomise``, the Spearman correlation of the absolute maps of the predicted class
  (brain voxels) between the trained network and the network with ``logits`` and ``dense1``
  re-initialised (Adebayo et al. 2018's cascade, ``brainage.faithfulness.randomisation``): near 1 =
  the map ignores the dense layers.

Candidates: ``dtd`` (z⁺ everywhere), the difference of z⁺ flows of the class and its dual
(unclipped CLRP: propagating ``R_c − R_dual`` with z⁺), ``dtd_z_upper`` with the z-rule on the top
``upper`` Dense/Conv layers (``--upper``), and LRP-α2β1 on the top two layers (z⁺ below, zᴮ at the
input).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

QUICK_MODEL = Path("outputs/train/2026-12-07_02-51-31")


def load_subjects(train_dir: Path, n: int):
    """``(x, brain)``: ``n`` test subjects of the run (in turn from each bin) and the brain mask."""
    from brainage.faithfulness.inputs import spread_over_bins, training_mean
    from brainage.trained import open_train_run
    from brainage.trained.run import TrainRunRequest

    request = TrainRunRequest(train_dir, None, train_dir.parent.parent, {}, "test")
    opened = open_train_run(request, progress=False)
    prep = opened.prep
    rows = spread_over_bins(opened.rows, prep.labels()[opened.rows], n)
    x = np.asarray(prep.volumes[rows], dtype=np.float32)[..., None]
    return x, training_mean(prep) > 0.1


def candidates(uppers):
    """``[(label, build)]`` with ``build(model) -> analyzer``."""
    from brainage.relevance import AlphaBeta, Composite, RelevanceAnalyzer, ZBox, ZPlus, make_analyzer
    from brainage.relevance.dtd_z_upper import UpperLayers

    alpha_beta = Composite([(UpperLayers(2), AlphaBeta(2.0, 1.0)), ("linear", ZPlus())],
                           first=ZBox(0.0, 1.0), name="alpha2beta1_upper2", merge="positive")
    out = [("dtd", lambda m: make_analyzer(m, "dtd")),
           ("difference of z+ flows", lambda m: make_analyzer(m, "clrp", clip=False))]
    out += [(f"dtd_z_upper upper={k}", lambda m, k=k: make_analyzer(m, "dtd_z_upper", upper=k))
            for k in uppers]
    out.append(("alpha2beta1 upper=2", lambda m: RelevanceAnalyzer(m, alpha_beta)))
    return out


def randomised_dense(model):
    """A copy of ``model`` with ``logits`` and ``dense1`` re-initialised (the cascade's step 2)."""
    from brainage.faithfulness.randomisation import randomisation_cascade

    for step, (_, _, randomised) in enumerate(randomisation_cascade(model, "block", seed=0), 1):
        if step == 2:
            return randomised
    raise ValueError("the model has fewer than two cascade steps")


def spearman_after(build, model, randomised, x, brain) -> float:
    """Mean Spearman |map| trained vs randomised dense layers, predicted class of the trained net."""
    from brainage.faithfulness.randomisation import map_similarity

    predicted = np.asarray(model.predict(x, verbose=0)).argmax(axis=1)
    before = build(model).explain(x, target="true", labels=predicted).maps
    after = build(randomised).explain(x, target="true", labels=predicted).maps
    rng = np.random.default_rng(0)
    return float(np.mean([map_similarity(b, a, brain, rng=rng)["spearman"]
                          for b, a in zip(before, after)]))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-dir", type=Path, default=QUICK_MODEL)
    parser.add_argument("--subjects", type=int, default=4)
    parser.add_argument("--upper", default="1,2,3,4,6", help="comma-separated z-rule layer counts")
    parser.add_argument("--randomise", action="store_true", help="also the Spearman after "
                        "re-initialising logits and dense1")
    args = parser.parse_args(argv)

    import keras

    from brainage.faithfulness.class_maps import map_correlations

    x, brain = load_subjects(args.train_dir, args.subjects)
    model = keras.saving.load_model(args.train_dir / "model.keras", compile=False)
    randomised = randomised_dense(model) if args.randomise else None
    last = int(model.output_shape[-1]) - 1
    print(f"{args.train_dir}: {len(x)} test subjects, {int(brain.sum())} brain voxels; "
          f"classes 0 vs {last}", flush=True)
    for label, build in candidates([int(k) for k in args.upper.split(",")]):
        start = time.perf_counter()
        explanation = build(model).explain(x, target="all")
        r = map_correlations(explanation.maps[0], explanation.maps[last], brain)
        rho = spearman_after(build, model, randomised, x, brain) if args.randomise else np.nan
        errors = explanation.rel_error
        print(f"  {label:24s} |r| {np.nanmean(np.abs(r)):.3f} ({' '.join(f'{v:+.2f}' for v in r)})"
              f"  cons {np.nanmax(errors):.1e} ({(errors > 1e-5).sum()}/{errors.size} maps > 1e-5)"
              f"  rho {rho:.3f}"
              f"  [{time.perf_counter() - start:.0f} s]", flush=True)


if __name__ == "__main__":
    main()
