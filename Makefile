# The README's two commands: `make lab` (the main job) and `make test`.
GO ?= go

.PHONY: build test lab
build:
	$(GO) build -o bin/tug ./cmd/tug

test:
	$(GO) vet ./...
	$(GO) test ./...

lab: build
	./bin/tug lab up
