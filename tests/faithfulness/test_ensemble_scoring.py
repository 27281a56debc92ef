"""An ensemble scored as one model: its mean DTD map conserves the members' mean explained output,
its AOPC is region perturbation of the members' mean logit (checked against a direct computation
with EnsembleModel), and each randomisation step randomises the same layers in every member."""
import numpy as np
import pandas as pd
import pytest
from hydra import compose, initialize_config_dir

from brainage.ensemble.one_model import EnsembleAnalyzer, EnsembleModel
from brainage.faithfulness.conservation import identity_of
from brainage.faithfulness.ensemble_scoring import ensemble_outputs
from brainage.faithfulness.explained import explain_maps
from brainage.faithfulness.ground_truth import GroundTruth
from brainage.faithfulness.inputs import ScoringInputs
from brainage.faithfulness.perturbation import make_baseline, patch_labels, patch_relevance
from brainage.faithfulness.randomisation import cascade_groups, randomisation_cascade
from brainage.faithfulness.scoring import score_methods
from brainage.faithfulness.settings import ScoringSettings
from brainage.faithfulness.targets import parse_target_mode
from brainage.trained import method_configs
from tests.builders import REPO

METHODS = "dtd,gradient_x_input"
ROWS = [0, 1, 8, 9, 16, 17]  # two subjects of each age bin
N = len(ROWS)


def _config(*overrides):
    with initialize_config_dir(config_dir=str(REPO / "configs"), version_base="1.3"):
        return compose("evaluate", overrides=[
            f"explainer=[{METHODS}]", "progress=false", "perturbation.patch=2",
            "perturbation.steps=3", "perturbation.patches_per_step=4", "perturbation.batch_size=5",
            "randomisation.subjects=2", "class_maps.subjects=2", "randomisation.max_voxels=200",
            "localisation.enabled=false", "gradcam_layers.enabled=false", *overrides])


def _volumes(train_run) -> np.ndarray:
    return np.asarray(train_run["prep"].volumes[ROWS], np.float32)[..., None]


@pytest.fixture(scope="module")
def members(train_run):
    """The session's tiny classifier and a copy with seeded noise on its kernels, its output bias
    leaning towards the bin the first predicts least (a member that disagrees on some subjects)."""
    import keras

    first = keras.saving.load_model(train_run["run"] / "model.keras", compile=False)
    second = keras.models.clone_model(first)
    rng = np.random.default_rng(5)
    second.set_weights([w * (1 + 0.1 * rng.standard_normal(w.shape)).astype(w.dtype)
                        if w.ndim > 1 else w for w in first.get_weights()])
    logits = np.asarray(first(_volumes(train_run)), np.float64)
    rare = int(np.bincount(logits.argmax(axis=1), minlength=3).argmin())
    kernel, bias = second.layers[-1].get_weights()
    bias[rare] += np.median(logits.max(axis=1) - logits[:, rare]) + 0.5
    second.layers[-1].set_weights([kernel, bias])
    return first, second


@pytest.fixture(scope="module")
def scored(members, train_run):
    """The ensemble's inputs (six subjects, the members' mean outputs) and every check but
    localisation and Grad-CAM layers scored on it."""
    from brainage.relevance import analyzer_from_config

    cfg = _config()
    settings, methods = ScoringSettings.from_cfg(cfg), method_configs(cfg.explainer)
    ensemble = EnsembleModel(members, False)
    prep = train_run["prep"]
    x = _volumes(train_run)
    labels = prep.labels()[ROWS]
    subjects = pd.DataFrame({"subject_id": prep.table["subject_id"].to_numpy()[ROWS],
                             "bin": labels})
    baseline = make_baseline(x, "mean", np.asarray(prep.volumes).mean(axis=0))
    one = ScoringInputs(np.array(ROWS), subjects, x, np.zeros((N, 3)), labels, None, baseline,
                        np.ones(x.shape[1:-1], bool), GroundTruth(None, None, "none"),
                        np.array([0, 3]), np.array([1, 4]), cascade_groups(members[0], "block"),
                        "dense1")
    inputs = ensemble_outputs(one, ensemble, settings.perturbation.batch_size)
    analyzers = {name: EnsembleAnalyzer(tuple(analyzer_from_config(m, p) for m in members), False)
                 for name, p in methods.items()}
    per_member = {name: (p, p) for name, p in methods.items()}
    evaluation = score_methods(ensemble, analyzers, per_member, inputs, settings)
    return ensemble, analyzers, inputs, settings, evaluation


