# xmppneg — see README.md. Every target works on a fresh machine with Go.
GO      ?= go
BIN     := bin/xmppneg

.PHONY: all build run test vet unit repeat bench report clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/xmppneg

# The main job: verify the documented Lync 2013 matrix with real negotiations.
run: build
	./$(BIN) verify

vet:
	$(GO) vet ./...

unit:
	$(GO) test -race -count=1 ./...

# The lync2013 suite 50 times over must end the same way every time.
repeat: build
	./$(BIN) verify --repeat 50 > /dev/null && echo "repeat: lync2013 x50 (32400 negotiations) identical every time"

test: vet unit repeat

bench:
	$(GO) test -run '^$$' -bench . -benchmem ./...

# The pairwise suite as an HTML report in report/.
report: build
	./$(BIN) run pairwise -o html --out report

clean:
	rm -rf bin report
