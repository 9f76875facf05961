# Two set-up commands (see README):
#   make demo   — create .venv, install, run the built-in default job (simulated low-dose SPECT/CT DICOM study →
#                 spect_cardiac_diffusion bundle → derived DICOM + NIfTI + PNG)
#   make test   — create .venv with the test extra, run the test suite
# torch comes from `torch==2.13.0` in the same pip command (a local CPU wheel here; never the multi-GB CUDA build).

PY ?= python3
VENV ?= .venv
PIP := $(VENV)/bin/pip
TORCH ?= torch==2.13.0
DEMO_OUT ?= outputs/demo

.PHONY: venv demo test test-env bench bench-samplers bench-spect clean monailabel-env monailabel-test

$(VENV)/.installed-%: pyproject.toml
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)" -e ".[$*]"
	touch $@

$(VENV)/.installed-base: pyproject.toml
	$(PY) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q "$(TORCH)" -e .
	touch $@

demo: $(VENV)/.installed-base
	$(VENV)/bin/diffrecon demo --output $(DEMO_OUT)

test-env: $(VENV)/.installed-test

# pytest exit 5 (no tests collected) is turned into a failure: a suite that silently collects nothing must not pass.
# The MONAI Label server test (tests/apps) runs when .venv-monailabel exists (`make monailabel-env`; .ci/run builds it
# and sets DIFFRECON_REQUIRE_MONAILABEL=1 so that a missing environment fails instead of skipping).
test: $(VENV)/.installed-test
	@$(VENV)/bin/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "make test: pytest collected no tests (exit 5)" >&2; exit 1; fi; exit $$rc

bench:
	bash benchmarks/setup_bench_env.sh
	.venv-bench/bin/python benchmarks/operators.py

# samplers vs deepinv on a small trained prior, tuned on validation, 12 test phantoms (~30 min wall, ~15 CPU-min, 1 thread)
bench-samplers:
	bash benchmarks/setup_bench_env.sh
	OMP_NUM_THREADS=1 .venv-bench/bin/python benchmarks/samplers.py --threads 1

# the SPECT bundle on 20 held-out phantoms (several hours on 2 cores)
bench-spect: $(VENV)/.installed-test
	$(VENV)/bin/python benchmarks/spect.py

clean:
	rm -rf $(VENV) .venv-bench $(ML_VENV) outputs .pytest_cache

# MONAI Label in its own environment, pinned in apps/monailabel/requirements.txt (monailabel 0.8.5 needs pydicom < 3 and
# numpy < 2; the project needs pydicom 3): the app (apps/monailabel) calls this project's `diffrecon` as a subprocess,
# so the two never share an interpreter. Same $(TORCH) as .venv (the CPU wheel). 3-4 min from scratch on 2 cores.
ML_VENV ?= .venv-monailabel
ML_REQ := apps/monailabel/requirements.txt
monailabel-env: $(ML_VENV)/.installed
$(ML_VENV)/.installed: $(ML_REQ)
	$(PY) -m venv $(ML_VENV)
	$(ML_VENV)/bin/pip install -q --upgrade pip
	$(ML_VENV)/bin/pip install -q "$(TORCH)" -r $(ML_REQ)
	$(ML_VENV)/bin/python -c "import monailabel.main, monailabel.interfaces.app, monailabel.interfaces.tasks.infer_v2"
	touch $@

# starts the MONAI Label server on 127.0.0.1, posts a study to /infer/<bundle> over HTTP, compares with a direct run
monailabel-test: $(VENV)/.installed-test monailabel-env
	DIFFRECON_REQUIRE_MONAILABEL=1 $(VENV)/bin/python -m pytest -q tests/apps/test_monailabel_app.py
