# The two commands of the README. Each installs what it needs first (idempotent: pip runs again
# only when pyproject.toml changes).
PY ?= python3
PYTEST_ARGS ?=
# The regression gate (`make gate`, run by .ci/run): the smoke suite on one thread, then `check`
# against the committed baseline. mIoU: the run is deterministic, so on the machine that recorded
# the baseline it reproduces bit for bit; 0.1 pp absorbs other CPUs' float rounding. Speed: the
# latency relative to a reference network timed in the same process (absolute ms drift 2-3x
# between runs here); 40% is about 4x the run-to-run spread of that figure measured on this
# shared 2-core machine (README, "Regression gate"). Speed is compared only on the CPU model
# and thread count of the baseline.
SMOKE_DIR ?= build/ci-smoke
GATE_TOL_MIOU ?= 0.1
GATE_TOL_SPEED ?= 40%
SMOKE_RUN = OMP_NUM_THREADS=1 $(PY) run_bench.py run --suite smoke --results-dir $(SMOKE_DIR) -q

.PHONY: bench test lint gate smoke-baseline

.setup-stamp: pyproject.toml
	$(PY) -m pip install -q -e '.[dev]'
	touch .setup-stamp

bench: .setup-stamp  ## the default suite (quick) on the built-in synthetic data; CUDA if present
	$(PY) run_bench.py

test: .setup-stamp  ## lint + the fast test selection (slow tests: make test PYTEST_ARGS="-m slow")
	$(PY) -m ruff check .
	$(PY) -m pytest $(PYTEST_ARGS)

lint: .setup-stamp
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

gate: .setup-stamp  ## smoke suite, then `check` against results/baselines/smoke.json (exit 1 on regression)
	rm -rf $(SMOKE_DIR)
	$(SMOKE_RUN) || echo "run exited non-zero; check lists what failed"
	$(PY) run_bench.py check --suite smoke --baseline results/baselines/smoke.json \
		--results-dir $(SMOKE_DIR) --tol-miou $(GATE_TOL_MIOU) --tol-speed $(GATE_TOL_SPEED)

smoke-baseline: .setup-stamp  ## re-record results/baselines/smoke.json with the gate's commands
	rm -rf $(SMOKE_DIR)
	$(SMOKE_RUN)
	$(PY) run_bench.py baseline --suite smoke --results-dir $(SMOKE_DIR)
