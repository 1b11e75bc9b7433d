# ext4pack: see README.md. Every target does its own set-up.
GO      ?= go
BIN     := bin/ext4pack
DEMO    := demo
AGENTS  := agents/bin/banger-vsock-agent-x86_64 agents/bin/banger-vsock-agent-aarch64 \
           agents/bin/ext4pack-init-x86_64 agents/bin/ext4pack-init-aarch64
# The guest agents and ext4pack-init are built reproducibly: no cgo, no paths, no build id,
# no VCS stamp, so bundles are byte-identical across machines.
AGENT_FLAGS := -trimpath -buildvcs=false -ldflags='-s -w -buildid='

# The version and commit that build and dist stamp into ext4pack, for
# `ext4pack version` and the manifests' created_by. VERSION=v1.2.3 for a
# release; by default the nearest tag (or the commit) and -dirty for a
# modified tree.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo unknown)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
STAMP   := -X github.com/ext4pack/ext4pack.Version=$(VERSION) -X main.gitCommit=$(COMMIT)

.PHONY: build agents test bench demo vet clean boot-test dist

# One self-contained binary that carries the vsock agent and ext4pack-init
# for both arches.
build: agents
	$(GO) build -trimpath -tags embedagents -ldflags='$(STAMP)' -o $(BIN) ./cmd/ext4pack

