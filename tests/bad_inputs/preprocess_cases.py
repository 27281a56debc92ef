"""Bad inputs of the preprocess stage (``make preprocess``): the raw folder, where the derivative
goes, and its settings. Each is refused before any subject is preprocessed and writes no
derivative; the raw folder is never written."""
from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd

from tests.bad_inputs.world import Call, Case, tree_hashes

IDS = ("sub-01", "sub-02")


def _raw(c, table=True):
    """A tiny BIDS raw folder of the case: two subjects' T1 images and (``table``) participants.tsv."""
    root = c.tmp / "raw"
    for sid in IDS:
        anat = root / sid / "anat"
        anat.mkdir(parents=True)
        nib.save(nib.Nifti1Image(np.ones((6, 7, 8), np.float32), np.eye(4)),
                 str(anat / f"{sid}_T1w.nii.gz"))
    if table:
        pd.DataFrame({"participant_id": list(IDS), "age": ["30", "40"]}).to_csv(
            root / "participants.tsv", sep="\t", index=False)
    return root


def _no_derivative(c, run_dir):
    """Nothing preprocessed: no derivative, and the raw folder (if any) as it was made."""
    assert not (c.tmp / "derivatives").exists()
    root = c.tmp / "raw"
    if root.exists():
        assert not (root / "derivatives").exists()
        assert sorted(tree_hashes(root)) == sorted(
            [f"{sid}/anat/{sid}_T1w.nii.gz" for sid in IDS]
            + (["participants.tsv"] if (root / "participants.tsv").exists() else []))


def _case(id, category, what, make_overrides, culprit, cli=False):
    def make(c):
        overrides = make_overrides(c)
        if not any(o.startswith("derivatives_dir=") for o in overrides):
            overrides.append(f"derivatives_dir={c.tmp / 'derivatives'}")
        return Call(["progress=false", "workers=1", *overrides])
    return Case(id, category, what, "preprocess", make, culprit, cli=cli, check=_no_derivative)


CASES = [
    _case("preprocess-root-not-given", "raw folders", "make preprocess without data.root",
          lambda c: [], r"^data\.root is required: the raw T1 folder \(BIDS raw: .*\), e\.g\. make "
          r"preprocess data\.root=", cli=True),
    _case("preprocess-root-missing", "raw folders", "data.root naming no folder",
          lambda c: [f"data.root={c.tmp / 'none'}"], r"data\.root=.*none: no such folder; expected "
          r"the raw T1 folder"),
    _case("preprocess-no-table", "raw folders", "a raw folder without participants.tsv",
          lambda c: [f"data.root={_raw(c, table=False)}"],
          r"participants table not found: .*raw/participants\.tsv"),
    _case("preprocess-derivative-inside-raw", "raw folders", "derivatives_dir inside data.root",
          lambda c: [f"data.root={_raw(c)}", f"derivatives_dir={c.tmp / 'raw' / 'derivatives'}"],
          r"derivatives_dir puts the derivative at .*raw/derivatives/raw-[0-9a-f]+, inside "
          r"data\.root=.*raw; the raw folder is never written"),
    _case("preprocess-step-unknown", "configs", "++steps.n4_shrnk=2 (a misspelt step setting)",
          lambda c: [f"data.root={_raw(c)}", "++steps.n4_shrnk=2"],
          r"steps\.n4_shrnk is not a step setting; expected one of seed, n4_shrink, ", cli=True),
    _case("preprocess-on-bad-subject", "configs", "on_bad_subject=skip",
          lambda c: [f"data.root={_raw(c)}", "on_bad_subject=skip"],
          r"on_bad_subject='skip'; expected 'fail' or 'exclude'"),
]
