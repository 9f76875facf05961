"""Issue 20: everything follows the device of its inputs and buffers; nothing is created on an implicit device.

* :func:`test_no_tensor_is_created_on_an_implicit_device` runs every sampler, registered operator, OSEM/MLEM, FBP,
  CG-SENSE, TV prox, noise model, mask draw, shift metric and transform (``tests/device_cases.py``, inputs on the CPU)
  inside a ``TorchFunctionMode`` that records every tensor factory call (the functions
  ``torch.set_default_device`` redirects: ``zeros``, ``arange``, ``randn``, ``tensor``, ``as_tensor``,
  ``sparse_csr_tensor``, …) made without an explicit ``device=``: under ``torch.set_default_device("cuda")``, or
  with data on a GPU and the default device left at the CPU, each such call would put a tensor on the wrong device.
* :func:`test_cpu_results_are_bit_for_bit_unchanged` compares the same runs with the outputs recorded before the
  device audit (``tests/device_reference.pt``): the draws moved to the generator's own device and every explicit
  ``device=`` must not change a single bit on the CPU.
* :func:`test_library_sources_name_the_device_of_every_factory_call` checks statically that every such call in the
  library (outside the offline test-fixture modules) names its device, including code paths no test above reaches.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._device import _device_constructors

from .device_cases import CASES, REFERENCE

PACKAGE = Path(__file__).resolve().parents[1] / "monai_diffrecon"
#: the folders audited in issue 20 (workflows/, io/, cli.py, bundles.py, cohort.py are audited separately)
AUDITED = ("physics", "diffusion", "samplers", "networks", "regularizers", "recon", "training", "metrics", "transforms", "data",
           "modalities")
#: offline fixtures that build their CPU test problems on purpose (they are moved with ``.to(device)`` by callers)
FIXTURES = {"physics/testing.py", "physics/validation.py", "samplers/testing.py"}


class ImplicitDeviceRecorder(TorchFunctionMode):
    """Records ``file:line (function)`` of every factory call without ``device=`` made from ``package``'s code."""

    def __init__(self, package: str = "monai_diffrecon") -> None:
        super().__init__()
        self.package, self.sites = package, set()

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in _device_constructors() and kwargs.get("device") is None:
            f = sys._getframe(1)
            while f is not None and ("/torch/" in f.f_code.co_filename or f.f_code.co_filename == __file__):
                f = f.f_back
            if f is not None and f"/{self.package}/" in f.f_code.co_filename:
                rel = f.f_code.co_filename.split(f"/{self.package}/", 1)[1]
                self.sites.add(f"{rel}:{f.f_lineno} (torch.{getattr(func, '__name__', func)})")
        return func(*args, **kwargs)


@pytest.fixture(scope="module")
def runs():
    """Every case run once inside the recorder, on one thread (the CPU reference was recorded on one; with two, the
    sparse SPECT/CT products already differ in the last bits)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {}
        for name, setup in CASES.items():
            run = setup()  # inputs, operators and priors are built outside the recorder, on the CPU
            rec = ImplicitDeviceRecorder()
            with rec:
                res = run()
            out[name] = (res, sorted(rec.sites))
        return out
    finally:
        torch.set_num_threads(threads)


@pytest.mark.parametrize("name", list(CASES))
def test_no_tensor_is_created_on_an_implicit_device(runs, name):
    _, sites = runs[name]
    assert not sites, f"{name}: tensors created without an explicit device at\n  " + "\n  ".join(sites)


@pytest.mark.parametrize("name", list(CASES))
def test_cpu_results_are_bit_for_bit_unchanged(runs, name):
    ref = torch.load(REFERENCE, weights_only=True)
    same_platform = ref["_platform"] == {"torch": str(torch.__version__), "cpu": torch.backends.cpu.get_cpu_capability()}
    got = runs[name][0]
    assert sorted(got) == sorted(ref[name])
    for key, want in ref[name].items():
        have = got[key]
        assert have.dtype == want.dtype and have.shape == want.shape, key
        if same_platform:
            assert torch.equal(have, want), f"{name}/{key}: max |Δ| = {float((have - want).abs().max()):.3g}"
        else:  # another CPU or torch build rounds differently; the exact check only means something on the recording one
            assert torch.allclose(have, want, rtol=1e-4, atol=1e-6), f"{name}/{key}"


def _factory_calls_without_device(path: Path) -> list[str]:
    names = {f.__name__ for f in _device_constructors()} | {"fftfreq", "rfftfreq"}
    bad = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Call) or not isinstance(node.func, ast.Attribute) or node.func.attr not in names:
            continue
        base = node.func.value
        root = base.value if isinstance(base, ast.Attribute) else base  # torch.X or torch.fft.X
        if isinstance(root, ast.Name) and root.id == "torch" and not any(k.arg == "device" for k in node.keywords):
            bad.append(f"{path.relative_to(PACKAGE)}:{node.lineno} torch.{node.func.attr}")
    return bad


def test_library_sources_name_the_device_of_every_factory_call():
    files = [p for d in AUDITED for p in sorted((PACKAGE / d).rglob("*.py")) if str(p.relative_to(PACKAGE)) not in FIXTURES]
    bad = [site for p in files for site in _factory_calls_without_device(p)]
    assert not bad, "factory calls without device=:\n  " + "\n  ".join(bad)
