# postmaster.mailserver: the targets are the interface.
#   make setup     install docker.io/debootstrap/apt-cacher-ng, start them, venv, images
#   make test      everything CI runs, molecule on trixie and bookworm (calls setup itself)
#   make lint      ruff, yamllint, ansible-lint (production profile), shellcheck
#   make unit      pytest unit tests of the plugins
#   make sanity    ansible-test sanity --local, no ignore files
#   make galaxy    build, import-check, install the tarball, use it by FQCN
#   make molecule  all scenarios on trixie; SCENARIO=<name> for one; MOLECULE_DISTRO="trixie bookworm"
#   make demo      provision a disposable Debian 13 systemd container with playbooks/site.yml
#   make clean     remove test containers, networks and build outputs
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
BIN := $(CURDIR)/$(VENV)/bin
export PATH := $(BIN):$(PATH)
SCENARIO ?=
# The suite (or space-separated suites) of make molecule and make demo;
# make test runs every scenario on each of TEST_DISTROS.
MOLECULE_DISTRO ?= trixie
TEST_DISTROS ?= trixie bookworm
export MOLECULE_DISTRO

.PHONY: role-docs changelog-lint shellcheck help setup test lint ruff yamllint ansible-lint unit sanity galaxy molecule demo clean

help:
	@sed -n '2,10p' Makefile | sed 's/^# //'

setup:
	@scripts/setup.sh

test:
	@SUITES="$(TEST_DISTROS)" scripts/setup.sh
	@MOLECULE_DISTRO="$(TEST_DISTROS)" scripts/test.sh

lint: ruff yamllint ansible-lint changelog-lint role-docs shellcheck

shellcheck:
	shellcheck -x scripts/*.sh bench/*.sh .ci/run roles/backup/files/postmaster-backup

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

# Builds only the image of the suite the demo uses.
demo:
	@SUITES="$(MOLECULE_DISTRO)" scripts/setup.sh
	@scripts/demo.sh

clean:
	@scripts/cleanup.sh
	rm -rf build
