//go:build linux

package main

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

// pipeline is one way to turn the Debian tar into an image (or, for the
// floor, into a copy of itself).
type pipeline struct {
	name    string
	command string // what it runs, for the report
	skip    string // why it was not run; "" when it was
	run     func(ctx context.Context) (sample, []sample, error)
	samples series
	steps   []series // per-step samples, for the old way
	stepNms []string
	notes   []string
}

// pipelineNames, as the report and the targets refer to them.
const (
	pFloor    = "floor: cat the tar into a file"
	pExt4pack = "ext4pack image"
	pOldWay   = "old way: tar -x, mkfs.ext4 -d, debugfs script"
	pMke2fs   = "mke2fs -d TARBALL"
	pTar2ext4 = "hcsshim tar2ext4"
)

// runPipelines runs every pipeline the machine has, taking turns, one
// round at a time; each round starts with the next pipeline, so that none
// always runs first or last.
func runPipelines(ctx context.Context, c config, m machine, work, tarPath string, imageSize int64) ([]*pipeline, error) {
	out := filepath.Join(work, "out")
	rm := func() { os.RemoveAll(out) }
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	sizeK := strconv.FormatInt(imageSize>>10, 10) + "k"

	floor := &pipeline{name: pFloor, command: "cat TAR > FILE"}
	floor.run = func(ctx context.Context) (sample, []sample, error) {
		f, err := os.Create(out)
		if err != nil {
			return sample{}, nil, err
		}
		defer f.Close()
		s, _, err := runProc(ctx, f, "cat", tarPath)
		return s, nil, err
	}

	e4p := &pipeline{name: pExt4pack, command: "ext4pack image --rootfs-tar TAR --out IMAGE"}
	e4p.run = func(ctx context.Context) (sample, []sample, error) {
		s, _, err := runProc(ctx, nil, c.bin, "image", "--rootfs-tar", tarPath, "--out", out)
		return s, nil, err
	}

	old := &pipeline{name: pOldWay,
		command: "tar -x --no-same-owner -f TAR -C DIR; bench debugfs-script TAR > SCRIPT; mkfs.ext4 -q -F -b 4096 -d DIR IMAGE " + sizeK + "; debugfs -w -f SCRIPT IMAGE",
		stepNms: []string{"tar -x", "debugfs script", "mkfs.ext4 -d", "debugfs -w -f"},
	}
	mkfs, errMkfs := lookTool("mkfs.ext4")
	debugfs, errDebugfs := lookTool("debugfs")
	if err := errors.Join(errMkfs, errDebugfs); err != nil {
		old.skip = "e2fsprogs is not installed: " + err.Error()
	}
	old.run = func(ctx context.Context) (sample, []sample, error) {
		dir, script := filepath.Join(work, "extracted"), filepath.Join(work, "fixup.debugfs")
		defer os.RemoveAll(dir)
		defer os.Remove(script)
		if err := os.Mkdir(dir, 0o755); err != nil {
			return sample{}, nil, err
		}
		var total sample
		var steps []sample
		step := func(s sample, stderr []byte, err error) error {
			total.add(s)
			steps = append(steps, s)
			return err
		}
		if err := step(runProc(ctx, nil, "tar", "-x", "--no-same-owner", "-f", tarPath, "-C", dir)); err != nil {
			return total, steps, err
		}
		f, err := os.Create(script)
		if err != nil {
			return total, steps, err
		}
		err = step(runProc(ctx, f, self, "debugfs-script", tarPath))
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return total, steps, err
		}
		if err := step(runProc(ctx, nil, mkfs, "-q", "-F", "-b", "4096", "-d", dir, out, sizeK)); err != nil {
			return total, steps, err
		}
		s, stderr, err := runProc(ctx, nil, debugfs, "-w", "-f", script, out)
		if err = step(s, nil, err); err == nil {
			// debugfs exits 0 even when a request fails; it says so on
			// stderr, after its banner line.
			if n := countFailures(stderr); n > 0 {
				err = fmt.Errorf("debugfs: %d requests failed:\n%s", n, tail(stderr, 2<<10))
			}
		}
		return total, steps, err
	}

	mke := &pipeline{name: pMke2fs, command: "mke2fs -q -F -t ext4 -b 4096 -d TAR IMAGE " + sizeK}
	// BENCH_MKE2FS names a mke2fs of 1.47.1 or newer (for instance one
	// unpacked from Debian's bookworm-backports) when the installed
	// e2fsprogs is older.
	mkeBin := os.Getenv("BENCH_MKE2FS")
	switch {
	case mkeBin != "":
		mke.command = mkeBin + " -q -F -t ext4 -b 4096 -d TAR IMAGE " + sizeK + " (" + toolVersion(mkeBin) + ")"
	case m.e2fsprogs == "not installed":
		mke.skip = "e2fsprogs is not installed"
	case !m.e2fsAtLeast(1, 47, 1):
		mke.skip = fmt.Sprintf("e2fsprogs here is %s; mke2fs reads a tarball with -d only from 1.47.1 (BENCH_MKE2FS=PATH names a newer one)", m.e2fsprogs)
	}
	mke.run = func(ctx context.Context) (sample, []sample, error) {
		p := mkeBin
		if p == "" {
			var err error
			if p, err = lookTool("mke2fs"); err != nil {
				return sample{}, nil, err
			}
		}
		s, _, err := runProc(ctx, nil, p, "-q", "-F", "-t", "ext4", "-b", "4096", "-d", tarPath, out, sizeK)
		return s, nil, err
	}

	// BENCH_TAR2EXT4 names hcsshim's tar2ext4 where it is not on PATH.
	t2e := &pipeline{name: pTar2ext4, command: "tar2ext4 -i TAR -o IMAGE"}
	t2eBin := os.Getenv("BENCH_TAR2EXT4")
	if t2eBin == "" {
		var err error
		if t2eBin, err = exec.LookPath("tar2ext4"); err != nil {
			t2e.skip = "tar2ext4 is not installed on this machine (BENCH_TAR2EXT4=PATH names one; the harness does not build it from fetched source)"
		}
	}
	t2e.run = func(ctx context.Context) (sample, []sample, error) {
		s, _, err := runProc(ctx, nil, t2eBin, "-i", tarPath, "-o", out)
		return s, nil, err
	}

	ps := []*pipeline{floor, e4p, old, mke, t2e}
	var live []*pipeline
	for _, p := range ps {
		if p.skip == "" {
			live = append(live, p)
		} else {
			logf("skip %s: %s", p.name, p.skip)
		}
	}
	for r := 0; r < c.rounds; r++ {
		for i := range live {
			p := live[(r+i)%len(live)]
			rm()
			s, steps, err := p.run(ctx)
			rm()
			if err != nil {
				return nil, fmt.Errorf("%s: %w", p.name, err)
			}
			p.samples = append(p.samples, s)
			for k, st := range steps {
				if len(p.steps) <= k {
					p.steps = append(p.steps, nil)
				}
				p.steps[k] = append(p.steps[k], st)
			}
			logf("round %d: %-46s %7.3f s  %6.1f MiB", r+1, p.name, s.wall.Seconds(), float64(s.maxRSS)/(1<<20))
		}
	}
	return ps, nil
}

