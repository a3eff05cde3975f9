# trueup: the obvious targets. Everything installs into .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The SAM CLI pins its own boto3 and friends, so it lives in a venv of its own. The version is in the
# stamp's name: changing it here reinstalls on the next `make test`.
SAM_CLI_VERSION := 1.170.0
SAM_VENV := .venv-sam
SAM_STAMP := $(SAM_VENV)/.installed-$(SAM_CLI_VERSION)
# checkov (the template scan in tests/template) pins its own boto3 too: a venv of its own.
CHECKOV_VERSION := 3.3.30
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
# The layer's packages as the local stack's workers import them (python3.12, shared/requirements.txt
# alone, pip into .venv-layer/: see infra/local/layer.py). Re-made when the requirements change.
LAYER_STAMP := .venv-layer/.installed
# The local OpenID provider (TRUEUP_AUTH=oidc): the oidc-provider npm package, from its lockfile.
OIDC_DIR := infra/local/oidc
OIDC_STAMP := $(OIDC_DIR)/node_modules/.installed

# pytest's worker processes for `make test` (pytest-xdist): each test file runs whole in one of them, in
# order, so module-wide stacks and browsers are shared as before. TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2

.PHONY: run test bench bench-page bench-cold-start event-schemas screenshot lint typecheck unit venv sam-venv checkov-venv layer oidc-provider clean

# TRUEUP_AUTH=oidc make run: sign-in through the local OpenID provider (needs Node.js 20+ and npm).
run: $(STAMP) $(LAYER_STAMP) $(if $(filter oidc,$(TRUEUP_AUTH)),$(OIDC_STAMP))  ## serve the API on http://127.0.0.1:3000 (TRUEUP_PORT) from the real handlers, demo data unless credentials are set
	$(BIN)/python -m infra.local

test: $(STAMP) $(SAM_STAMP) $(LAYER_STAMP) $(OIDC_STAMP) $(CHECKOV_STAMP)  ## ruff, mypy and pytest: what CI runs (tests/template runs `sam build`)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy shared infra tests
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadfile

bench: $(STAMP) $(LAYER_STAMP)  ## scale benchmark: sync + snapshot at 2,000 clients / 100,000 devices, prints figures (ARGS="--help")
	$(BIN)/python -m infra.bench $(ARGS)

bench-page: $(STAMP) $(LAYER_STAMP)  ## the page in headless Chromium at 2,000 and 10,000 clients: timings and DOM size (ARGS="--sizes 2000")
	$(BIN)/python -m infra.bench.page $(ARGS)

event-schemas: $(STAMP)  ## write the JSON Schema of every event to shared/events/ (after changing an event)
	$(BIN)/python -m infra.event_schemas

bench-cold-start: $(STAMP) $(SAM_STAMP)  ## each function's cold import from the `sam build` output vs `import boto3` (ARGS="--runs 21")
	$(BIN)/python -m infra.bench.cold_start $(ARGS)

screenshot: $(STAMP)  ## docs/reconciliation.png: the page at laptop width on the demo data (needs /usr/bin/chromium)
	$(BIN)/python -m tests.browser.screenshot docs/reconciliation.png

lint: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

venv: $(STAMP)

layer: $(LAYER_STAMP)  ## the layer's packages for the local stack's workers (python3.12, shared/requirements.txt only)

$(LAYER_STAMP): $(STAMP) shared/requirements.txt
	$(BIN)/python -m infra.local.layer
	touch $(LAYER_STAMP)

oidc-provider: $(OIDC_STAMP)  ## the local OpenID provider's packages (npm ci in infra/local/oidc)

$(OIDC_STAMP): $(OIDC_DIR)/package-lock.json
	npm ci --prefix $(OIDC_DIR) --no-audit --no-fund --loglevel=error
	touch $(OIDC_STAMP)

checkov-venv: $(CHECKOV_STAMP)  ## checkov, for the template scan in tests/template

$(CHECKOV_STAMP):
	rm -rf $(CHECKOV_VENV)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet 'checkov==$(CHECKOV_VERSION)'
	touch $(CHECKOV_STAMP)

sam-venv: $(SAM_STAMP)  ## the SAM CLI, for `sam build` in tests/template (and for deploying)

$(SAM_STAMP):
	rm -rf $(SAM_VENV)
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/python -m pip install --quiet 'aws-sam-cli==$(SAM_CLI_VERSION)'
	touch $(SAM_STAMP)

$(STAMP): pyproject.toml shared/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .venv-layer $(OIDC_DIR)/node_modules .mypy_cache .ruff_cache .pytest_cache build *.egg-info
