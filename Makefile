# xmppneg — see README.md. Every target works on a fresh machine with Go.
GO      ?= go
BIN     := bin/xmppneg

.PHONY: all build run test compile deps vet unit interop repeat bench bench-interop fuzz report clean

# Real servers the interop tests negotiate with (Debian packages; Prosody 13
# and ejabberd 24, from bookworm-backports, use the system's lua5.4, Lua
# libraries and Erlang/OTP that these bring in).
DEPS_PKGS := prosody lua-unbound ejabberd jabberd2

all: build

build:
	$(GO) build -buildvcs=auto -o $(BIN) ./cmd/xmppneg

# The main job: verify the documented Lync 2013 matrix with real negotiations.
run: build
	./$(BIN) verify

vet:
	$(GO) vet ./...

# go vet ran whole before (compile): go test's own vet pass is left out.
unit:
	$(GO) test -race -count=1 -vet=off ./...

# The real-server suites whole, in a build without the race detector
# (under it, go test runs a part of each): every negotiation with
# Prosody and ejabberd of both generations, and jabberd2; the HTML report
# in report/interop. Then the federation suite: the real servers meeting
# each other, every two kinds in their field settings, both directions,
# each as the profiles predict (docs/federation.md); its grid in
# report/federation.
INTEROP_SUITES := interop-prosody interop-ejabberd interop-jabberd2 interop-prosody-13 interop-ejabberd-24
interop: build
	./$(BIN) run $(INTEROP_SUITES) -o html --out report/interop
	./$(BIN) federate --matrix --timeout 3s -o html --out report/federation

# The lync2013 suite 50 times over must end the same way every time.
repeat: build
	./$(BIN) verify --repeat 50 > /dev/null && echo "repeat: lync2013 x50 (32400 negotiations) identical every time"

# Installs the real servers when they are missing: with apt-get as root,
# otherwise it stops and prints the command to run.
deps:
	@missing=""; \
	command -v prosody >/dev/null 2>&1 || missing="$$missing prosody"; \
	ls /usr/lib/*/lua/5.4/lunbound.so >/dev/null 2>&1 || missing="$$missing lua-unbound"; \
	command -v erl >/dev/null 2>&1 && ls -d /usr/lib/*/ejabberd-* >/dev/null 2>&1 || missing="$$missing ejabberd"; \
	test -x /usr/sbin/jabberd2-s2s || missing="$$missing jabberd2"; \
	if [ -z "$$missing" ]; then echo "deps: prosody, lua-unbound, ejabberd and jabberd2 are installed"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
		echo "deps: missing$$missing; run as root: apt-get update && apt-get install -y $(DEPS_PKGS)"; exit 1; \
	fi; \
	echo "deps: installing$$missing"; \
	apt-get -o DPkg::Lock::Timeout=600 update -qq && \
	DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq $(DEPS_PKGS) >/dev/null
	@# Prosody 13 and ejabberd 24 from bookworm-backports, beside the
	@# system's: downloaded with a private apt state and unpacked into
	@# the user's cache (no root; quick when they are there).
	@sh sim/realserver/install-backports.sh

# The installs (network and dpkg) and the compilation (CPU) overlap:
# on a fresh machine each takes about as long as the other.
test:
	@$(MAKE) --no-print-directory --output-sync=target -j2 deps compile
	@$(MAKE) --no-print-directory unit interop repeat

# vet, then every package the tests need compiled with the race
# detector, so that unit only compiles the packages under test.
compile: vet
	$(GO) build -race $$($(GO) list -deps -test -f '{{if and (not .ForTest) (not .Standard)}}{{.ImportPath}}{{end}}' ./... | grep -v '\.test$$')

# Negotiations against the bare TLS handshake of the same run (medians of
# 5, ratios by cmd/benchratio), then the suite-sized benchmarks.
bench:
	$(GO) test -run '^$$' -bench 'BareTLS|Negotiate' -benchmem -count 5 ./sim | $(GO) run ./cmd/benchratio
	$(GO) test -run '^$$' -bench 'Lync|Pairwise|Profiles|Partners|Probe' -benchmem -count 3 -benchtime 3x ./scenarios ./scenarios/partners ./sim/probe | $(GO) run ./cmd/benchratio

# The real servers' suites together, once: negotiations a second and
# server processes started, beside the profiles suite (the harness alone).
bench-interop:
	$(GO) test -run '^$$' -bench 'InteropSuites|Profiles' -benchtime 1x -count 1 ./scenarios

# Each fuzz target for FUZZTIME (default 60s).
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./policy -run '^$$' -fuzz '^FuzzParseSpec$$' -fuzztime $(FUZZTIME)
	$(GO) test ./policy -run '^$$' -fuzz '^FuzzSettingsRoundTrip$$' -fuzztime $(FUZZTIME)
	$(GO) test ./scenarios -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./sim -run '^$$' -fuzz '^FuzzReadElement$$' -fuzztime $(FUZZTIME)
	$(GO) test ./policy/lyncpartner -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME)
	$(GO) test ./policy/serverconf -run '^$$' -fuzz '^FuzzProsody$$' -fuzztime $(FUZZTIME)
	$(GO) test ./policy/serverconf -run '^$$' -fuzz '^FuzzEjabberd$$' -fuzztime $(FUZZTIME)
	$(GO) test ./policy/serverconf -run '^$$' -fuzz '^FuzzJabberd2$$' -fuzztime $(FUZZTIME)
	$(GO) test ./policy/serverconf -run '^$$' -fuzz '^FuzzLuaShape$$' -fuzztime $(FUZZTIME)

# The pairwise suite as an HTML report in report/.
report: build
	./$(BIN) run pairwise -o html --out report

clean:
	rm -rf bin report
