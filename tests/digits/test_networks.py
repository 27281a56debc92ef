"""The seed's two digit networks: parameter counts, and the CNN's feature size computed by hand."""
import pytest

from brainage.digits.networks import build_cnn, build_dense, cnn_feature_size


def test_seed_networks_have_the_seed_parameter_counts():
    assert build_dense().count_params() == 266_610  # seed 000 §2.2.3
    assert build_cnn().count_params() == 93_322


@pytest.mark.parametrize("size, filters, pool_after", [(28, (32, 64, 64), 2), (12, (4, 4), 1), (9, (2,), 1)])
def test_feature_size_matches_the_built_cnn(size, filters, pool_after):
    model = build_cnn((size, size, 1), filters, pool_after, dense_units=0)
    edge = cnn_feature_size(size, len(filters), pool_after)
    assert model.get_layer("flatten").output.shape[1] == edge * edge * filters[-1]


def test_feature_size_by_hand():
    assert cnn_feature_size(28, 3, 2) == 3  # 26 -> 13, 11 -> 5, 3
    assert cnn_feature_size(8, 3, 2) < 1  # 6 -> 3, 1 -> 0