def test_the_ensembles_outputs_are_the_members_mean(scored):
    ensemble, _, inputs, _, _ = scored
    members = ensemble.predict_members(inputs.x).astype(np.float64)
    np.testing.assert_allclose(inputs.logits, members.mean(axis=0), rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(inputs.predicted, ensemble.predict(inputs.x).argmax(axis=1))
    assert (members.argmax(axis=2) != inputs.predicted).any()  # a member disagrees somewhere
    mode = parse_target_mode("predicted")
    np.testing.assert_array_equal(inputs.classes(mode), inputs.predicted)  # not the mean logits'
    np.testing.assert_array_equal(inputs.subjects["predicted"], inputs.predicted)


def test_the_mean_dtd_map_conserves_the_members_mean_output(scored, members):
    ensemble, analyzers, inputs, settings, evaluation = scored
    classes = inputs.predicted
    maps, errors = explain_maps(analyzers["dtd"], inputs.x, parse_target_mode("predicted"),
                                classes, settings.batch_size, identity_of(analyzers["dtd"]))
    explained = ensemble.predict_members(inputs.x).astype(np.float64)[:, np.arange(N), classes]
    np.testing.assert_allclose(maps.astype(np.float64).sum(axis=(1, 2, 3, 4)),
                               explained.mean(axis=0), rtol=1e-5)
    assert identity_of(analyzers["dtd"]) == "output" and (errors < 1e-5).all()
    card = pd.concat(evaluation.conservation)
    dtd = card[card["method"] == "dtd"]["conservation_error"]
    assert len(dtd) == N and (dtd < 1e-5).all()
    assert card[card["method"] == "gradient_x_input"]["conservation_error"].isna().all()


def _aopc_by_hand(ensemble, x, maps, classes, baseline, settings) -> np.ndarray:
    """Most-relevant-first removal, step by step, each input's members' mean logit of its class
    predicted directly by EnsembleModel."""
    p = settings.perturbation
    labels, n = patch_labels(x.shape[1:-1], p.patch)
    aopc = []
    for i in range(len(x)):
        order = np.argsort(-patch_relevance(maps[i:i + 1], labels, n)[0], kind="stable")
        inputs = []
        for k in range(p.steps + 1):
            removed = np.isin(labels, order[:k * p.patches_per_step])[..., None]
            inputs.append(np.where(removed, baseline[i], x[i]))
        logit = ensemble.predict_members(np.stack(inputs)).astype(np.float64).mean(axis=0)
        logit = logit[:, classes[i]]
        aopc.append(np.mean(logit[0] - logit))
    return np.array(aopc)


@pytest.mark.parametrize("method", ["dtd", "gradient_x_input"])
def test_the_ensembles_aopc_is_perturbation_of_the_mean_logit(scored, method):
    ensemble, analyzers, inputs, settings, evaluation = scored
    maps, _ = explain_maps(analyzers[method], inputs.x, parse_target_mode("predicted"),
                           inputs.predicted, settings.batch_size)
    expected = _aopc_by_hand(ensemble, inputs.x, maps, inputs.predicted, inputs.baseline, settings)
    aopc = pd.concat(evaluation.aopc)
    got = aopc[aopc["method"] == method]
    np.testing.assert_array_equal(got["class"], inputs.predicted)
    np.testing.assert_allclose(got["aopc"], expected, rtol=1e-4, atol=1e-5)


def test_each_cascade_step_randomises_the_same_layers_in_every_member(members, train_run):
    ensemble = EnsembleModel(members, False)
    x = _volumes(train_run)
    trained = [[np.array(w) for w in m.get_weights()] for m in members]
    before = ensemble.predict(x)
    alone = [randomisation_cascade(m, "block", seed=0) for m in members]
    steps = 0
    for (label, done, copy), *own in zip(randomisation_cascade(ensemble, "block", seed=0), *alone):
        steps += 1
        assert isinstance(copy, EnsembleModel) and len(copy.models) == 2
        for member, original, (_, _, by_itself) in zip(copy.models, members, own):
            for layer in member.layers:
                weights = layer.get_weights()
                originals = original.get_layer(layer.name).get_weights()
                changed = [not np.array_equal(w, w0) for w, w0 in zip(weights, originals)]
                assert any(changed) == (layer.name in done and any(w.std() > 0 for w in originals)), \
                    f"{label}: {layer.name}"
                # each member drawn as its own cascade draws it
                for w, w_own in zip(weights, by_itself.get_layer(layer.name).get_weights()):
                    np.testing.assert_array_equal(w, w_own)
        assert not np.allclose(copy.predict(x), before), label
    assert steps == len(cascade_groups(members[0], "block"))
    for member, weights in zip(members, trained):  # the members are untouched
        for w, w0 in zip(member.get_weights(), weights):
            np.testing.assert_array_equal(w, w0)


def test_the_ensembles_randomisation_table_covers_every_step(scored, members):
    _, _, inputs, _, evaluation = scored
    table = evaluation.randomisation
    steps = [label for label, _ in cascade_groups(members[0], "block")]
    for method in METHODS.split(","):
        rows = table[table["method"] == method]
        assert list(dict.fromkeys(rows["layer"])) == steps
        assert len(rows) == len(steps) * len(inputs.rand_pos)
        assert rows["spearman_abs"].notna().all()


def test_reference_methods_conserve_each_members_difference_from_its_own_reference(members,
                                                                                   train_run):
    """DeepLIFT reports each member's f(x) − f(x_ref) itself (and its f(x_ref), whose mean
    travels with the mean map); integrated gradients reports f(x), and its f(x_ref) is computed
    member by member: either way the ensemble's conservation error is the mean map against the
    mean of the members' f(x) − f(x_ref)."""
    from brainage.data.reference_images import with_reference_images
    from brainage.faithfulness.conservation import reference_outputs
    from brainage.relevance import analyzer_from_config

    cfg = _config("explainer=[deeplift,integrated_gradients]",
                  "explainer.integrated_gradients.steps=4",
                  "explainer.integrated_gradients.baseline=training_mean")
    methods = with_reference_images(method_configs(cfg.explainer), train_run["prep"])
    x, mode = _volumes(train_run), parse_target_mode("true")
    classes = train_run["prep"].labels()[ROWS]
    for name, params in methods.items():
        alone = [analyzer_from_config(m, params) for m in members]
        ensemble = EnsembleAnalyzer(tuple(alone), False)
        assert identity_of(ensemble) == "reference"
        maps, errors = explain_maps(ensemble, x, mode, classes, 4, identity_of(ensemble))
        explained = []
        for analyzer in alone:
            explanation = analyzer.explain(x, target="true", labels=classes)
            reported = "reference_outputs" in explanation.extras
            reference = 0.0 if reported else reference_outputs(analyzer, "true", classes)
            explained.append(np.asarray(explanation.outputs, np.float64) - reference)
        explained = np.mean(explained, axis=0)
        total = maps.astype(np.float64).sum(axis=(1, 2, 3, 4))
        np.testing.assert_allclose(errors, np.abs(total - explained) / np.abs(explained),
                                   rtol=1e-4, atol=1e-6, err_msg=name)
        if name == "deeplift":
            assert (errors < 1e-4).all()
