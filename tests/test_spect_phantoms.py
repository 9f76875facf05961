"""Issue 23 (items 3 and 7): patient variability of the SPECT phantom, the wider held-out family, the out-of-family
focal-uptake set, lesion recovery and their seed splits."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import math
import re
import time

import pytest
import torch

from monai_diffrecon.data import spect_phantom
from monai_diffrecon.data.spect_lesions import HEART_VARIANTS, OOF_KINDS, out_of_family_cases, out_of_family_phantom
from monai_diffrecon.data.spect_phantom import (
    MU_BONE_140KEV,
    MU_LUNG_140KEV,
    MU_WATER_140KEV,
    PATIENT_RANGES,
    cardiac_phantom,
    draw_patient,
    lv_lowest_point,
    render_patient,
)
from monai_diffrecon.errors import InvalidValueError, ShapeError
from monai_diffrecon.evaluation.splits import EXTRA_SPLITS, SEEDS, STRIDE, seeds
from monai_diffrecon.metrics.spect import lesion_recovery

G32 = ((32, 32, 32), 12.0)


def g(s: int) -> torch.Generator:
    return torch.Generator().manual_seed(s)


def digest(ph: dict) -> str:
    h = hashlib.sha256()
    for k in ("activity", "mu", "myocardium", "defect"):
        h.update(ph[k].numpy().tobytes())
    return h.hexdigest()[:32]


# sha256 prefixes computed from the code before issue 23 (commit fd6275c), reference phantom and its v1 jitter
REFERENCE = [
    (((64, 64, 64), 6.0, False), (0.0, 0.0, 0.0), "2d2a7dc606a75426006ef40bb400938c"),
    (((64, 64, 64), 6.0, True), (0.0, 0.0, 0.0), "4461ba2ff650fffc8ac7cd34fc8e1bb5"),
    (((64, 64, 64), 6.0, True), (1.5, -2.0, 2.5), "268d79c2414e59599715b6c36a94b1a7"),
    (((32, 32, 32), 12.0, True), (0.0, 0.0, 0.0), "04427065947289e5b0066a75f5a5b959"),
    (((48, 40, 36), (7.0, 8.0, 9.0), True), (1.5, -2.0, 2.5), "0a6d4113aa5b4d175ee0e585a47d60e4"),
]


@pytest.mark.parametrize("args,center,expected", REFERENCE)
def test_reference_phantom_is_bit_identical_to_before(args, center, expected):
    assert digest(cardiac_phantom(*args, center_mm=center)) == expected


def test_v1_family_is_the_old_jittered_phantom():
    assert digest(cardiac_phantom((32, 32, 32), 12.0, True, g(1), family="v1")) == "175ba3ce65a0bd4097d4649e5c8839dd"


def _table_in_docstring() -> dict[str, tuple[tuple[float, float], tuple[float, float]]]:
    rows = {}
    for line in spect_phantom.__doc__.splitlines():
        m = re.match(r"^(\S.*?\S)\s{2,}\S+\s{2,}(−?[\d.]+) – (−?[\d.]+)\s{2,}(−?[\d.]+) – (−?[\d.]+)\s*$", line)
        if m:
            v = [float(s.replace("−", "-")) for s in m.groups()[1:]]
            rows[m.group(1)] = ((v[0], v[1]), (v[2], v[3]))
    return rows


def test_docstring_table_is_the_code_ranges():
    table = _table_in_docstring()
    assert len(table) == len(PATIENT_RANGES) == 29
    for (name, (tr, wd)), (key, rng) in zip(table.items(), PATIENT_RANGES.items()):
        assert rng["train"] == pytest.approx(tr) and rng["wide"] == pytest.approx(wd), (name, key)
        assert rng["wide"][0] <= rng["train"][0] and rng["wide"][1] >= rng["train"][1], key


def _values(p) -> dict[str, list[float]]:
    """The drawn value(s) of each range in PATIENT_RANGES (heart shift: three axes; state-dependent uptakes)."""
    out = {k: [getattr(p, k)] for k in PATIENT_RANGES if hasattr(p, k) and k != "heart_shift_mm"}
    out["heart_shift_mm"] = list(p.heart_shift_mm)
    for k, attr in (("liver", "liver_uptake"), ("background", "background"), ("pool", "pool")):
        out[f"{k}_{p.state}"] = [getattr(p, attr)]
    out["gut_uptake"] = [p.stomach_uptake] + [loop[6] for loop in p.gut_loops]
    out["gut_gap_mm"] = [loop[5] for loop in p.gut_loops]
    return out


def test_training_draws_respect_the_ranges_and_render_them():
    states, females, defects = set(), set(), 0
    for s in range(20):
        p = draw_patient(g(s), "train", defect=True)
        for k, vals in _values(p).items():
            lo, hi = PATIENT_RANGES[k]["train"]
            assert all(lo <= v <= hi for v in vals), (s, k, vals)
        states.add(p.state)
        females.add(p.female)
        ph = render_patient(p, *G32)
        act, mu = ph["activity"], ph["mu"]
        assert float(act.min()) >= 0 and float(act.max()) == 1.0  # nothing drawn is hotter than normal myocardium
        assert {round(v, 3) for v in torch.unique(mu).tolist()} <= {0.0, MU_LUNG_140KEV, MU_WATER_140KEV, MU_BONE_140KEV}
        assert bool((act[ph["myocardium"] & ~ph["defect"]] == 1.0).all())
        if bool(ph["defect"].any()):
            defects += 1
            assert torch.allclose(act[ph["defect"]], torch.tensor(p.defect_residual, dtype=torch.float32))
        # the body outline: the widest row of μ > 0 at the heart's height spans the lateral semi-axis (or the grid)
        body = mu > 0
        width = int(body[:, 16, :].sum(0).max()) * 12.0
        assert width == pytest.approx(min(2 * p.body_lateral_mm, 384.0), abs=24.0)
    assert states == {"rest", "stress"} and females == {True, False} and defects >= 8


def test_wide_draws_exceed_the_training_ranges_sometimes():
    outside, inside_wide = 0, True
    x, y, z = spect_phantom._grid(*G32)
    for s in range(20):
        p = draw_patient(g(s), "wide", defect=True)
        st = spect_phantom._structures(p, x, y, z)
        assert not bool(((st["lv_myo"] | st["rv_myo"]) & ~st["chest"]).any())  # the heart stays inside the chest
        for k, vals in _values(p).items():
            lo, hi = PATIENT_RANGES[k]["train"]
            wlo, whi = PATIENT_RANGES[k]["wide"]
            outside += sum(not lo <= v <= hi for v in vals)
            inside_wide &= all(wlo <= v <= whi for v in vals)
    assert inside_wide and outside >= 40  # ≈ 0.2 of ~40 draws per patient fall outside
    # the extreme corner of the wide family: smallest body, largest LV, most anterior shift — still inside the chest
    p = dataclasses.replace(draw_patient(g(0), "wide"), body_lateral_mm=120.0, body_ap_mm=86.0, heart_shift_mm=(0.0, -27.0, 0.0),
                            lv_long_mm=58.0, lv_short_mm=40.2)
    st = spect_phantom._structures(p, *spect_phantom._grid((64, 64, 64), 6.0))
    assert bool(st["lv_myo"].any()) and not bool(((st["lv_myo"] | st["rv_myo"]) & ~st["chest"]).any())


def test_rest_stress_pair_shares_anatomy_and_reversible_defects_vanish_at_rest():
    seen = set()
    for s in range(12):
        rest = draw_patient(g(s), "train", True, "rest")
        stress = draw_patient(g(s), "train", True, "stress")
        assert dataclasses.replace(rest, state="stress", liver_uptake=0, background=0, pool=0) == dataclasses.replace(
            stress, liver_uptake=0, background=0, pool=0)
        assert stress.liver_uptake < rest.liver_uptake and stress.background < rest.background
        r, st = render_patient(rest, *G32), render_patient(stress, *G32)
        assert torch.equal(r["mu"], st["mu"])
        assert bool(st["defect"].any()) or not stress.defect_shown
        assert bool(r["defect"].any()) == (not rest.reversible and bool(st["defect"].any()))
        seen.add(rest.reversible)
    assert seen == {True, False}


def test_draws_are_deterministic_fixed_in_count_and_grid_independent():
    a = cardiac_phantom(*G32, True, g(3))
    assert digest(a) == digest(cardiac_phantom(*G32, True, g(3)))
    assert digest(a) != digest(cardiac_phantom(*G32, True, g(4)))
    nxt = set()
    for fam, st, d in itertools.product(("train", "wide"), (None, "rest"), (False, True)):
        gg = g(5)
        draw_patient(gg, fam, d, st)
        nxt.add(float(torch.rand((), generator=gg)))
    assert len(nxt) == 1  # the generator advances by the same amount whatever is asked
    # a grid shifted by whole voxels sees the same patient (SPECT and CT grids of one seed)
    b = cardiac_phantom((16, 16, 16), 12.0, True, g(3), center_mm=(48.0, -24.0, 36.0))
    for k in ("activity", "mu", "myocardium", "defect"):
        assert torch.equal(b[k], a[k][12:28, 6:22, 11:27]), k


def test_heart_points_left_anterior_inferior():
    for s in range(5):
        p = draw_patient(g(s), "train")
        e_long, e_sept, e_ant = spect_phantom._heart_frame(p)
        assert e_long[0] > 0 and e_long[1] < 0 and e_long[2] < 0  # apex: left, anterior, inferior
        assert e_sept[0] < 0  # septum towards the patient's right
        assert abs(sum(a * b for a, b in zip(e_long, e_sept))) < 1e-12 and abs(sum(a * b for a, b in zip(e_long, e_ant))) < 1e-12
        low = lv_lowest_point(p)
        x, y, z = (torch.tensor([c], dtype=torch.float64) for c in low)
        # the lowest point lies on the outer surface, and nothing of the LV is below it
        q = spect_phantom._structures(p, x, y, z + 0.01)
        assert bool(q["lv_myo"][0]) or bool(q["heart_env"][0])
        ph = render_patient(p, (48, 48, 48), 5.0)
        zz = spect_phantom._grid((48, 48, 48), 5.0)[2]
        assert float(zz[ph["myocardium"]].min()) >= low[2] - 1e-9


def test_phantom_generation_is_fast_at_64():
    cardiac_phantom((64,) * 3, 6.0, True, g(0))  # warm-up
    t = time.perf_counter()
    for s in range(3):
        cardiac_phantom((64,) * 3, 6.0, True, g(s), family="wide")
    assert (time.perf_counter() - t) / 3 < 1.0  # ~0.03 s idle, ~0.2 s on the shared, loaded CPU
    t = time.perf_counter()
    out_of_family_phantom("lung", (64,) * 3, 6.0, g(1))
    assert time.perf_counter() - t < 2.0


def test_bad_phantom_arguments_raise_typed_errors():
    with pytest.raises(InvalidValueError, match="family"):
        cardiac_phantom(*G32, generator=g(0), family="obese")
    with pytest.raises(InvalidValueError, match="state"):
        cardiac_phantom(*G32, state="rest")
    with pytest.raises(InvalidValueError, match="state"):
        draw_patient(g(0), state="exercise")
    with pytest.raises(ShapeError, match="shape"):
        cardiac_phantom((32, 32), 12.0)
    with pytest.raises(InvalidValueError, match="voxel_size_mm"):
        cardiac_phantom(*G32[:1], -1.0)
    with pytest.raises(InvalidValueError, match="kind"):
        out_of_family_phantom("kidney", *G32, g(0))
    with pytest.raises(InvalidValueError, match="generator"):
        out_of_family_phantom("lung", *G32)


# ----------------------------------------------------------------------------------------- out-of-family set
OOF_SEED = SEEDS["spect"]["test_oof"].start


@pytest.mark.parametrize("kind", OOF_KINDS)
def test_out_of_family_kinds(kind):
    for s in range(2):
        seed = OOF_SEED + 7 * (s + 2 * OOF_KINDS.index(kind))
        ph = out_of_family_phantom(kind, *G32, g(seed))
        body = ph["mu"] > 0
        assert float(ph["mu"].max()) <= 5.0 and float(ph["activity"].min()) >= 0
        assert set(ph) >= {"activity", "mu", "myocardium", "defect", "lesions", "implant"}
        assert digest(ph) == digest(out_of_family_phantom(kind, *G32, g(seed)))  # deterministic
        if kind in ("lung", "breast", "bone", "liver", "gut"):
            assert 1 <= len(ph["lesions"]) <= 3
        else:
            assert ph["lesions"] == []
        for les in ph["lesions"]:
            assert bool(les["mask"].any()) and not bool((les["mask"] & ~body).any())
            assert not bool((les["mask"] & ph["myocardium"]).any())
            lo, hi = (15.0, 30.0) if kind == "gut" else (8.0, 30.0)
            assert lo <= les["diameter_mm"] <= hi
            assert les["contrast"] >= max(0.3, 2 * les["background"])  # a hot focus
            assert les["contrast"] <= (2.5 if kind == "gut" else max(1.5, 2 * les["background"] + 0.3))
            region = {"bone": ("spine", "rib", "sternum")}.get(kind, (kind,))
            assert les["region"] in region
            # on a fine grid centred on the lesion, its voxel count matches the sphere's volume
            # (1 mm voxels, the grid off the sphere's centre by 0.3 mm so the lattice count is not a symmetric case)
            fine = out_of_family_phantom(kind, (36, 36, 36), 1.0, g(seed), center_mm=tuple(c + 0.3 for c in les["centre_mm"]))
            match = [f for f in fine["lesions"] if f["centre_mm"] == les["centre_mm"]]
            assert len(match) == 1
            vol = float(match[0]["mask"].sum())
            assert vol == pytest.approx(math.pi / 6 * les["diameter_mm"] ** 3, rel=0.05)
            assert float(fine["activity"][17, 17, 17]) == pytest.approx(les["contrast"], rel=1e-5)
            if les["region"] == "lung":
                assert float(fine["mu"][17, 17, 17]) == pytest.approx(MU_WATER_140KEV)
            if kind == "bone":
                assert float(fine["mu"][17, 17, 17]) == pytest.approx(MU_BONE_140KEV)
        p = ph["patient"]
        if kind == "gut":
            les, low = ph["lesions"][0], lv_lowest_point(p)
            top = les["centre_mm"][2] + les["diameter_mm"] / 2
            assert 0.0 <= low[2] - top <= 5.0 + 1e-9  # right next to (below) the inferior wall
        if kind == "hot_liver":
            assert 1.0 <= p.liver_uptake <= 2.0
            assert 0.0 <= lv_lowest_point(p)[2] - (p.heart_centre_mm[2] - p.liver_dome_mm) <= 5.0 + 1e-9
        if kind == "breast":
            assert p.female
        if kind == "implant":
            imp = ph["implant"]
            assert bool(imp.any()) and not bool((imp & ~body).any()) and float(ph["activity"][imp].max()) == 0.0
            lo, hi = (0.6, 2.0) if ph["variant"] == "pacemaker" else (0.12, 0.30)
            assert lo <= float(ph["mu"][imp].min()) and float(ph["mu"][imp].max()) <= hi
        else:
            assert not bool(ph["implant"].any())
        if kind == "heart":
            assert ph["variant"] in HEART_VARIANTS
            wide = PATIENT_RANGES
            out = (not wide["wall_mm"]["wide"][0] <= p.wall_mm <= wide["wall_mm"]["wide"][1]
                   or not wide["heart_elevation_deg"]["wide"][0] <= p.heart_elevation_deg <= wide["heart_elevation_deg"]["wide"][1]
                   or p.lv_long_mm > wide["lv_long_mm"]["wide"][1])
            assert out and bool(ph["myocardium"].any())


def test_out_of_family_cases_rotate_kinds_on_their_own_seeds():
    cases = out_of_family_cases(24)
    assert [k for k, _ in cases] == list(OOF_KINDS) * 3
    assert len({s for _, s in cases}) == 24 and all(s in SEEDS["spect"]["test_oof"] for _, s in cases)


def test_implant_variants_and_heart_variants_all_occur():
    implants = {out_of_family_phantom("implant", (16, 16, 16), 24.0, g(OOF_SEED + s))["variant"] for s in range(8)}
    hearts = {out_of_family_phantom("heart", (16, 16, 16), 24.0, g(OOF_SEED + s))["variant"] for s in range(30)}
    assert implants == {"pacemaker", "prosthesis"} and hearts == set(HEART_VARIANTS)


# ----------------------------------------------------------------------------------------- lesion recovery
def test_lesion_recovery_is_one_on_the_truth_and_scale_free():
    ph = out_of_family_phantom("lung", *G32, g(OOF_SEED))
    for les in ph["lesions"]:
        assert lesion_recovery(ph["activity"], ph, les) == pytest.approx(1.0, abs=1e-12)
        assert lesion_recovery(37.5 * ph["activity"], ph, les["mask"]) == pytest.approx(1.0, rel=1e-6)


def test_lesion_recovery_closed_form_and_blur():
    # a slab "myocardium" of uptake 1 and a 3-voxel-wide lesion of uptake 2 in a zero background
    act = torch.zeros(24, 24, 24)
    myo = torch.zeros(24, 24, 24, dtype=torch.bool)
    myo[2:22, 2:22, 2:10] = True
    les = torch.zeros_like(myo)
    les[10:13, 10:13, 16:19] = True
    act[myo], act[les] = 1.0, 2.0
    ph = {"activity": act, "myocardium": myo, "defect": torch.zeros_like(myo)}
    recon = act.clone()
    recon[les] = 1.0  # half the lesion's uptake, myocardium intact: recovery 1/2 exactly
    assert lesion_recovery(recon, ph, les) == pytest.approx(0.5)
    k = torch.exp(-torch.arange(-3, 4, dtype=torch.float32) ** 2 / (2 * 1.2**2))
    k = (k / k.sum())
    blurred = act[None, None]
    for dim in range(3):
        shape = [1, 1, 1, 1, 1]
        shape[2 + dim] = 7
        blurred = torch.nn.functional.conv3d(blurred, k.reshape(shape), padding=[3 if d == dim else 0 for d in range(3)])
    r = lesion_recovery(blurred[0, 0], ph, les)
    assert 0.2 < r < 0.9  # a small lesion loses more than the thick slab


def test_lesion_recovery_refuses_bad_input():
    ph = out_of_family_phantom("liver", *G32, g(OOF_SEED))
    les = ph["lesions"][0]
    with pytest.raises(ShapeError, match="recon"):
        lesion_recovery(ph["activity"][:-1], ph, les)
    with pytest.raises(InvalidValueError, match="empty"):
        lesion_recovery(ph["activity"], ph, torch.zeros_like(les["mask"]))
    with pytest.raises(InvalidValueError, match="NaN"):
        lesion_recovery(ph["activity"] * float("nan"), ph, les)
    with pytest.raises(InvalidValueError, match="non-positive"):
        lesion_recovery(torch.zeros_like(ph["activity"]), ph, les)


# ----------------------------------------------------------------------------------------- seed splits
def test_spect_held_out_splits_are_disjoint_from_every_other_spect_split():
    names = list(SEEDS["spect"])
    assert set(EXTRA_SPLITS["spect"]) <= set(names)
    for a, b in itertools.combinations(names, 2):
        ra, rb = SEEDS["spect"][a], SEEDS["spect"][b]
        assert ra.stop <= rb.start or rb.stop <= ra.start, (a, b)
    used = {s: {x + k for x in seeds("spect", s, 100) for k in range(STRIDE["spect"])} for s in names}
    for a, b in itertools.combinations(names, 2):
        assert not used[a] & used[b]
