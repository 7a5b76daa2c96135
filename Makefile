# make install: create .venv and install seglab with every extra and the dev tools for the tests (seglab[all,dev]).
# make train:   set up, then train DeepLabV3+ / ResNet-18 on the built-in synthetic dataset (experiment=quickstart).
# make test:    set up, then run the whole test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch and torchvision first, pinned to the builds this machine keeps on disk; override on other machines,
# e.g. make install TORCH="torch torchvision --index-url https://download.pytorch.org/whl/cu124"
TORCH ?= torch==2.14.1 torchvision==0.29.1

.PHONY: install train test clean

install: $(VENV)/.installed

# panopticapi-lite, the tests' PQ reference, goes in without its dependencies: its metadata pins numpy<2, which
# its evaluation code does not need.
$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[all,dev]"
	$(BIN)/python -m pip install --quiet --no-deps "panopticapi-lite==0.2.0"
	touch $@

train: install
	$(BIN)/python train.py experiment=quickstart

test: install
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) outputs .pytest_cache
