# The two commands of the README: `make demo` (the main job) and `make test`.
SWIFT ?= $(shell command -v swift 2>/dev/null || echo /opt/swift/usr/bin/swift)
RELEASE := .build/release
WORKERS ?= 2

.PHONY: deps build test demo clean

deps:
	@scripts/install-deps.sh

build: deps
	$(SWIFT) build -c release

# Unit and integration tests, in release mode (numerical kernels and real MPI jobs run at speed).
test: deps
	$(SWIFT) build -c release --build-tests
	$(SWIFT) test -c release --skip-build

demo: build
	mpirun -np 1 $(RELEASE)/coordinator world --ping-seconds 1 : -np $(WORKERS) $(RELEASE)/tileworker

clean:
	rm -rf .build demo
