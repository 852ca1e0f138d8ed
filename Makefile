# postmaster.mailserver: the targets are the interface.
#   make setup     install docker.io/debootstrap, start dockerd, venv, images
#   make test      everything CI runs (calls setup itself)
#   make lint      ruff, yamllint, ansible-lint (production profile)
#   make unit      pytest unit tests of the plugins
#   make sanity    ansible-test sanity --local, no ignore files
#   make galaxy    build, import-check, install the tarball, use it by FQCN
#   make molecule  all scenarios; SCENARIO=<name> for one; MOLECULE_DISTRO=trixie|bullseye
#   make demo      provision a disposable systemd container with playbooks/site.yml
#   make clean     remove test containers, networks and build outputs
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
SCENARIO ?=
MOLECULE_DISTRO ?= bookworm
export MOLECULE_DISTRO

.PHONY: role-docs changelog-lint shellcheck help setup test lint ruff yamllint ansible-lint unit sanity galaxy molecule molecule-distros demo clean

help:
	@sed -n '2,10p' Makefile | sed 's/^# //'

setup:
	@scripts/setup.sh

test: setup
	@scripts/test.sh

lint: ruff yamllint ansible-lint changelog-lint role-docs shellcheck

shellcheck:
	shellcheck -x scripts/*.sh bench/*.sh .ci/run

role-docs:
	python scripts/role_docs.py --check

changelog-lint:
	antsibull-changelog lint

ruff:
	ruff check .
	ruff format --check .

yamllint:
	yamllint --strict .

ansible-lint:
	ANSIBLE_COLLECTIONS_PATH=$(CURDIR)/.cache/collections ansible-lint --strict

unit:
	@mkdir -p build
	@set -o pipefail; pytest tests/unit -q -p no:cacheprovider | tee build/pytest-unit.log; \
	  rc=$$?; tail -n 1 build/pytest-unit.log > build/pytest-summary.txt; exit $$rc

sanity:
	@scripts/sanity.sh

galaxy:
	@scripts/galaxy-roundtrip.sh

molecule:
	@scripts/molecule.sh $(SCENARIO)

# The harness scenario on every supported suite (part of make test).
molecule-distros:
	@for d in trixie bullseye; do MOLECULE_DISTRO=$$d scripts/molecule.sh harness || exit 1; done

demo: setup
	@scripts/demo.sh

clean:
	@scripts/cleanup.sh
	rm -rf build
