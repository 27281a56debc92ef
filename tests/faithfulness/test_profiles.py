"""Map profiles: roughness, focus and between-subject similarity."""
import numpy as np
import pytest


def test_map_profile_tells_local_from_general(rng):
    from scipy.ndimage import gaussian_filter

    from brainage.faithfulness.profiles import map_profile

    shape = (4, 16, 17, 15, 1)
    noise = rng.uniform(size=shape)
    smooth = np.stack([gaussian_filter(v[..., 0], 3)[..., None] for v in noise])
    rough, soft = map_profile(noise), map_profile(smooth)
    assert rough["roughness"] > 3 * soft["roughness"]
    same = np.repeat(smooth[:1], 4, axis=0)
    assert map_profile(same)["between_subject_spearman"] == pytest.approx(1.0)
    assert abs(rough["between_subject_spearman"]) < 0.1
    peaked = np.zeros(shape)
    peaked[:, 8, 8, 7] = 1.0
    assert map_profile(peaked)["focus"] < 0.001 < map_profile(np.ones(shape))["focus"]
