"""The peer's agreement verdict: within tolerance, a real difference, or beyond float32's resolution."""
import numpy as np
import pytest

from brainage.benchmark.zennit_peer import agreement, relative_l1


def row(batch=1, **entries):
    return {"batch": batch, **entries}


def test_relative_l1_is_the_summed_difference_over_our_summed_magnitude():
    ours = np.array([[1.0, -3.0]], np.float32)
    assert relative_l1(ours, ours) == 0.0
    assert relative_l1(ours, np.array([[1.5, -3.0]])) == pytest.approx(0.5 / 4.0)
    assert relative_l1(np.zeros((1, 2)), np.ones((1, 2))) > 1e300  # all-zero maps cannot agree


def test_maps_within_tolerance_agree_and_rows_without_a_peer_are_skipped():
    rows = [row(zennit_dtd_rel_l1=1e-7, zennit_lrp_composite_rel_l1=1e-4), row(2)]
    assert agreement(rows, 1e-4) == ([], [])


def test_a_difference_float32_resolves_is_reported_with_batch_and_method():
    rows = [row(8, zennit_dtd_rel_l1=3e-3, zennit_dtd_float32_error=1e-7)]
    differences, unresolved = agreement(rows, 1e-4)
    assert differences == ["batch 8: Zennit's dtd maps differ from ours by relative L1 3.00e-03 > 0.0001 "
                           "(float32 resolves it to 1.00e-07)"]
    assert unresolved == []


def test_an_ill_conditioned_map_is_allowed_twice_zennits_own_float32_error_and_listed():
    rows = [row(1, zennit_lrp_composite_rel_l1=1.8e-4, zennit_lrp_composite_float32_error=1.1e-4),
            row(2, zennit_lrp_composite_rel_l1=3e-4, zennit_lrp_composite_float32_error=1.1e-4)]
    differences, unresolved = agreement(rows, 1e-4)
    assert len(unresolved) == 1 and unresolved[0].startswith("batch 1: Zennit's lrp_composite maps")
    assert "within float32's resolution" in unresolved[0]
    assert len(differences) == 1 and differences[0].startswith("batch 2: Zennit's lrp_composite maps")
