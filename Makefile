# Rift proof verification: `make run` starts the whole system, `make test` runs the tests.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Runtime and dev dependencies for Python 3.11 on Linux x86_64, with hashes: `make lock`.
LOCK := requirements.lock
LOCK_PLATFORM := x86_64-unknown-linux-gnu
APT_PACKAGES := clamav-daemon clamav clamdscan clamav-testfiles prometheus libmagic1 redis-server redis-tools chromium strace
API_URL ?= http://127.0.0.1:8000

# make run is a development setup: the public development secrets, console logs. Anything
# else needs RIFT_ENV set otherwise and real JWT_SECRET / LICENSE_KEY_SECRET (see README).
export RIFT_ENV ?= development
export CLAMD_PORT ?= 3310
export CLAMD_ADDRESS ?= tcp://127.0.0.1:$(CLAMD_PORT)
export RIFT_START_CLAMD ?= true
export VERIFICATION_PROCESSES ?= 1
export SCAN_PROCESSES ?= 1

.PHONY: help
help:
	@echo "make run    - set up and start API, workers, scheduler, clamd (and Redis if none answers)"
	@echo "make test   - set up and run the test suite (real Redis, PostgreSQL, clamd, Prometheus)"
	@echo "make check  - ruff check, ruff format --check, mypy --strict"
	@echo "make lock   - re-resolve requirements.lock after editing pyproject.toml"
	@echo "make bench  - benchmarks with ratios against same-run baselines"
	@echo "make status | stop | logs | demo | dashboards"

# Debian packages, installed only when one is missing (needs root, as on CI).
.PHONY: system-deps
system-deps:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# Exactly the locked versions, hash-checked, then the project itself on top of them.
$(STAMP): pyproject.toml $(LOCK)
	@$(PYTHON) -m venv $(VENV) || (apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV))
	$(BIN)/pip install -q --no-deps --require-hashes -r $(LOCK)
	$(BIN)/pip install -q --no-deps -e .
	@touch $@

.PHONY: venv
venv: $(STAMP)

# Re-resolve the lock after editing pyproject.toml's dependencies; existing pins stay where
# the bounds allow. `make lock LOCK_FLAGS=--upgrade` moves every pin to the newest allowed.
.PHONY: lock
lock: venv
	$(BIN)/uv pip compile --quiet pyproject.toml --extra dev --generate-hashes --python-version 3.11 \
	  --python-platform $(LOCK_PLATFORM) $(LOCK_FLAGS) --output-file $(LOCK)

.PHONY: setup
setup: system-deps venv
	@mkdir -p var/log var/prometheus

# The Redis that `make run` starts listens where REDIS_URL (or REDIS_HOST/PORT) says and
# keeps an append-only file (fsync every second), so a restart loses no queued job.
.PHONY: redis
redis: setup
	@if $(BIN)/python -c "import sys,redis; from service.settings import Settings; redis.Redis.from_url(Settings.from_env().redis_url, socket_connect_timeout=1).ping()" 2>/dev/null; then \
	  echo "Redis answers at the configured URL"; \
	else \
	  read -r host port <<<"$$($(BIN)/python -c "from urllib.parse import urlsplit; from service.settings import Settings; u = urlsplit(Settings.from_env().redis_url); print(u.hostname or '127.0.0.1', u.port or 6379)")"; \
	  case "$$host" in 127.0.0.1|localhost) ;; \
	    *) echo "no Redis answers at $$host:$$port (REDIS_URL); start it there, or point REDIS_URL at 127.0.0.1"; exit 1;; \
	  esac; \
	  echo "no Redis answers: starting one on 127.0.0.1:$$port (append-only file in var/redis)"; \
	  mkdir -p var/redis var/log; \
	  redis-server --daemonize yes --bind 127.0.0.1 --port "$$port" \
	    --appendonly yes --appendfsync everysec --save "" \
	    --dir var/redis --pidfile "$$PWD/var/redis/redis.pid" --logfile "$$PWD/var/log/redis.log"; \
	  for i in $$(seq 1 50); do redis-cli -p "$$port" ping >/dev/null 2>&1 && break; sleep 0.1; done; \
	fi

.PHONY: migrate
migrate: setup
	$(BIN)/rift migrate

.PHONY: run
run: redis migrate
	@if [ -S var/supervisor.sock ] && $(BIN)/supervisorctl -c supervisord.conf status >/dev/null 2>&1; then \
	  $(BIN)/supervisorctl -c supervisord.conf restart all; \
	else \
	  $(BIN)/supervisord -c supervisord.conf; \
	fi
	@echo "waiting for the API to be ready..."
	@for i in $$(seq 1 120); do curl -fsS $(API_URL)/readyz >/dev/null 2>&1 && break; sleep 0.5; done
	@curl -fsS $(API_URL)/readyz && echo
	@$(BIN)/supervisorctl -c supervisord.conf status
	@echo
	@echo "Try it:  make demo        (creates a rift, submits proof, prints the verdict)"
	@echo "Tokens:  $(BIN)/rift token buyer-1"
	@echo "Stop:    make stop"

.PHONY: demo
demo: venv
	$(BIN)/rift demo --api $(API_URL)

.PHONY: status
status:
	$(BIN)/supervisorctl -c supervisord.conf status

.PHONY: logs
logs:
	tail -n 50 var/log/*.log

# Stop every program first (waits while running jobs finish; prints each exit status),
# then supervisord, and only then Redis: a worker finishing a job still needs it.
.PHONY: stop
stop:
	-@if [ -S var/supervisor.sock ]; then \
	  $(BIN)/supervisorctl -c supervisord.conf stop all; \
	  $(BIN)/supervisorctl -c supervisord.conf shutdown; \
	  for i in $$(seq 1 100); do [ -f var/supervisord.pid ] || break; sleep 0.1; done; \
	fi
	@if [ -f var/redis/redis.pid ]; then \
	  pid="$$(cat var/redis/redis.pid)"; kill "$$pid" 2>/dev/null; \
	  for i in $$(seq 1 100); do kill -0 "$$pid" 2>/dev/null || break; sleep 0.1; done; \
	  rm -f var/redis/redis.pid; \
	fi

.PHONY: test
test: setup
	$(BIN)/pytest

.PHONY: check
check: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

.PHONY: dashboards
dashboards: venv
	$(BIN)/python -m grafana

.PHONY: bench
bench: setup
	$(BIN)/python -m bench
