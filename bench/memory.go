//go:build linux

package main

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// The memory phase (issues 15 and 21): make-bundle on a tar of 1 GiB of
// text, the case whose compression once peaked at 2,632 MiB, at GOMAXPROCS
// 2 and 16, against the binary before the memory budget (-oldbin) in the
// same run; at each, with the default budget (a quarter of the machine's
// memory), with GOMEMLIMIT=512MiB and inside a cgroup of 512 MiB; and
// inside a cgroup of 256 MiB, where the machine lets the harness make
// cgroups. Then the same three settings at GOMAXPROCS 2 and 16 on the
// pulls phase's image (five gzip layers, about 1 GB of tar: the Debian
// tree and copies of its usr), the shape of issue 21's 800 MB image. This
// build runs with --verbose, which says how many workers compress and
// why.
const (
	memoryTextBytes  = 1 << 30
	memoryCgroupMax  = 256 << 20
	memoryCgroup512  = 512 << 20
	memoryFrameBytes = 128 << 20 // bundle.DefaultFrameSize
)

// memoryRun is one make-bundle of the memory phase.
type memoryRun struct {
	label      string // which binary and settings
	gomaxprocs int
	inCgroup   bool   // the run meant for the 256 MiB cgroup
	cgroupMax  int64  // the cgroup's limit, for a run in one
	cgroup     string // the limit's cgroup, when run in one
	memLimit   string // GOMEMLIMIT, when set
	workers    int    // how many workers compressed, as --verbose says; 0: not known
	why        string // and why, its line
	sum        string // the bundle's sha256
	s          sample
	size       int64
	skip       string // why it did not run (no cgroup could be made)
	failed     string // why make-bundle failed, when it did
}