// countFailures counts debugfs's complaint lines: every line of its
// stderr but the "debugfs 1.47.0 (5-Feb-2023)" banner.
func countFailures(stderr []byte) int {
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(stderr)), "\n") {
		if line != "" && !strings.HasPrefix(line, "debugfs ") {
			n++
		}
	}
	return n
}

// debugfsScriptMain is the old way's fix-up step, as people write it: for
// every entry of the tar but hard links, set_inode_field's uid, gid and
// mode (type bits included, as debugfs wants the whole i_mode), since an
// unprivileged tar -x leaves every file owned by the user who ran it and
// mkfs.ext4 -d copies that.
func debugfsScriptMain(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: bench debugfs-script TAR > SCRIPT")
	}
	f, err := os.Open(args[0])
	if err != nil {
		return err
	}
	defer f.Close()
	out := bufio.NewWriterSize(os.Stdout, 1<<20)
	tr := tar.NewReader(bufio.NewReaderSize(f, 1<<20))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		var typ int64
		switch h.Typeflag {
		case tar.TypeDir:
			typ = 0o040000
		case tar.TypeReg:
			typ = 0o100000
		case tar.TypeSymlink:
			typ = 0o120000
		case tar.TypeChar:
			typ = 0o020000
		case tar.TypeBlock:
			typ = 0o060000
		case tar.TypeFifo:
			typ = 0o010000
		default: // hard links share their target's inode
			continue
		}
		name := "/" + strings.Trim(strings.TrimPrefix(h.Name, "./"), "/")
		if strings.ContainsAny(name, "\"\n") {
			continue // debugfs's request parser cannot quote these
		}
		q := `"` + name + `"`
		fmt.Fprintf(out, "sif %s uid %d\nsif %s gid %d\nsif %s mode 0%o\n", q, h.Uid, q, h.Gid, q, typ|h.Mode&0o7777)
	}
	return out.Flush()
}

// toolVersion is the first line a tool prints for -V, for the table.
func toolVersion(path string) string {
	out, _ := exec.Command(path, "-V").CombinedOutput()
	line, _, _ := strings.Cut(strings.TrimSpace(string(out)), "\n")
	return line
}
