# Claude Gate: `make run` starts the bot, `make test` runs the whole suite. Both set up .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit test-app test-processes lint bench manifest clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/claude-gate serve

test: $(STAMP)
	$(BIN)/mypy
	$(BIN)/python -m pytest

# One tier at a time (what each costs: tests/unit seconds, tests/app minutes, tests/processes the slowest)
test-unit test-app test-processes: $(STAMP)
	$(BIN)/python -m pytest tests/$(subst test-,,$@)

lint: $(STAMP)
	$(BIN)/ruff check bot tests bench

bench: $(STAMP)
	$(BIN)/python -m bench

# make manifest URL=https://your-host.example.com (HTTP mode), or make manifest SOCKET=1 (Socket Mode)
manifest: $(STAMP)
	@$(BIN)/claude-gate manifest $(if $(URL),--url $(URL)) $(if $(SOCKET),--socket)

clean:
	rm -rf $(VENV) *.egg-info
