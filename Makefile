# Bulwark build, test and demo targets. See README.md.
GO        ?= go
BIN       := bin
STATIC    := -tags netgo,osusergo -ldflags '-linkmode external -extldflags -static -s -w'
PKGS      := ./...

.PHONY: all build test test-unit test-integration lint bench demo demo-runc validation clean

all: build

# Static binaries: the runtime re-executes itself inside the sandbox, so it must not depend on
# host shared libraries being visible there.
build:
	@mkdir -p $(BIN)
	CGO_ENABLED=1 $(GO) build $(STATIC) -o $(BIN)/bulwark-runc ./cmd/bulwark-runc
	CGO_ENABLED=1 $(GO) build $(STATIC) -o $(BIN)/bulwark ./cmd/bulwark
	CGO_ENABLED=0 $(GO) build -ldflags '-s -w' -o $(BIN)/bulwark-probe ./tests/probe

# The default suite: lint, unit tests (race detector, as a non-root user where the test allows),
# then integration tests that create real sandboxes.
test: lint test-unit test-integration

test-unit:
	$(GO) test -race -count=1 $$($(GO) list $(PKGS) | grep -v /tests)

test-integration: build
	BULWARK_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 6m ./tests/...

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

bench: build
	BULWARK_BIN=$(CURDIR)/$(BIN) $(GO) test -run '^$$' -bench . -benchtime 20x ./tests/bench/...

# The main job: import and sign an image, run it under the full floor, show the policy decision,
# refusals and the audit trail.
demo: build
	./scripts/demo-run.sh

# The low-level runtime alone: the probe in a bulwark-runc sandbox reports what it sees.
demo-runc: build
	./scripts/demo.sh

# OCI runtime-tools conformance suite (not part of `make test`; needs node-tap, root, ~2 min):
#   make validation                      # against bin/bulwark-runc
#   make validation RUNTIME=runc         # the reference runtime, to check the harness
validation: build
	RUNTIME=$(or $(RUNTIME),$(CURDIR)/$(BIN)/bulwark-runc) VALIDATION_OUT=$(CURDIR)/$(BIN)/validation \
		./scripts/validation.sh $(TESTS)

clean:
	rm -rf $(BIN)
