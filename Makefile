# Front door: `make setup`, `make run`, `make test` (see README).
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# samples/README.md says what each is; the demo re-sends the first one as a duplicate.
SAMPLES ?= samples/seed.txt samples/lemonde-1.html samples/bbc-1.html samples/seed-english.txt

.PHONY: setup run test unit integration lint kafka-start kafka-stop clean

setup: $(STAMP) var/kafka/.jars
	@command -v java >/dev/null || { echo "Java 17 is required (apt-get install openjdk-17-jre-headless)"; exit 1; }
	@command -v mvn >/dev/null || { echo "Maven is required (apt-get install maven)"; exit 1; }

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "$(PYTHON) is required"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Kafka's jars from Maven Central, cached under var/kafka/libs.
var/kafka/.jars: pipeline/kafka_local/pom.xml $(STAMP)
	$(BIN)/python -c "from pipeline.kafka_local import LocalKafka, default_state_dir; LocalKafka(default_state_dir()).ensure_jars()"
	touch $@

run: setup
	$(BIN)/pipeline demo $(SAMPLES)

test: setup
	$(BIN)/pipeline kafka start
	$(BIN)/python -m pytest -q -p no:cacheprovider

unit: setup
	$(BIN)/python -m pytest -q tests/unit

integration: setup
	$(BIN)/pipeline kafka start
	$(BIN)/python -m pytest -q tests/integration

lint: setup
	$(BIN)/ruff check pipeline tests benchmarks

kafka-start: setup
	$(BIN)/pipeline kafka start

kafka-stop:
	$(BIN)/pipeline kafka stop

clean:
	-$(BIN)/pipeline kafka stop
	rm -rf var
