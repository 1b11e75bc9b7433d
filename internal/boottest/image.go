package boottest

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ext4pack/ext4pack/bundle"
)

// imageTools are the programs that make the images and run in the guests,
// built once per run.
type imageTools struct {
	ext4pack string            // the ext4pack CLI
	guest    map[string]string // by "NAME-ARCH": banger-vsock-agent, ext4pack-init, boottest-check, rdinit
	// embedded is ext4pack as `make build` makes it, with the agent and
	// ext4pack-init of both arches built in, and embeddedGuest those
	// guest binaries by "NAME-ARCH", as make build left them in
	// agents/bin: what users get, booted by the guests that say so.
	embedded      string
	embeddedGuest map[string]string
}

// guestPrograms are built for each guest arch, static, as the Makefile
// builds the embedded ones: no cgo, no paths, no build id.
var guestPrograms = map[string]string{
	"banger-vsock-agent": "./agents/vsockagent",
	"ext4pack-init":      "./agents/ext4packinit",
	"boottest-check":     "./internal/boottest/checker",
	"rdinit":             "./internal/boottest/rdinit",
	"growjudge":          "./internal/boottest/growjudge",
}

var goarch = map[string]string{"x86_64": "amd64", "aarch64": "arm64"}

// buildTools builds ext4pack (unless bin names a prebuilt one) and the
// guest programs for archs into dir, from the module at root, and, when
// embedded, ext4pack with `make build` (which also writes the guest
// binaries it embeds into root's agents/bin, as it always does).
func buildTools(ctx context.Context, root, dir, bin string, archs []string, embedded bool) (imageTools, error) {
	t := imageTools{ext4pack: bin, guest: map[string]string{}}
	if embedded {
		t.embedded = filepath.Join(dir, "ext4pack-embedded")
		if _, err := runTool(ctx, toolTimeout, runOpts{dir: root}, "make", "build", "BIN="+t.embedded); err != nil {
			return t, err
		}
		t.embeddedGuest = map[string]string{}
		for _, arch := range []string{"x86_64", "aarch64"} {
			for _, name := range []string{"banger-vsock-agent", "ext4pack-init"} {
				t.embeddedGuest[name+"-"+arch] = filepath.Join(root, "agents", "bin", name+"-"+arch)
			}
		}
	}
	if t.ext4pack == "" {
		t.ext4pack = filepath.Join(dir, "ext4pack")
		if _, err := runTool(ctx, toolTimeout, runOpts{dir: root}, "go", "build", "-trimpath", "-o", t.ext4pack, "./cmd/ext4pack"); err != nil {
			return t, err
		}
	}
	for _, arch := range archs {
		for name, pkg := range guestPrograms {
			out := filepath.Join(dir, name+"-"+arch)
			if _, err := runTool(ctx, toolTimeout, runOpts{dir: root, env: []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=" + goarch[arch]}},
				"go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", out, pkg); err != nil {
				return t, err
			}
			t.guest[name+"-"+arch] = out
		}
	}
	return t, nil
}

// bundleResult is what make-bundle told about one image.
type bundleResult struct {
	image     string // rootfs.ext4 taken out of the bundle
	stderr    string
	guestInit string // the manifest's guest_init
}

// buildRootfsImage turns the test rootfs (input: --rootfs-tar FILE, or
// --image REF) into the ext4 image the VM boots, in dir. It goes the way
// users go: make-bundle, then rootfs.ext4 is taken out of the bundle with
// the project's own reader. Negative controls edit the rootfs tar before
// this, or the image after.
//
// embedded makes it with make build's ext4pack and the guest binaries
// built into it: no --agent-bin, no --init-bin.
func buildRootfsImage(ctx context.Context, tools imageTools, input []string, dir, arch string, embedded bool) (bundleResult, error) {
	var res bundleResult
	b := filepath.Join(dir, "boottest.tar.zst")
	args := append([]string{"make-bundle"}, input...)
	args = append(args, "--name", "boottest", "--arch", arch, "--out", b)
	bin := tools.ext4pack
	if embedded {
		bin = tools.embedded
	} else {
		args = append(args, "--agent-bin", tools.guest["banger-vsock-agent-"+arch], "--init-bin", tools.guest["ext4pack-init-"+arch])
	}
	// make-bundle's stdout is three lines; what it says of the guest is on
	// stderr, which runTool mixes in.
	out, err := runTool(ctx, toolTimeout, runOpts{}, bin, args...)
	res.stderr = strings.TrimSpace(string(out))
	if err != nil {
		return res, err
	}
	defer os.Remove(b)
	in, err := os.Open(b)
	if err != nil {
		return res, err
	}
	defer in.Close()
	res.image = filepath.Join(dir, "rootfs.ext4")
	f, err := os.Create(res.image)
	if err != nil {
		return res, err
	}
	m, err := bundle.ExtractRootfs(ctx, bufio.NewReaderSize(in, 1<<20), f)
	if err != nil {
		f.Close()
		return res, fmt.Errorf("extracting rootfs.ext4 from %s: %w", b, err)
	}
	res.guestInit = m.GuestInit
	return res, f.Close()
}
