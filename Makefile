# The two commands of the README: `make demo` (the main job) and `make test`.
SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
RELEASE := .build/release
WORKERS ?= 2

.PHONY: deps build test demo bench clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

# Unit and integration tests, in release mode (numerical kernels and real MPI jobs run at speed),
# then a real multi-host run over network namespaces (skipped, saying why, when not root).
test: deps
	$(SWIFT) build -c release --build-tests
	$(SWIFT) test -c release --skip-build
	cluster/multihost-test.sh

# A real segmentation under mpirun of a generated scene (scripts/demo.sh says which model).
demo: build
	WORKERS=$(WORKERS) scripts/demo.sh

clean:
	rm -rf .build demo

# Speed and memory figures of BENCHMARKS.md (PYTHON=/path/to/python with terratorch for the references).
bench: build
	scripts/bench/run-benchmarks.sh all
