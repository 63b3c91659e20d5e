# homelab.pi_cluster: one entry point for developers and CI.
#   make demo   bring up the simulated Pi lab and run site.yml on it (twice: the second run must report changed=0)
#   make test   everything CI runs: lint, sanity, unit, integration, molecule
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

ROOT        := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
VENV        := $(ROOT)/.venv
PY          := $(VENV)/bin/python
BIN         := $(VENV)/bin
PYTHON      ?= python3.11
BUILD       := $(ROOT)/.build
# ansible finds this collection through a symlinked ansible_collections tree (no copy, edits apply at once)
COLL_PATH   := $(BUILD)/collections
COLL_LINK   := $(COLL_PATH)/ansible_collections/homelab/pi_cluster
# outside the git checkout: inside one, ansible-test would only see git-tracked files (none)
SANITY_ROOT ?= /tmp/homelab-pi_cluster-sanity
APT_PACKAGES := debootstrap zstd iproute2 openssh-client util-linux procps rsync dnsmasq-base dnsutils sudo postgresql
SCENARIOS   ?= $(notdir $(patsubst %/molecule.yml,%,$(wildcard $(ROOT)/molecule/*/molecule.yml)))

export PATH := $(BIN):$(PATH)
export ANSIBLE_COLLECTIONS_PATH := $(COLL_PATH)
export ANSIBLE_CONFIG := $(ROOT)/ansible.cfg
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help test lint sanity unit integration molecule demo demo-down deps apt venv collection lock clean clean-lab

help:
	@echo "make demo    - bring up the simulated Pi lab and run site.yml on it"
	@echo "make test    - lint, sanity, unit, integration and molecule tests (what CI runs)"
	@echo "make lint | sanity | unit | integration | molecule [SCENARIOS=...] | demo-down | clean"

test: lint sanity unit integration molecule
	@echo "make test: all stages passed"

deps: apt venv collection

# Debian packages the lab and the tests need; installs only what is missing.
apt:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "apt: installing$$missing"; \
	  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

venv: $(VENV)/.installed
$(VENV)/.installed: requirements.txt
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $@

collection:
	@mkdir -p $(dir $(COLL_LINK))
	@[ -L $(COLL_LINK) ] || ln -sfn $(ROOT) $(COLL_LINK)

lock: ## regenerate requirements.txt from requirements.in in a throwaway venv
	rm -rf $(BUILD)/lockvenv && $(PYTHON) -m venv $(BUILD)/lockvenv
	$(BUILD)/lockvenv/bin/pip install -q -r requirements.in
	{ echo '# Full pinned environment for `make test` (generated from requirements.in by `make lock`).'; \
	  $(BUILD)/lockvenv/bin/pip freeze --exclude-editable; } > requirements.txt

lint: deps
	cd $(ROOT) && yamllint -s .
	cd $(ROOT) && ruff check .
	cd $(ROOT) && ruff format --check .
	cd $(ROOT) && mypy
	cd $(ROOT) && ansible-lint --profile production
	cd $(ROOT) && antsibull-changelog lint

# ansible-test runs on the collection exactly as it ships: the artifact built by
# ansible-galaxy (build_ignore applies) installed into a clean ansible_collections tree.
sanity: deps
	rm -rf $(SANITY_ROOT) && mkdir -p $(SANITY_ROOT)
	cd $(ROOT) && ansible-galaxy collection build --force --output-path $(SANITY_ROOT) >/dev/null
	ansible-galaxy collection install --force --no-deps -p $(SANITY_ROOT) $(SANITY_ROOT)/homelab-pi_cluster-*.tar.gz >/dev/null
	@# the collections we depend on (galaxy.yml), from the pinned `ansible` package, beside ours
	@for c in kubernetes/core ansible/posix community/general; do \
	  mkdir -p $(SANITY_ROOT)/ansible_collections/$$(dirname $$c); \
	  ln -sfn $(VENV)/lib/python3.11/site-packages/ansible_collections/$$c $(SANITY_ROOT)/ansible_collections/$$c; \
	done
	@# ansible-test bootstraps pip in its per-test virtualenvs from a host we cannot reach: use our shim
	@pip_version=$$(grep -oP "pip='\K[0-9.]+" $(VENV)/lib/python3.11/site-packages/ansible_test/_internal/python_requirements.py); \
	  mkdir -p $$HOME/.ansible/test/cache && cp $(ROOT)/hacking/get_pip_shim.py $$HOME/.ansible/test/cache/get_pip_$${pip_version//./_}.py
	cd $(SANITY_ROOT)/ansible_collections/homelab/pi_cluster && \
	  ansible-test sanity --color no --python 3.11 --local 2>&1 | tee $(SANITY_ROOT)/sanity.log
	@! grep -q "All targets skipped" $(SANITY_ROOT)/sanity.log || { echo "sanity: ansible-test saw no files" >&2; exit 1; }

unit: deps
	cd $(ROOT) && pytest -q -n 2 tests/unit

integration: deps
	# loadfile: the tests of one file stay on one worker (a file's module-scoped lab is used by one worker only)
	cd $(ROOT) && pytest -q -n 4 --dist loadfile tests/integration

molecule: deps
	@for s in $(SCENARIOS); do \
	  echo "=== molecule test -s $$s"; \
	  ( cd $(ROOT) && molecule test -s $$s ) || exit 1; \
	done

demo: deps
	$(ROOT)/tests/lab/demo

demo-down:
	$(ROOT)/tests/lab/hostlab down

clean:
	$(ROOT)/tests/lab/hostlab down --all
	rm -rf $(BUILD)

clean-lab: clean ## also drop the cached lab image
	rm -rf $(ROOT)/.lab
