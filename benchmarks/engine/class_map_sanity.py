"""Do the maps depend on the class? A quick sanity check, not the scorecard.

Not a test: ``python benchmarks/engine/class_map_sanity.py`` renders a small synthetic cohort (the
noise-free expected grey matter of the synthetic ageing model at 4.5 mm, plus smooth noise),
trains a two-block network for a few epochs on three age bins, and explains the test subjects
for the youngest and for the oldest bin with several methods and target modes. It prints, per
method, the mean Pearson correlation (over subjects) between the youngest-bin and the oldest-bin
map: close to 1 means the map does not depend on the class.
"""

from __future__ import annotations

import argparse

import numpy as np

# (label, method, parameters, target of the youngest bin, target of the oldest bin)
CASES = [
    ("dtd (seed)", "dtd_seed", {}, "0", "{last}"),
    ("dtd vs-mean", "dtd", {}, "0-vs-mean", "{last}-vs-mean"),
    ("dtd logodds", "dtd", {}, "0-logodds", "{last}-logodds"),
    ("dtd_z_upper", "dtd_z_upper", {}, "0", "{last}"),
    ("dtd vs each other", "dtd", {}, "0-vs-{last}", "{last}-vs-0"),
    ("clrp (others)", "clrp", {}, "0", "{last}"),
    ("clrp (others, unclipped)", "clrp", {"clip": False}, "0", "{last}"),
    ("sglrp", "sglrp", {}, "0", "{last}"),
    ("dtd_reference (young mean)", "dtd_reference", {"reference": "young"}, "0", "{last}"),
    ("deeplift (young mean)", "deeplift", {"reference": "young"}, "0", "{last}"),
    ("gradient_x_input", "gradient_x_input", {}, "0", "{last}"),
    ("gradient_x_input logodds", "gradient_x_input", {}, "0-logodds", "{last}-logodds"),
]


def synthetic_volumes(n: int, rng: np.random.Generator, zoom: int = 3, noise_sd: float = 0.05):
    """``n`` noisy expected-GM volumes on a ``zoom``× coarser MNI grid, ages uniform within three
    equally likely bins (20–40, 40–70, 70–85)."""
    from scipy import ndimage

    from brainage.data import synthetic
    from brainage.neuro.grid import MNI_1P5MM_AFFINE, MNI_1P5MM_SHAPE, Grid

    affine = np.array(MNI_1P5MM_AFFINE, dtype=np.float64)
    affine[:3, :3] *= zoom
    shape = tuple(-(-s // zoom) for s in MNI_1P5MM_SHAPE)
    anatomy = synthetic.build_anatomy(Grid(affine, shape, (0, 0, 0), shape))
    settings = synthetic.SyntheticSettings()
    bins = rng.integers(0, 3, n)
    ages = rng.uniform(np.array([20.0, 40.0, 70.0])[bins], np.array([40.0, 70.0, 85.0])[bins])
    volumes = np.empty((n, *shape), dtype=np.float32)
    for i, age in enumerate(ages):
        noise = ndimage.gaussian_filter(rng.normal(0.0, 1.0, shape), 1.0)
        smooth_noise = noise_sd * noise / noise.std() * (anatomy.gm > 0.05)
        volumes[i] = synthetic.expected_gm(anatomy, age, settings) + smooth_noise
    return np.clip(volumes, 0.0, 1.0)[..., None], ages


def _correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; NaN when a map is constant (e.g. all zero)."""
    a, b = a.ravel() - a.mean(), b.ravel() - b.mean()
    norm = np.sqrt((a @ a) * (b @ b))
    return float(a @ b / norm) if norm > 0 else float("nan")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subjects", type=int, default=240)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    import keras

    from brainage.model import build_model
    from brainage.relevance import make_analyzer

    rng = np.random.default_rng(args.seed)
    x, ages = synthetic_volumes(args.subjects, rng)
    y = np.digitize(ages, (40.0, 70.0))
    n_test = args.subjects // 5
    keras.utils.set_random_seed(args.seed)
    model = build_model(x.shape[1:], widths=(8, 16), dense_units=16, n_classes=3, bn_momentum=0.9)
    model.compile(optimizer=keras.optimizers.Adam(3e-3), metrics=["accuracy"],
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    model.fit(x[n_test:], y[n_test:], epochs=args.epochs, batch_size=16, verbose=0)
    test_x, test_y = x[:n_test], y[:n_test]
    accuracy = float((np.asarray(model.predict(test_x, verbose=0)).argmax(1) == test_y).mean())
    print(f"{args.subjects} subjects, {n_test} test, test accuracy {accuracy:.2f} "
          f"(chance {np.bincount(test_y).max() / n_test:.2f})")
    young = x[n_test:][y[n_test:] == 0].mean(axis=0)
    for label, name, params, youngest, oldest in CASES:
        params = {k: (young if v == "young" else v) for k, v in params.items()}
        analyzer = make_analyzer(model, name, **params)
        maps = [analyzer.explain(test_x, target=t.format(last=2)).maps for t in (youngest, oldest)]
        correlations = np.array([_correlation(a, b) for a, b in zip(*maps)])
        print(f"  {label:28s} youngest-vs-oldest map correlation {np.nanmean(correlations):+.3f} "
              f"(SD {np.nanstd(correlations):.3f}, {np.isfinite(correlations).sum()} subjects)", flush=True)


if __name__ == "__main__":
    main()
