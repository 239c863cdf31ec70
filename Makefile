# agent-api — every command a newcomer needs. `make run` and `make test` work on a fresh
# machine with only Python >= 3.11 and make: uv is installed into .tools/ when not on PATH.

UV := $(or $(shell command -v uv 2>/dev/null),$(CURDIR)/.tools/bin/uv)
PY := $(UV) run --frozen
export UV_PYTHON_DOWNLOADS := never
# Trust the system's certificate store (corporate proxies and custom CAs work as for curl).
export UV_SYSTEM_CERTS := true

.DEFAULT_GOAL := help
.PHONY: help install run test test-all lint format typecheck check migrate-up migrate-down \
	migrate-create docs bench docker-build docker-up docker-down docker-logs clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(CURDIR)/.tools/bin/uv:
	python3 -m venv $(CURDIR)/.tools
	$(CURDIR)/.tools/bin/pip install --quiet "uv>=0.5"

.venv/.installed: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

# The Node clients of the end-to-end tests (tests/clients/node), from their lockfile, when npm
# is on PATH; without it their tests skip loudly (fail under CI=true).
NODE_CLIENTS := tests/clients/node
ifneq ($(shell command -v npm 2>/dev/null),)
NODE_INSTALLED := $(NODE_CLIENTS)/node_modules/.installed
endif

$(NODE_CLIENTS)/node_modules/.installed: $(NODE_CLIENTS)/package.json $(NODE_CLIENTS)/package-lock.json
	cd $(NODE_CLIENTS) && npm ci --no-audit --no-fund
	@touch $@

install: .venv/.installed $(NODE_INSTALLED) ## install the project, its dev tools and the Node clients

run: install ## serve on embedded defaults (SQLite, in-process limits, demo model)
	$(PY) agent-api serve

test: install ## run the test suite (integration tests need PostgreSQL and Redis)
	$(PY) pytest -m "not slow"

test-all: install ## the suite including the long variants
	$(PY) pytest

lint: install ## ruff
	$(PY) ruff check src tests migrations bench
	$(PY) ruff format --check src tests migrations bench

format: install ## apply ruff's fixes and formatting
	$(PY) ruff check --fix src tests migrations bench
	$(PY) ruff format src tests migrations bench

typecheck: install ## mypy --strict
	$(PY) mypy

check: lint typecheck test ## what CI runs

migrate-up: install ## apply migrations to DATABASE_URL
	$(PY) agent-api migrate

migrate-down: install ## revert the last migration
	$(PY) alembic downgrade -1

migrate-create: install ## new migration: make migrate-create name="add something"
	$(PY) alembic revision --autogenerate -m "$(name)"

docs: install ## export the OpenAPI document to docs/openapi.json
	$(PY) python -m agent_api.api.openapi_export docs/openapi.json

bench: install ## run the benchmarks and write docs/benchmarks.md
	$(PY) python -m bench

docker-build: ## build the image
	docker build -f deployments/Dockerfile -t agent-api:latest .

docker-up: ## start the compose stack (API, PostgreSQL, Redis, LiteLLM); needs .env
	docker compose --env-file .env -f deployments/docker-compose.yml up -d

docker-down: ## stop the compose stack
	docker compose --env-file .env -f deployments/docker-compose.yml down

docker-logs: ## follow the compose logs
	docker compose --env-file .env -f deployments/docker-compose.yml logs -f

clean: ## remove build and test artefacts (not the database)
	rm -rf .venv .tools .mypy_cache .pytest_cache .ruff_cache dist $(NODE_CLIENTS)/node_modules
