"""Synthetic grey-matter cohort: real MNI anatomy aged by a literature model, written in the PAC layout.

Every subject starts from the MNI152 2009 grey-matter template on the cohort grid, divided into
Neuromorphometrics regions (:mod:`.anatomy`), is aged by a model taken from the literature
(:mod:`.ageing` for the curves and the regional pattern, :mod:`.atrophy` for loss and cortical
thinning per voxel), and rendered with between-subject and site variability (:mod:`.render`).
A planted cohort adds a grey-matter loss in a few regions that alone decides the label, while an
independent nuisance age drives the ageing (:mod:`.plant`).
:mod:`.participants` draws ages, sex and sites; :mod:`.writer` writes the cohort on a worker pool
with its ground truth (:mod:`.ground_truth`) and its record (:mod:`.record`); :mod:`.settings`
holds the generator's parameters and reads a data config. Everything subject-independent is
computed once; subject ``i`` draws from its own seed sequence ``(seed, 2, i)``, so files do not
depend on the number of worker processes.

The names below are the package's public interface: import them from ``brainage.data.synthetic``.
"""
from brainage.data.synthetic.ageing import (
    CURVES,
    DEFAULT_EFFECT,
    REFERENCE_AGES,
    REFERENCES,
    REGION_EFFECTS,
    AgeCurve,
    RegionEffect,
    region_effect,
    ventricle_displacement_mm,
)
from brainage.data.synthetic.anatomy import Anatomy, build_anatomy, gm_region_names, region_table
from brainage.data.synthetic.atrophy import LossMaps, atrophied_gm, loss_maps, relative_loss
from brainage.data.synthetic.participants import (
    AGE_BIN_EDGES,
    AGE_DISTRIBUTIONS,
    PAC2019_BIN_PROPORTIONS,
    draw_participants,
    sample_ages,
)
from brainage.data.synthetic.plant import planted_dose, planted_mask
from brainage.data.synthetic.record import GENERATOR_VERSION, read_cohort_record
from brainage.data.synthetic.render import SubjectDraw, draw_subject, expected_gm, render_subject
from brainage.data.synthetic.settings import PlantSettings, SyntheticCohortSettings, SyntheticSettings
from brainage.data.synthetic.writer import ensure_cohort, generate_cohort

__all__ = [
    "AGE_BIN_EDGES", "AGE_DISTRIBUTIONS", "CURVES", "DEFAULT_EFFECT", "GENERATOR_VERSION",
    "PAC2019_BIN_PROPORTIONS", "REFERENCES", "REFERENCE_AGES", "REGION_EFFECTS", "AgeCurve",
    "Anatomy", "LossMaps", "PlantSettings", "RegionEffect", "SubjectDraw", "SyntheticCohortSettings",
    "SyntheticSettings", "atrophied_gm", "build_anatomy", "draw_participants", "draw_subject",
    "ensure_cohort", "expected_gm", "generate_cohort", "gm_region_names", "loss_maps",
    "planted_dose", "planted_mask", "read_cohort_record", "region_effect", "region_table",
    "relative_loss", "render_subject", "sample_ages", "ventricle_displacement_mm",
]
