"""Commands the READMEs show work as written (issue 20, items 4 and 5): the main README's ``python -m monai.bundle run``
example (run from a folder laid out like the checkout's root) and every bundle README's offline verification commands
(run from the bundle folder)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from monai_diffrecon.bundles import BUNDLES_DIR, list_bundles

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}


def bash_lines(markdown: str, start: str) -> list[str]:
    """Shell commands in the ```bash blocks of ``markdown`` whose first word(s) are ``start`` (continuations joined)."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", markdown, flags=re.S):
        for cmd in block.replace("\\\n", " ").splitlines():
            cmd = cmd.split(" # ")[0].strip()
            if cmd.startswith(start):
                out.append(" ".join(cmd.split()))
    return out


def test_readme_monai_bundle_run_line_works_as_written(tmp_path):
    readme = (ROOT / "README.md").read_text()
    sim = [c for c in bash_lines(readme, "diffrecon simulate satellite") if "cases/sat" in c]
    run = [c for c in bash_lines(readme, "python -m monai.bundle run") if "bundles/satellite_cloud_removal/configs/inference.json" in c]
    assert len(sim) == 1 and len(run) == 1, (sim, run)
    (tmp_path / "bundles").symlink_to(BUNDLES_DIR, target_is_directory=True)  # the checkout's layout, outputs in tmp
    for cmd in (sim[0], run[0]):
        r = subprocess.run(["bash", "-c", cmd], cwd=tmp_path, env=ENV, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, (cmd, r.stderr[-3000:])
    summary = json.loads((tmp_path / "out" / "sat" / "summary.json").read_text())
    assert summary["ok"] == 1 and (tmp_path / "out" / "sat" / summary["cases"][0]["output"] / "clear_pred.tif").is_file()


@pytest.mark.parametrize("name", list_bundles())
def test_bundle_readme_verification_commands_work_offline(name):
    text = (BUNDLES_DIR / name / "docs" / "README.md").read_text()
    cmds = bash_lines(text, f"diffrecon verify {name}") + bash_lines(text, "python -m monai.bundle verify_metadata")
    assert len(cmds) == 2, cmds
    procs = [subprocess.Popen(["bash", "-c", cmd], cwd=BUNDLES_DIR / name, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for cmd in cmds]
    outs = [p.communicate(timeout=600) for p in procs]
    for cmd, p, (out, err) in zip(cmds, procs, outs):
        assert p.returncode == 0, (cmd, out[-2000:], err[-3000:])
    res = json.loads(outs[0][0])  # plus one "weights <file>" entry per further weight file (<stem>_sha256 in the metadata)
    assert {"metadata", "weights", "network"} <= set(res) and all(v == "ok" for v in res.values()), res
