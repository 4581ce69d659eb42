# Two set-up commands (README): `make demo` installs and runs the main job on a built-in default;
# `make test` installs and runs the tests. Both create .venv on first use.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install -c constraints.txt

.PHONY: install demo test lint bench clean

$(BIN)/genrekit: pyproject.toml constraints.txt
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(PIP) -q torch==2.13.0
	$(PIP) -q -e '.[dev,train,urls,batch,beets,ray]'
	# musicnn's wheel carries the pretrained weights; --no-deps: its code needs TensorFlow, never imported.
	$(BIN)/pip install -q --no-deps musicnn==0.1.0
	# EfficientAT weights: this machine is offline, so its copy beside the shared data goes into the user
	# cache once (checked against the release SHA-256); elsewhere genrekit downloads them at first use.
	if [ -f ../shared/weights/efficientat/mn04_as_mAP_432.pt ]; then $(BIN)/python -c "from genrekit.backbones.efficientat import find_weights; find_weights('../shared/weights/efficientat/mn04_as_mAP_432.pt')"; fi
	touch $@

install: $(BIN)/genrekit

demo: install
	$(BIN)/genrekit demo

test: install
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/python -m pytest -q

bench: install
	for b in benchmarks/*.py; do $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info
