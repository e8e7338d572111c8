# Two entry points: `make demo` and `make test`. Both create .venv and install what is missing.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-v1
# `make test` / `make demo` run offline on random weights; the v2a command itself never forces offline mode.
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_OFFLINE ?= 1
export PREFECT_SERVER_ANALYTICS_ENABLED ?= false
export OMP_WAIT_POLICY ?= PASSIVE
export PREFECT_HOME ?= $(CURDIR)/.prefect

.PHONY: demo test install clean

TEST_WORKERS ?= 2

$(STAMP): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch 2.9.1 is the release torchaudio 2.9 pairs with on x86_64; install it before anything pulls another.
	$(BIN)/pip install -q torch==2.9.1 torchvision==0.24.1
	$(BIN)/pip install -q torch==2.9.1 'torchaudio==2.9.*'
	# torchcodec (the fastest video decoder here) loads the system FFmpeg libraries; without them v2a
	# falls back to PyAV, so a failed install is not fatal.
	command -v ffmpeg >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg; } \
		|| echo "ffmpeg could not be installed: torchcodec is unusable, decoding falls back to PyAV"
	$(BIN)/pip install -q -r requirements.txt
	# laion_clap pins numpy<2, which would break pyarrow; its code runs fine on numpy 2.
	$(BIN)/pip install -q --no-deps laion_clap==1.1.7
	# Reference packages for tests/peers (model code only; no weights are downloaded). --no-deps: dalle2-pytorch
	# pins open-clip<3 and frechet-audio-distance numpy<2; their import-time needs are in requirements.txt.
	$(BIN)/pip install -q --no-deps dalle2-pytorch==1.15.6 rotary-embedding-torch==0.9.1 panns-inference==0.1.1 \
		torchvggish==0.2 wav2clip==0.1.0 pytorch-fid==0.3.0 frechet-audio-distance==0.3.4 encodec==0.1.1 \
		audioldm==0.1.1 progressbar==2.5
	# Evaluation peers (issue 19): PaSST (hear21passt, needs timm), ImageBind (imagebind-unofficial: timm 1.x
	# imports, weights_only loads; needs iopath), pytorchvideo for ImageBind's clip sampler, audioldm_eval's readers.
	$(BIN)/pip install -q --no-deps hear21passt==0.0.26 imagebind-unofficial==0.1.1 pytorchvideo==0.1.5 \
		audioldm-eval==0.0.3 timm==1.0.31 iopath==0.1.10 portalocker==4.4.2
	$(BIN)/pip install -q --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/v2a demo --out demo_out

test: $(STAMP)
	@# The listening-report test opens its page in headless Chromium; where it cannot be installed, that test skips.
	test -x /usr/bin/chromium || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } \
		|| echo "chromium could not be installed: the browser test will skip"
	@# The layering (pyproject.toml, [tool.importlinter]): flows -> tasks -> stages -> io/models/... -> core.
	$(BIN)/lint-imports --no-cache
	@# Two processes, each taking whole modules (module fixtures such as a Dask cluster or a Ray instance are
	@# built once): most of the slow tests wait on subprocesses and servers, so two cores finish in ~20 min (19.5 min measured 2026-12-07).
	@# tests/conftest.py keeps OpenBLAS to one thread per process, which that sharing needs.
	@# TEST_WORKERS=0 runs everything in this process.
	@# V2A_REQUIRE_PEERS=1: a peer test (tests/peers) that would skip for a missing package fails instead
	@# (tests/peer_skips.py); the packages are installed above.
	V2A_REQUIRE_PEERS=1 $(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile tests

clean:
	rm -rf demo_out .prefect