// frames is how many frames the bundle's image has, as --verbose says.
func (r *memoryRun) frames() int {
	m := framesIn.FindStringSubmatch(r.why)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

var framesIn = regexp.MustCompile(`(\d+) frames of`)

// memoryResult is the memory phase.
type memoryResult struct {
	tarSize int64
	runs    []*memoryRun
	oldBin  string // "" when not given

	// The pulls phase's image: its layers' uncompressed and compressed sizes,
	// and its runs (this build only), or why there are none.
	imageBytes, imageGz int64
	imageRuns           []*memoryRun
	imageErr            string
}

// runMemory generates the text tar in work and runs make-bundle on it:
// the binary under test and the old one at GOMAXPROCS 2 and 16, then the
// binary under test in a 256 MiB cgroup; then the five-layer image made
// from debTar. Each once: a run takes a minute.
func runMemory(ctx context.Context, c config, work, debTar string) (*memoryResult, error) {
	res := &memoryResult{oldBin: c.oldBin}
	tarPath := filepath.Join(work, "text-1g.tar")
	n, err := writeTextTar(tarPath, memoryTextBytes)
	if err != nil {
		return nil, err
	}
	res.tarSize = n
	logf("generated a tar of %s of text (%s)", mib(memoryTextBytes), mib(n))
	defer os.Remove(tarPath)

	src := []string{"--rootfs-tar", tarPath, "--name", "text"}
	bundle := func(r *memoryRun, bin, dir string) error {
		out := filepath.Join(dir, "bundle.tar.zst")
		defer os.Remove(out)
		env := []string{"GOMAXPROCS=" + strconv.Itoa(r.gomaxprocs)}
		if r.cgroup != "" {
			env = append(env, "BENCH_CGROUP_PROCS="+filepath.Join(r.cgroup, "cgroup.procs"))
		}
		if r.memLimit != "" {
			env = append(env, "GOMEMLIMIT="+r.memLimit)
		}
		args := append(append([]string{"make-bundle"}, src...), "--no-agents", "--out", out)
		if bin == c.bin {
			args = append(args, "--verbose")
		}
		s, stderr, err := runProcEnv(ctx, env, nil, bin, args...)
		if err != nil {
			r.failed = failure(err, stderr)
			return err
		}
		st, err := os.Stat(out)
		if err != nil {
			return err
		}
		r.s, r.size = s, st.Size()
		if r.sum, err = sha256File(out); err != nil {
			return err
		}
		if m := workersLine.FindSubmatch(stderr); m != nil {
			r.workers, _ = strconv.Atoi(string(m[2]))
			r.why = string(m[1])
		}
		logf("make-bundle %-34s GOMAXPROCS=%-2d %7.2f s  %7.1f MiB  %d B  %d workers", r.label, r.gomaxprocs, s.wall.Seconds(), float64(s.maxRSS)/(1<<20), r.size, r.workers)
		return nil
	}
	// Not in the tmpfs: a cgroup's pages there would be charged to it
	// and could never be reclaimed, and the image alone is over 1 GiB.
	// The page cache of a disk file is reclaimed under the limit.
	disk, err := os.MkdirTemp("/var/tmp", "ext4pack-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(disk)
	inCgroup := func(r *memoryRun, limit int64) {
		r.cgroupMax = limit
		cg, cleanup, err := makeCgroup(limit)
		if err != nil {
			r.skip = err.Error()
			logf("no cgroup run: %v", err)
			return
		}
		defer cleanup()
		r.cgroup = cg
		if err := bundle(r, c.bin, disk); err != nil {
			// It ran, and did not complete (the kernel's OOM killer,
			// or make-bundle refusing the budget): r.failed says so,
			// and the target is not met.
			logf("make-bundle failed in the cgroup: %v", err)
		}
	}
	for _, procs := range []int{2, 16} {
		r := &memoryRun{label: "(this build)", gomaxprocs: procs}
		if err := bundle(r, c.bin, work); err != nil {
			return nil, err
		}
		res.runs = append(res.runs, r)
		if c.oldBin != "" {
			r := &memoryRun{label: "(before the budget: -oldbin)", gomaxprocs: procs}
			if err := bundle(r, c.oldBin, work); err != nil {
				return nil, err
			}
			res.runs = append(res.runs, r)
		}
		r = &memoryRun{label: "(this build) GOMEMLIMIT=512MiB", gomaxprocs: procs, memLimit: "512MiB"}
		if err := bundle(r, c.bin, work); err != nil {
			return nil, err
		}
		res.runs = append(res.runs, r)
		r = &memoryRun{label: "(this build) in a 512 MiB cgroup", gomaxprocs: procs}
		res.runs = append(res.runs, r)
		inCgroup(r, memoryCgroup512)
	}

	r := &memoryRun{label: "(this build) in a 256 MiB cgroup", gomaxprocs: 16, inCgroup: true}
	res.runs = append(res.runs, r)
	inCgroup(r, memoryCgroupMax)
	os.Remove(tarPath)

	// The pulls phase's image. It is a side table: its failing to be made
	// does not lose the text's figures.
	layout := filepath.Join(work, "pulls-image")
	defer os.RemoveAll(layout)
	if res.imageBytes, err = writeBigLayout(layout, debTar); err != nil {
		res.imageErr = "making the layout: " + err.Error()
		logf("memory: %s", res.imageErr)
		return res, nil
	}
	sizes, err := layoutLayerSizes(filepath.Join(layout, "layout"))
	if err != nil {
		return nil, err
	}
	for _, n := range sizes {
		res.imageGz += n
	}
	logf("memory: a layout of five gzip layers, %s (%s compressed)", mib(res.imageBytes), mib(res.imageGz))
	src = []string{"--image", "oci:" + filepath.Join(layout, "layout") + ":v1", "--name", "image"}
	for _, procs := range []int{2, 16} {
		for _, r := range []*memoryRun{
			{label: "(this build)", gomaxprocs: procs},
			{label: "(this build) GOMEMLIMIT=512MiB", gomaxprocs: procs, memLimit: "512MiB"},
			{label: "(this build) in a 512 MiB cgroup", gomaxprocs: procs},
		} {
			res.imageRuns = append(res.imageRuns, r)
			if strings.Contains(r.label, "cgroup") {
				inCgroup(r, memoryCgroup512)
				continue
			}
			if err := bundle(r, c.bin, work); err != nil {
				return nil, err
			}
		}
	}
	return res, nil
}

// writeBigLayout writes the pulls phase's image (pullLayers) as an OCI
// layout in dir, tag v1, and returns its layers' uncompressed size.
func writeBigLayout(dir, debTar string) (int64, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	layers, mb, err := pullLayers(debTar, dir)
	if err != nil {
		return 0, err
	}
	defer func() {
		for _, l := range layers {
			os.Remove(l.path)
		}
	}()
	return int64(mb * 1e6), writeLayout(filepath.Join(dir, "layout"), "v1", layers, true)
}

// pullsLayoutMain is `bench pulls-layout DEBIAN.tar DIR`: it writes the
// pulls phase's image as an OCI layout in DIR/layout (tag v1), to measure
// by hand what the bench measures.
func pullsLayoutMain(args []string) error {
	if len(args) != 2 {
		return errors.New("usage: bench pulls-layout DEBIAN.tar DIR")
	}
	n, err := writeBigLayout(args[1], args[0])
	if err != nil {
		return err
	}
	fmt.Printf("%s/layout:v1: five gzip layers, %s of tar\n", args[1], mib(n))
	return nil
}

// workersLine is make-bundle --verbose's line on the compression workers.
var workersLine = regexp.MustCompile(`ext4pack: (compressing on (\d+) workers?, [^\n]*)`)

// writeTextTar writes a tar of 1 MiB files of generated text, total bytes
// of it, and returns the tar's size: words from a vocabulary of a few
// thousand, in lines, as man pages, docs and scripts are. It compresses
// about as text does (3-4x at the higher levels), fixed seed.
func writeTextTar(path string, total int64) (int64, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	r := rand.New(rand.NewPCG(15, 1))
	vocab := make([]string, 4096)
	for i := range vocab {
		w := words[r.IntN(len(words))]
		switch r.IntN(3) {
		case 0:
			w += strconv.Itoa(r.IntN(1000))
		case 1:
			w = strings.ToUpper(w[:1]) + w[1:] + words[r.IntN(len(words))]
		}
		vocab[i] = w
	}
	const fileSize = 1 << 20
	buf := make([]byte, 0, fileSize+256)
	for i := int64(0); i*fileSize < total; i++ {
		buf = buf[:0]
		for len(buf) < fileSize {
			for w := 5 + r.IntN(10); w > 0; w-- {
				// Zipf-like: a few words are common, most are rare.
				buf = append(buf, vocab[int(float64(len(vocab))*r.Float64()*r.Float64()*r.Float64())]...)
				buf = append(buf, ' ')
			}
			buf[len(buf)-1] = '\n'
		}
		hdr := &tar.Header{Name: fmt.Sprintf("usr/share/doc/text/d%02d/f%04d.txt", i/64, i), Typeflag: tar.TypeReg,
			Mode: 0o644, Size: fileSize, ModTime: time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)}
		if err := tw.WriteHeader(hdr); err != nil {
			return 0, err
		}
		if _, err := tw.Write(buf[:fileSize]); err != nil {
			return 0, err
		}
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), f.Close()
}

// makeCgroup makes a cgroup limited to limit bytes of memory, below this
// process's own memory cgroup (cgroup v1's memory controller), or below
// the root of the cgroup v2 hierarchy when that delegates the memory
// controller to its children, and returns its directory and a function
// that removes it. The rusage helper moves itself into it before it starts
// the command (BENCH_CGROUP_PROCS). It needs root.
func makeCgroup(limit int64) (string, func(), error) {
	self, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		return "", nil, err
	}
	var v1 string
	for line := range strings.Lines(string(self)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) == 3 && hasMemory(parts[1]) {
			v1 = parts[2]
		}
	}
	name := fmt.Sprintf("ext4pack-bench-%d", os.Getpid())
	var dir, limitFile string
	switch {
	case v1 != "" && exists("/sys/fs/cgroup/memory/memory.limit_in_bytes"):
		dir, limitFile = filepath.Join("/sys/fs/cgroup/memory", v1, name), "memory.limit_in_bytes"
	case exists("/sys/fs/cgroup/cgroup.subtree_control"):
		ctl, err := os.ReadFile("/sys/fs/cgroup/cgroup.subtree_control")
		if err != nil || !hasMemory(strings.ReplaceAll(strings.TrimSpace(string(ctl)), " ", ",")) {
			return "", nil, errors.New("the cgroup v2 root does not delegate the memory controller to its children")
		}
		dir, limitFile = filepath.Join("/sys/fs/cgroup", name), "memory.max"
	default:
		return "", nil, errors.New("no cgroup memory controller is mounted at /sys/fs/cgroup")
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		return "", nil, fmt.Errorf("making a cgroup: %w", err)
	}
	cleanup := func() { os.Remove(dir) }
	if err := os.WriteFile(filepath.Join(dir, limitFile), []byte(strconv.FormatInt(limit, 10)), 0o644); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("limiting the cgroup: %w", err)
	}
	return dir, cleanup, nil
}

// failure sums up a failed command for a table cell: how it ended (the
// innermost error: "exit status 1", "signal: killed") and the last line
// of its standard error, which names the cause.
func failure(err error, stderr []byte) string {
	for u := errors.Unwrap(err); u != nil; u = errors.Unwrap(err) {
		err = u
	}
	s := err.Error()
	lines := strings.Split(strings.TrimSpace(string(stderr)), "\n")
	if last := strings.TrimSpace(lines[len(lines)-1]); last != "" {
		s += ": " + last
	}
	return strings.ReplaceAll(s, "|", "\\|")
}

func hasMemory(controllers string) bool {
	for c := range strings.SplitSeq(controllers, ",") {
		if c == "memory" {
			return true
		}
	}
	return false
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

func sha256File(name string) (string, error) {
	f, err := os.Open(name)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
