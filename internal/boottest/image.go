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

// imageTools are the programs that make the image, built once per run.
type imageTools struct {
	ext4pack string // the ext4pack CLI
	agentBin string // a static x86_64 banger-vsock-agent built from ./agents/vsockagent
}

// buildTools builds ext4pack (unless bin names a prebuilt one) and the vsock
// agent into dir, from the module at root. The agent is built as the
// Makefile builds the embedded one: static, no paths, no build id.
func buildTools(ctx context.Context, root, dir, bin string) (imageTools, error) {
	t := imageTools{
		ext4pack: bin,
		agentBin: filepath.Join(dir, "banger-vsock-agent"),
	}
	if t.ext4pack == "" {
		t.ext4pack = filepath.Join(dir, "ext4pack")
		if _, err := runTool(ctx, toolTimeout, runOpts{dir: root}, "go", "build", "-trimpath", "-o", t.ext4pack, "./cmd/ext4pack"); err != nil {
			return t, err
		}
	}
	_, err := runTool(ctx, toolTimeout, runOpts{dir: root, env: []string{"CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64"}},
		"go", "build", "-trimpath", "-buildvcs=false", "-ldflags=-s -w -buildid=", "-o", t.agentBin, "./agents/vsockagent")
	return t, err
}

// buildRootfsImage turns the test rootfs (input: --rootfs-tar FILE, or
// --image REF) into the ext4 image the VM boots, in dir, and returns the image's path and what ext4pack printed.
// It goes the way users go: make-bundle (with the banger guest files, or
// --no-agents), then rootfs.ext4 is taken out of the bundle with the
// project's own reader. Every negative control edits only the rootfs tar,
// before this function.
func buildRootfsImage(ctx context.Context, tools imageTools, input []string, dir string, banger bool) (image, output string, err error) {
	b := filepath.Join(dir, "boottest.tar.zst")
	args := append([]string{"make-bundle"}, input...)
	args = append(args, "--name", "boottest", "--out", b)
	if banger {
		args = append(args, "--agent-bin", tools.agentBin)
	} else {
		args = append(args, "--no-agents")
	}
	out, err := runTool(ctx, toolTimeout, runOpts{}, tools.ext4pack, args...)
	output = strings.TrimSpace(string(out))
	if err != nil {
		return "", output, err
	}
	defer os.Remove(b)
	in, err := os.Open(b)
	if err != nil {
		return "", output, err
	}
	defer in.Close()
	image = filepath.Join(dir, "rootfs.ext4")
	f, err := os.Create(image)
	if err != nil {
		return "", output, err
	}
	if _, err := bundle.ExtractRootfs(ctx, bufio.NewReaderSize(in, 1<<20), f); err != nil {
		f.Close()
		return "", output, fmt.Errorf("extracting rootfs.ext4 from %s: %w", b, err)
	}
	return image, output, f.Close()
}
