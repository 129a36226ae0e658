# xmppneg — see README.md. Every target works on a fresh machine with Go.
GO      ?= go
BIN     := bin/xmppneg
GOFLAGS ?=

.PHONY: all build run test vet bench deps clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/xmppneg

# The main job: verify the documented matrix.
run: build
	./$(BIN) matrix

vet:
	$(GO) vet ./...

test: vet
	$(GO) test -race -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

clean:
	rm -rf bin report