# Release binaries: static (no cgo), each carrying both arches' guest
# binaries, reproducible (no paths, no VCS stamp, no build id, the base
# instruction set of each arch whatever GOAMD64/GOARM64 say), and their
# SHA256SUMS, in $(DIST). Two runs of the same tree with the same Go give
# byte-identical files (internal/disttest checks it).
DIST           ?= dist
DIST_PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64
DIST_FLAGS     := -trimpath -buildvcs=false -tags embedagents -ldflags='-s -w -buildid= $(STAMP)'
dist: agents
	mkdir -p $(DIST)
	rm -f $(DIST)/ext4pack-* $(DIST)/SHA256SUMS
	set -e; for p in $(DIST_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; exe=; [ $$os != windows ] || exe=.exe; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch GOAMD64=v1 GOARM64=v8.0 \
			$(GO) build $(DIST_FLAGS) -o $(DIST)/ext4pack-$$os-$$arch$$exe ./cmd/ext4pack; \
	done
	cd $(DIST) && { sha256sum ext4pack-* 2>/dev/null || shasum -a 256 ext4pack-*; } > SHA256SUMS
	@cat $(DIST)/SHA256SUMS

agents: $(AGENTS)

agents/bin/banger-vsock-agent-x86_64: $(wildcard agents/vsockagent/*.go) go.mod
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOAMD64=v1 $(GO) build $(AGENT_FLAGS) -o $@ ./agents/vsockagent

agents/bin/banger-vsock-agent-aarch64: $(wildcard agents/vsockagent/*.go) go.mod
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 GOARM64=v8.0 $(GO) build $(AGENT_FLAGS) -o $@ ./agents/vsockagent

# ext4pack-init is pinned to the base instruction set as the agent is: its
# bytes must not depend on the builder's GOAMD64/GOARM64, and as PID 1 a
# v3 build would die of SIGILL on an older CPU (internal/disttest checks).
agents/bin/ext4pack-init-x86_64: $(wildcard agents/ext4packinit/*.go) go.mod
	CGO_ENABLED=0 GOOS=linux GOARCH=amd64 GOAMD64=v1 $(GO) build $(AGENT_FLAGS) -o $@ ./agents/ext4packinit

agents/bin/ext4pack-init-aarch64: $(wildcard agents/ext4packinit/*.go) go.mod
	CGO_ENABLED=0 GOOS=linux GOARCH=arm64 GOARM64=v8.0 $(GO) build $(AGENT_FLAGS) -o $@ ./agents/ext4packinit

# vet also for macOS, a platform ext4pack runs on: it catches Linux-only
# calls in files without a _linux suffix, tests included. Windows, where
# ext4pack runs but the tests (which run Linux tools) do not, is built.
vet:
	$(GO) vet ./...
	GOOS=darwin $(GO) vet ./...
	GOOS=windows $(GO) build ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt would change:"; gofmt -l .; exit 1; }

# The whole suite, oracle tests included (e2fsck, debugfs, and, as root,
# a kernel loop mount). Outside CI, a test whose tool is missing skips and
# says why; with CI set it fails instead. Then the packages with code of
# their own for other systems once more, built with ext4pack_portable:
# Linux then compiles what macOS and Windows do (zeros written where
# Linux punches holes, holes found by reading where it has SEEK_DATA, the
# agent's vsock stub), so that those files run in the tests too. Then the
# agents package as make build compiles it, with the guest binaries built
# in (embedagents).
PORTABLE_PKGS := . ./ext4w ./bundle ./agents/vsockagent
test: vet agents
	$(GO) test -count=1 -timeout 40m ./...
	$(GO) test -count=1 -timeout 20m -tags ext4pack_portable $(PORTABLE_PKGS)
	$(GO) test -count=1 -tags embedagents ./agents/

# An image ext4pack makes from a Debian bookworm rootfs boots under qemu
# (TCG unless the CPU has vmx or svm) and the guest checks itself; two
# negative controls must fail. The first run needs root (debootstrap) and
# apt; the kernel package and the rootfs tar are then cached in
# $$EXT4PACK_CACHE (default ~/.cache/ext4pack-boottest). ROOTFS_TAR=FILE
# boots that rootfs tar instead of a debootstrapped one. CI runs it as part
# of make test.
boot-test:
	sh internal/boottest/install-deps.sh
	EXT4PACK_BOOT_TEST=1 $(if $(ROOTFS_TAR),EXT4PACK_BOOT_ROOTFS_TAR=$(abspath $(ROOTFS_TAR))) \
		$(GO) test -count=1 -timeout 40m -v -run '^TestBoot$$' ./internal/boottest/

# The measuring harness (bench/): ext4pack image against the floor, the
# old mkfs.ext4 -d + debugfs way, mke2fs -d TARBALL (1.47.1+, or
# BENCH_MKE2FS=PATH) and tar2ext4 (on PATH, or BENCH_TAR2EXT4=PATH) on a
# Debian rootfs tar; the same as container images, and pulled from a
# local registry over a 20 ms, 20 MB/s link (toxiproxy) and on loopback;
# make-bundle against zstd -19 -T2; the compression table; tars of 10k to
# 1M entries; CPU profiles; all in a tmpfs (/dev/shm). It rewrites the
# generated part of BENCHMARKS.md; about 14 minutes on 2 cores.
# BENCH_TAR=FILE uses that rootfs tar instead of the boot test's cached
# (or debootstrapped) one; BENCH_FLAGS passes more flags (e.g. -rounds 1
# -scale 10k -skip pulls; -prevbin OLD for issue 21's baseline: an
# ext4pack built from before it, for the gzip input rows; -prepullbin OLD
# for issue 18's, an ext4pack from before it, the pulls' loopback
# baseline; and -oldbin for the memory phase's). Then the writer's and the tar
# decoder's Go benchmarks (the decoder against archive/tar, same run).
BENCH_TAR   ?=
BENCH_FLAGS ?=
bench: build
	$(GO) run ./bench -bin $(BIN) -tar "$(BENCH_TAR)" -out BENCHMARKS.md $(BENCH_FLAGS)
	$(GO) test -run '^$$' -bench . -benchmem ./ext4w/... ./tarflat/...

# Builds ext4pack, generates a small example rootfs tar (no download),
# turns it into an image and a bundle, and shows what is inside.
demo: build
	@mkdir -p $(DEMO)
	$(GO) run ./internal/examplefs/cmd/mkexample $(DEMO)/rootfs.tar
	./$(BIN) image --rootfs-tar $(DEMO)/rootfs.tar --out $(DEMO)/rootfs.ext4
	./$(BIN) make-bundle --rootfs-tar $(DEMO)/rootfs.tar --name example --out $(DEMO)/example.tar.zst
	./$(BIN) inspect $(DEMO)/example.tar.zst /usr/bin/passwd /usr/local/bin/banger-vsock-agent
	@if command -v e2fsck >/dev/null; then e2fsck -fn $(DEMO)/rootfs.ext4; else echo "(install e2fsprogs to have e2fsck check the image)"; fi

clean:
	rm -rf bin agents/bin $(DEMO) dist
