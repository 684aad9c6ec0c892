# Bulwark build, test and demo targets. See README.md.
GO        ?= go
BIN       := bin
# Every binary carries the digest of the sources it was built from: the runtime executes the setup
# helper bulwark-init beside it only if the helper is of the same build (sandbox/setuphelper.go).
BUILD_ID  := $(shell find . -path ./.git -prune -o -type f \( -name '*.go' -o -name '*.[ch]' -o -name go.mod -o -name go.sum \) -print | LC_ALL=C sort | xargs cat | sha256sum | cut -c1-16)
# The version of the libseccomp the seccomp compiler helper bulwark-seccomp links, stamped into
# every binary: the runtime links no libseccomp, yet keys its cache of compiled programs and
# reports `features` with it (sandbox/internal/seccomp/version.go); the helper checks it against
# the library it links.
LIBSECCOMP := $(shell pkg-config --modversion libseccomp 2>/dev/null)
STATIC    := -tags netgo,osusergo -ldflags '-linkmode external -extldflags -static -s -w -X bulwark.dev/bulwark/sandbox/setup.buildID=$(BUILD_ID) -X bulwark.dev/bulwark/sandbox/internal/seccomp.libseccomp=$(LIBSECCOMP)'
# Every binary but bulwark-seccomp is linked against musl: static glibc's start-up runs before
# anything of the binary's own, in every process (the runtime for every create, start, exec and
# delete; the setup helper for every container's spawn, before the nsenter constructor): its CPU
# feature and cache probing executes ~50 CPUID instructions, each a VM exit of ~4 us on a virtual
# machine, then the IRELATIVE relocations and tunables fault in their pages. musl's does neither.
# Their C is the runtime's own (libc headers only). bulwark-seccomp, the compiler executed on a
# seccomp cache miss alone, links libseccomp, which is built against glibc: it keeps glibc.
MUSL_CC   := musl-gcc
PKGS      := ./...

# Go from the official tarball is in /usr/local/go (Debian 12's golang is too old for go.mod);
# a go already on PATH wins.
export PATH := $(PATH):/usr/local/go/bin

# Debian packages each target needs. scripts/deps.sh installs the missing ones when run as root
# with apt (one apt-get update, then one install), and otherwise prints the exact apt-get command
# and fails: `make demo` and `make test` need no set-up step on a fresh Debian 12 machine.
DEPS_BUILD := gcc libc6-dev pkg-config libseccomp-dev musl-tools
# busybox-static makes the demo's and the tests' images; docker-registry, skopeo and umoci are
# independent peers for the image store's interop tests; apparmor's apparmor_parser compiles the
# shipped profile template in its unit test (the host need not run AppArmor).
# containernetworking-plugins are the CNI plugins (bridge, host-local, portmap) that
# `bulwark run --network NAME` and `-p` drive; iproute2's ip removes a network's bridge.
DEPS_DEMO  := busybox-static containernetworking-plugins iproute2
DEPS_TEST  := busybox-static docker-registry skopeo umoci apparmor containernetworking-plugins iproute2
# The benchmarks measure Bulwark side by side with runc and crun (and Docker's, when dockerd runs).
DEPS_PERF  := busybox-static runc crun

.PHONY: e2e-cri all build deps-build deps-demo deps-test deps-perf test test-unit test-integration lint perf demo demo-runc validation clean

all: build

# Static binaries: the runtime re-executes itself inside the sandbox, so it must not depend on
# host shared libraries being visible there.
build: deps-build
	@mkdir -p $(BIN)
	CC=$(MUSL_CC) CGO_ENABLED=1 $(GO) build $(STATIC) -o $(BIN)/bulwark-runc ./cmd/bulwark-runc
	CC=$(MUSL_CC) CGO_ENABLED=1 $(GO) build $(STATIC) -o $(BIN)/bulwark-init ./cmd/bulwark-init
	CC=$(MUSL_CC) CGO_ENABLED=1 $(GO) build $(STATIC) -o $(BIN)/bulwark-policy ./cmd/bulwark-policy
	CGO_ENABLED=1 $(GO) build $(STATIC) -o $(BIN)/bulwark-seccomp ./cmd/bulwark-seccomp
	CC=$(MUSL_CC) CGO_ENABLED=1 $(GO) build $(STATIC) -o $(BIN)/bulwark ./cmd/bulwark
	CC=$(MUSL_CC) CGO_ENABLED=1 $(GO) build $(STATIC) -o $(BIN)/bulwark-admin ./cmd/bulwark-admin
	CC=$(MUSL_CC) CGO_ENABLED=1 $(GO) build $(STATIC) -o $(BIN)/bulwarkd ./cmd/bulwarkd
	CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o $(BIN)/bulwark-probe ./tests/probe

# The default suite: lint, unit tests (race detector, as a non-root user where the test allows),
# then integration tests that create real sandboxes.
test: deps-test lint test-unit test-integration

deps-build:
	@./scripts/deps.sh $(DEPS_BUILD)

deps-demo:
	@./scripts/deps.sh $(DEPS_BUILD) $(DEPS_DEMO)

deps-test:
	@./scripts/deps.sh $(DEPS_BUILD) $(DEPS_TEST)

deps-perf:
	@./scripts/deps.sh $(DEPS_BUILD) $(DEPS_PERF)

test-unit: deps-build
	$(GO) test -race -count=1 $$($(GO) list $(PKGS) | grep -v /tests)

test-integration: build
	BULWARK_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 10m ./tests/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy (diff: go mod tidy -diff)"; exit 1; }

perf: deps-perf build
	BULWARK_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench . -benchtime 20x ./tests/perf/...

# The main job: import and sign an image, run it under the full floor, show the policy decision,
# refusals and the audit trail.
demo: deps-demo build
	./scripts/demo-run.sh

# The low-level runtime alone: the probe in a bulwark-runc sandbox reports what it sees.
demo-runc: deps-demo build
	./scripts/demo.sh

# OCI runtime-tools conformance suite (not part of `make test`; needs node-tap, root, ~2 min):
#   make validation                      # against bin/bulwark-runc
#   make validation RUNTIME=runc         # the reference runtime, to check the harness
validation: build
	RUNTIME=$(or $(RUNTIME),$(CURDIR)/$(BIN)/bulwark-runc) VALIDATION_OUT=$(CURDIR)/$(BIN)/validation \
		./scripts/validation.sh $(TESTS)

clean:
	rm -rf $(BIN)

# Opt-in, not in `make test`: Kubernetes pods on Bulwark through containerd 1.6's CRI (Debian's
# containerd) and crictl v1.34.0, in a private mount and network namespace (tests/cri/e2e.sh).
# crictl is built from the Go module proxy in a scratch module outside this repository:
#   mkdir /tmp/crictl && cd /tmp/crictl && go mod init scratch && \
#   go get sigs.k8s.io/cri-tools@v1.34.0 && CGO_ENABLED=0 go build -o crictl sigs.k8s.io/cri-tools/cmd/crictl
e2e-cri: build
	@test -x "$(CRICTL)" || { echo "set CRICTL to a crictl v1.34.0 binary (see the Makefile)"; exit 1; }
	@./scripts/deps.sh containerd containernetworking-plugins iproute2 busybox-static gcc
	BULWARK_CRI_E2E=1 CRICTL=$(CRICTL) BULWARK_BIN=$(CURDIR)/$(BIN) tests/cri/e2e.sh
