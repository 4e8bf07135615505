# The README's two commands: `make lab` (the main job) and `make test`.
GO ?= go

.PHONY: build test test-short fuzz cross lab lab-down
build:
	$(GO) build -o bin/tug ./cmd/tug

# Everything CI runs: vet, the unit tests, the end-to-end tests in a real
# lab (its first run builds Kubernetes, Argo CD with its web UI, Gitea and
# the node's programs: about 27 min on 2 cores from empty caches),
# and tug's own offline validation of this repository. The end-to-end
# suite's lab runs the host's one real node, so it starts after the tests
# that make and undo a real node of their own (internal/node).
test: build
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { echo "gofmt needed:"; gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	./bin/tug validate --strict .
	$(GO) test -timeout 45m $$($(GO) list ./... | grep -v '/e2e$$')
	$(GO) test -timeout 70m ./e2e

# Coverage-guided fuzzing of the repository loader. Not part of 'test':
# 'go test' already runs FuzzLoad's seeds (every file of validate's broken
# corpus), while fuzzing needs an instrumented build of all 1,654 packages
# the loader imports, shared with no other build: 9 min 18 s on a quiet
# 2-core machine whose other caches were warm (25.6 min under load), for
# 20 seconds of fuzzing.
FUZZTIME ?= 1m
fuzz:
	$(GO) test -run '^$$' -fuzz FuzzLoad -fuzztime $(FUZZTIME) ./internal/repo

# tug builds for macOS (all of it; the lab is Linux only, see README) and
# type-checks for Windows (everything but the lab). .ci/run runs it before
# 'test': from warm Go caches it takes 16 s here; into an empty cache the
# macOS build alone took 489 s on a quiet 2-core machine.
cross:
	GOOS=darwin $(GO) build ./...
	GOOS=windows $(GO) vet ./cmd/tug

# Unit tests only (no lab).
test-short:
	$(GO) test -short ./...

lab: build
	./bin/tug lab up

lab-down: build
	./bin/tug lab down
