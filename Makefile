# Two entry points: `make demo` and `make test`. Both create .venv and install what is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-v1
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export OMP_WAIT_POLICY ?= PASSIVE
export PREFECT_HOME ?= $(CURDIR)/.prefect

.PHONY: demo test install clean

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch 2.9.1 is the release torchaudio 2.9 pairs with on x86_64; install it before anything pulls another.
	$(BIN)/pip install -q torch==2.9.1 torchvision==0.24.1
	$(BIN)/pip install -q torch==2.9.1 'torchaudio==2.9.*'
	$(BIN)/pip install -q -r requirements.txt
	# laion_clap pins numpy<2, which would break pyarrow; its code runs fine on numpy 2.
	$(BIN)/pip install -q --no-deps laion_clap==1.1.7
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/v2a demo --out demo_out

test: $(STAMP)
	$(BIN)/python -m pytest tests

clean:
	rm -rf demo_out .prefect
