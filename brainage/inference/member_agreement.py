"""An ensemble's explain run: in how many of its members each region's group effect holds.

The stage tests an ensemble's mean maps as it tests one run's. For the regions of the explain
run's own atlas it then reruns the same region test — design, covariates, GM adjustment,
permutations and seed unchanged — on each member's own relevance, read from
``regions/<atlas>_members.csv`` (each member's region rows of each subject's primary map, the
``share`` or ``sum`` column as ``measure`` says). ``members_agreeing`` counts the members whose
own test finds the region FWE-significant at the run's level (``alpha_fwe``) with the sign of the
ensemble's t (``members_agreeing_adj`` the same for the GM-adjusted test); ``n_members`` is the
ensemble's size. Explain writes no member's voxel maps, so voxel-wise results and atlases summed
from the maps (any but the explain run's) get no count.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from brainage.errors import InferError
from brainage.inference.region_tests import ADJUSTED, region_inference
from brainage.inference.relevance_data import REGION_COLUMN, RegionValues
from brainage.neuro.regions import OUTSIDE

AGREEING = "members_agreeing"
N_MEMBERS = "n_members"
HOW = ("the members whose own maps give the region the same test (design, "
       "covariates, GM adjustment, permutations, seed) FWE-significant at alpha_fwe with the "
       "ensemble's sign of t; from regions/<atlas>_members.csv")
NOT_COUNTED = ("the explain run writes no member's own maps, only its region rows in the explain "
               "run's atlas, so regions of this atlas are not counted")


def member_values(run, values: RegionValues, method: str, subject_ids, measure: str) -> list:
    """Each member's relevance ``measure`` of ``values``' regions, subjects × regions in
    ``values``' order, one array per member."""
    path = run.member_table_path(values.atlas)
    if not path.is_file():
        raise InferError(f"{path} is missing: the ensemble's explain run {run.dir} wrote no "
                         f"member region table for atlas {values.atlas}")
    table = pd.read_csv(path, dtype={"subject_id": str})
    table = table[(table["method"] == method) & (table["region"] != OUTSIDE)]
    members = sorted(table["member"].unique())
    if len(members) != run.n_members:
        raise InferError(f"{path} has {method} rows of {len(members)} members; the ensemble has "
                         f"{run.n_members}")
    column = REGION_COLUMN[measure]
    return [_pivot(table[table["member"] == m], column, values, subject_ids, path, m)
            for m in members]


def _pivot(rows: pd.DataFrame, column: str, values: RegionValues, subject_ids, path,
           member) -> np.ndarray:
    wide = rows.pivot_table(index="subject_id", columns="region", values=column, aggfunc="first")
    missing = [s for s in subject_ids if s not in wide.index]
    missing += [r for r in values.names if r not in wide.columns]
    if missing:
        raise InferError(f"{path}: member {member} has no rows for {', '.join(missing[:5])}")
    return wide.loc[list(subject_ids), list(values.names)].to_numpy(dtype=np.float64)


def agreement_counts(ctx, values: RegionValues, table: pd.DataFrame, members: list) -> pd.DataFrame:
    """``table`` (one atlas's region tests of the mean maps) with ``members_agreeing``
    (``_adj``) and ``n_members`` columns, counted from the members' own tests."""
    s = ctx.settings
    gm = ctx.grey.density[values.atlas][:, values.ids] if s.regions.gm_adjust else None
    suffixes = ("", ADJUSTED) if gm is not None else ("",)
    counts = {suffix: np.zeros(len(table), dtype=np.int64) for suffix in suffixes}
    for member in members:
        own = region_inference(member, values.names, values.n_voxels, ctx.design,
                               ctx.covariates.matrix, gm, s.regions.n_perm, s.seed)
        own = own.set_index("region").loc[table["region"]]
        for suffix in suffixes:
            agrees = ((own[f"p_fwe{suffix}"].to_numpy() <= ctx.alpha_fwe)
                      & (np.sign(own[f"t{suffix}"].to_numpy())
                         == np.sign(table[f"t{suffix}"].to_numpy())))
            counts[suffix] += agrees
    table = table.copy()
    for suffix in suffixes:
        table[f"{AGREEING}{suffix}"] = counts[suffix]
    table[N_MEMBERS] = len(members)
    return table


def with_member_agreement(ctx, data, tables: dict) -> dict:
    """One method's region tables, those of the explain run's atlas with the members' agreement
    (an ensemble's run); every table unchanged for one model's run."""
    if ctx.run.n_members is None:
        return tables
    from_table = {lab.atlas for lab in ctx.labels if lab.from_table}
    ids = list(ctx.subjects["subject_id"])
    out = dict(tables)
    for values in data.regions:
        if values.atlas in from_table:
            members = member_values(ctx.run, values, data.method, ids, ctx.settings.measure)
            out[values.atlas] = agreement_counts(ctx, values, tables[values.atlas], members)
    return out


def ensemble_summary(ctx) -> dict:
    """``infer.json``'s ``ensemble``: the members, how agreement is counted and where it is not."""
    if ctx.run.n_members is None:
        return {}
    ensemble = ctx.run.summary["ensemble"]
    return {"ensemble": {
        "n_members": ctx.run.n_members, "train_dirs": ensemble.get("train_dirs"),
        "members_agreeing": HOW,
        "counted_atlases": [lab.atlas for lab in ctx.labels if lab.from_table],
        "not_counted": {lab.atlas: NOT_COUNTED for lab in ctx.labels if not lab.from_table},
        "voxelwise": "not counted: the explain run writes no member's own maps"}}
