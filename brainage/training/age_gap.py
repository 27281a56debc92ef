"""The brain-age gap and its bias correction: moved to :mod:`brainage.data.age_gap` so that the
explain, evaluate and infer libraries can apply a training run's stored correction too (they may
not import :mod:`brainage.training`). This import path keeps working."""
from brainage.data.age_gap import AgeBiasCorrection, gap_age_correlations, gap_table

__all__ = ["AgeBiasCorrection", "gap_age_correlations", "gap_table"]
