"""Every target statement of the results files, computed by the evaluation harness → benchmarks/results/targets.json
(+ targets.md).

Usage:  .venv/bin/python benchmarks/targets.py [--check]   (--check: exit 1 if targets.json/.md are not what this writes)
        .venv/bin/python benchmarks/targets.py --compare REV   (→ results/targets_before_after.md: each target in
                                                               git revision REV's targets.json beside today's)

Reads the per-case rows each benchmark already wrote (``benchmarks/results/<name>.json``) — no method is re-run here —
and states each target from the paired difference's 95 % bootstrap CI: **met** only if the CI's lower bound clears
the threshold *and* the baseline demonstrably beats the trivial input (zero-filled / blurred / cloudy / the input
image; lower CI bound of its paired gain above 0). So
this file is the "same outputs, new measuring stick" view: where a results file's own prose said "met" on a mean or
against a broken baseline, this says what the numbers support. Protocol changes that need new runs (SPECT against the
full-dose reconstruction, MSM from noise, shift-aligned blind deblurring, ≥ 12 natural cases, tuned baselines) come
with the re-runs of each benchmark; until then those results files keep their current protocol, stated in each entry.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from monai_diffrecon.evaluation import Results, Target, check_target, evaluate_results_doc, targets_section, update_targets_json  # noqa: E402

RES = Path(__file__).resolve().parent / "results"


def rows(name: str) -> list[dict]:
    return json.loads((RES / f"{name}.json").read_text())["rows"]


def by_image_mean(rs: list[dict], keys: tuple, method: str, split_key: str, labels: dict) -> list[dict]:
    """Per-``keys`` means of ``method``'s PSNR over the rows of each ``split_key`` value, as methods ``labels[value]``
    (e.g. seen vs unseen kernels per image: a paired comparison of the same images)."""
    acc: dict = {}
    for r in rs:
        if r["method"] == method:
            acc.setdefault((tuple(r[k] for k in keys), r[split_key]), []).append(r["psnr"])
    return [{**dict(zip(keys, case)), "method": labels[v], "psnr": sum(p) / len(p)} for (case, v), p in acc.items()]


def own_specs() -> dict[str, list[dict]]:
    """``{results file: entries}`` of every results JSON that states its own targets (``"targets"``: specs written by
    :func:`~monai_diffrecon.evaluation.target_spec` in the benchmark that made it), re-computed from its rows."""
    out = {}
    for p in sorted(RES.glob("*.json")):
        doc = json.loads(p.read_text())
        if isinstance(doc, dict) and doc.get("targets"):
            out[p.stem] = evaluate_results_doc(doc)
    return out


def legacy_specs() -> list[tuple[Results, list[Target], str]]:
    """Targets of the results files written before their benchmark used the harness (skipped once a file has its own)."""
    out = []
    # SPECT (protocol: heart region vs the unblurred phantom; the full-dose reference comes with the re-run)
    spect = Results(rows("spect"), ("phantom",))
    ours, osem = "ours (2.5D cond. + MLEM + TV-z)", "OSEM + filter"
    out.append((spect, [Target("SPECT dose 5 %: ours − OSEM+filter ≥ +3 dB (heart PSNR)", ours, osem, "psnr_heart", 3.0, "spect.md",
                               {"setting": "dose 5%"}),
                        Target("SPECT 9 views: ours − OSEM+filter ≥ +2 dB (heart PSNR)", ours, osem, "psnr_heart", 2.0, "spect.md",
                               {"setting": "9 views"})],
                "heart PSNR against the unblurred phantom; no plain-OSEM row, so no trivial-input guard"))
    # MRI, simulated and real slices
    for name in ("mri", "mri_real"):
        mri = Results(rows(name), ("slice",))
        ts = []
        for m in ("MSM (self-supervised)", "SelfDB (self-supervised), 2 steps, full support"):
            for b in ("SENSE-CG", "TV (ADMM, closed-form prox)"):
                ts.append(Target(f"{name} R=4: {m} beats {b}", m, b, "psnr", 0.0, f"{name}.md", {"R": 4}, trivial="zero-filled"))
        ts.append(Target(f"{name} R=4: MSM within 1 dB of the clean-prior DPS", "MSM (self-supervised)", "DPS (clean-trained prior)", "psnr",
                         -1.0, f"{name}.md", {"R": 4}, trivial="zero-filled"))
        out.append((mri, ts, "magnitude PSNR vs the reference; MSM warm-started from SENSE-CG at t = 20 (not from noise)"))
    # natural blind deblurring (protocol: image PSNR not shift-aligned; comes with the re-run)
    nat = Results(rows("natural"), ("image", "kernel"))
    blind = "Blind-PnPDM (image + kernel diffusion priors)"
    out.append((nat, [Target("Blind-PnPDM within 1.5 dB of known-kernel PnP-DM", blind, "PnP-DM, true kernel (upper bound)", "psnr", -1.5,
                             "natural.md", trivial="blurred"),
                      Target("Blind-PnPDM beats Richardson-Lucy with an estimated kernel", blind,
                             "Richardson-Lucy (30 it.), estimated Gaussian kernel", "psnr", 0.0, "natural.md", trivial="blurred"),
                      Target("Blind-PnPDM beats Wiener with an estimated kernel", blind, "Wiener, estimated Gaussian kernel", "psnr", 0.0,
                             "natural.md", trivial="blurred")],
                "PSNR without shift alignment; 4 images × 3 kernels"))
    # Diff-Unfolding, natural and MRI
    unf = rows("unfolding")
    du = "Diff-Unfolding (10 NFE)"
    out.append((Results(unf, ("image", "kernel")), [
        Target("Diff-Unfolding (10 NFE) beats PnP-DM (10 NFE) on seen kernels", du, "PnP-DM (10 Gibbs iterations)", "psnr", 0.0,
               "unfolding.md", {"seen": True}, trivial="blurred"),
        Target("Diff-Unfolding (10 NFE) beats DiffPIR (10 NFE) on seen kernels", du, "DiffPIR (10 NFE)", "psnr", 0.0, "unfolding.md",
               {"seen": True}, trivial="blurred")], "seen kernels: 3 draws of the training family; 4 images"))
    out.append((Results(by_image_mean(unf, ("image",), du, "seen", {True: "seen", False: "unseen"}), ("image",)), [
        Target("Diff-Unfolding loses ≤ 0.5 dB on unseen kernels", "unseen", "seen", "psnr", -0.5, "unfolding.md")],
        "per image: mean over its unseen kernels minus mean over its seen kernels"))
    unfm = rows("unfolding_mri")
    out.append((Results(unfm, ("image", "kernel")), [
        Target("MRI Diff-Unfolding (10 NFE) beats PnP-DM (10 NFE) on seen masks", du, "PnP-DM (10 Gibbs iterations)", "psnr", 0.0,
               "unfolding_mri.md", {"seen": True}, trivial="zero-filled")], "4 slices × seen masks"))
    out.append((Results(by_image_mean(unfm, ("image",), du, "seen", {True: "seen", False: "unseen"}), ("image",)), [
        Target("MRI Diff-Unfolding loses ≤ 0.5 dB on unseen masks", "unseen", "seen", "psnr", -0.5, "unfolding_mri.md")],
        "per slice: unseen-mask mean minus seen-mask mean"))
    # RELD vs pixel DiffPIR at equal or better PSNR
    reld = Results(rows("reld"), ("image",))
    out.append((reld, [Target(f"RELD ≥ DiffPIR-100 PSNR ({task})", "RELD", "DiffPIR-100", "psnr", 0.0, "reld.md", {"task": task}, trivial="input")
                       for task in ("denoise", "deblur", "sr")], "4 held-out photographs per task"))
    # score-based PnP vs the classical denoiser in the same algorithm
    sp = [{**r, "method": "blurred" if r["algorithm"] == "blurred" else f"{r['algorithm']} / {r['denoiser']}"} for r in rows("score_pnp")]
    spr = Results(sp, ("image", "kernel"))
    out.append((spr, [Target(f"score-based beats DnCNN in {a}", f"{a} / score-based (diffusion prior)", f"{a} / classical (DnCNN)", "psnr",
                             0.0, "score_pnp.md", trivial="blurred") for a in ("PnP-ADMM", "DPIR (HQS)", "RED (PGD)")],
                "same σ schedule and λ for both denoisers (not tuned per denoiser)"))
    # satellite
    sat = Results(rows("satellite"), ("scene",))
    out.append((sat, [Target("DB-CR: SAR fusion ≥ +1 dB over no SAR (1 step)", "DB-CR (SAR), 1 step", "bridge without SAR, 1 step", "psnr", 1.0,
                             "satellite.md", trivial="cloudy input")], "32 simulated scenes"))
    sb = Results(rows("satellite_baselines"), ("scene",))
    bridge = "DB-CR (SAR bridge), 1 step"
    out.append((sb, [Target("1-step bridge beats the conditional DDPM from noise (DDIM 25)", bridge, "conditional DDPM from noise, DDIM 25", "psnr",
                            0.0, "satellite_baselines.md", trivial="cloudy input"),
                     Target("1-step bridge beats the same-size UNet regressor", bridge, "UNet regressor (same network, t ≡ 1)", "psnr", 0.0,
                            "satellite_baselines.md", trivial="cloudy input"),
                     Target("SAR fusion ≥ +1 dB (matched-budget models)", bridge, "bridge without SAR, 1 step", "psnr", 1.0,
                            "satellite_baselines.md", trivial="cloudy input")], "matched CPU budget, tiny networks"))
    return out


def main() -> None:
    import argparse

    ap = argparse.ArgumentParser()
    ap.add_argument("--check", action="store_true", help="compare with the committed files instead of writing them")
    ap.add_argument("--compare", metavar="REV", help="write results/targets_before_after.md against REV's targets.json")
    args = ap.parse_args()
    if args.compare:
        compare(args.compare)
        return
    check = args.check
    entries, lines = [], ["# Targets, computed from the per-case results", "",
                          "Command: `.venv/bin/python benchmarks/targets.py` (reads `benchmarks/results/*.json`; re-runs nothing). "
                          "Met only if the lower bound of the 95 % bootstrap CI of the paired difference clears the threshold and the "
                          "baseline demonstrably beats the trivial input (the lower CI bound of its paired gain is above 0); a rank-correlation target (shift.md) only if the lower bound of the 95 % bootstrap CI of Spearman ρ clears its threshold; "
                          "an AUC-difference target if the lower bound of its CI clears it, an agreement share if its lower bound reaches it, "
                          "and a gain-drop target (spect_wide.md) only if the CI's upper bound stays at or below it (each line states its rule).", ""]
    own = own_specs()
    groups = [[{**check_target(res, t), "protocol": protocol} for t in targets if t.results_file[:-3] not in own]
              for res, targets, protocol in legacy_specs()]
    groups += list(own.values())
    for es in filter(None, groups):
        entries += es
        lines += targets_section(es)[2:]
        for protocol in dict.fromkeys(e["protocol"] for e in es):
            lines.append(f"  (protocol: {protocol})")
    met = sum(e["met"] for e in entries)
    lines += ["", f"{met} of {len(entries)} targets met."]
    md = "\n".join(lines) + "\n"
    if check:
        import tempfile

        with tempfile.TemporaryDirectory() as d:
            fresh = json.loads(update_targets_json(entries, Path(d) / "targets.json").read_text())
        committed = {e["name"]: e for e in json.loads((RES / "targets.json").read_text())}
        stale = [e["name"] for e in fresh if committed.get(e["name"]) != e] + sorted(set(committed) - {e["name"] for e in fresh})
        stale += [] if md == (RES / "targets.md").read_text() else ["targets.md"]
        if stale:
            raise SystemExit(f"targets out of date (run benchmarks/targets.py): {stale[:5]}")
        return
    (RES / "targets.json").unlink(missing_ok=True)  # written afresh: a target no results file states any more is dropped
    update_targets_json(entries, RES / "targets.json")
    (RES / "targets.md").write_text(md)
    print(md)


def compare(rev: str) -> None:
    """Before/after table of every target: REV's ``targets.json`` (the same code's verdicts on the old results files)
    beside the current one, matched by name; a target only one side states is listed with the other side empty."""
    import subprocess

    old_text = subprocess.run(["git", "show", f"{rev}:benchmarks/results/targets.json"], cwd=RES, check=True, capture_output=True,
                              text=True).stdout
    old = {e["name"]: e for e in json.loads(old_text)}
    new = {e["name"]: e for e in json.loads((RES / "targets.json").read_text())}
    sha = subprocess.run(["git", "rev-parse", "--short=12", rev], cwd=RES, check=True, capture_output=True, text=True).stdout.strip()

    def cell(e):
        if e is None:
            return "—", "—"
        return (f"{e['difference']:+.2f} [{e['ci_low']:+.2f}, {e['ci_high']:+.2f}], n = {e['n']}",
                ("MET" if e["met"] else "missed") + ("" if e.get("baseline_ok", True) else " (baseline broken)"))

    lines = ["# Targets before and after the re-runs with the evaluation harness", "",
             f"Command: `.venv/bin/python benchmarks/targets.py --compare {rev}` (before = `targets.json` at {sha}: the harness's "
             "verdicts on the results files as they were; after = today's `targets.json`). Difference = ours − baseline, "
             "mean [95 % bootstrap CI] over the cases (dB unless the target says otherwise).", "",
             "| target | results file | before | verdict before | after | verdict after |", "|---|---|---|---|---|---|"]
    for name in list(old) + [n for n in new if n not in old]:
        b, a = old.get(name), new.get(name)
        lines.append(f"| {name} | {(a or b)['results_file']} | {' | '.join(cell(b))} | {' | '.join(cell(a))} |")
    met_b, met_a = sum(e["met"] for e in old.values()), sum(e["met"] for e in new.values())
    lines += ["", f"Met: {met_b} of {len(old)} before, {met_a} of {len(new)} after."]
    (RES / "targets_before_after.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
