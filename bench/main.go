//go:build linux

// Command bench is ext4pack's measuring harness (issue 8), what `make bench`
// runs after `make build`. It is not part of the ext4pack binary, so it may
// run other programs: the baselines, zstd, go tool pprof.
//
// In one run, inside a tmpfs, it measures:
//
//   - on a Debian rootfs tar: the floor (cat the tar into a file),
//     `ext4pack image`, the old unprivileged way (tar -x, mkfs.ext4 -d, a
//     generated debugfs script that fixes owners and modes), and
//     `mke2fs -d TARBALL` and hcsshim's tar2ext4 where the machine has
//     them, taking turns, -rounds rounds (3);
//   - the Debian tar as a three-layer OCI image against one flat tar,
//     against umoci unpack --rootless and mkfs.ext4 -d, and pulled from a
//     local docker-registry (the images phase);
//   - a five-layer image of about 900 MB pulled from that registry over a
//     link of 20 ms and 20 MB/s a connection (toxiproxy, in this process)
//     and on loopback: cold, warm, with every connection cut after 60 MB,
//     against skopeo copy, ext4pack's download alone, the build from the
//     pulled layout and, with -prepullbin, the ext4pack from before
//     issue 18 (the pulls phase);
//   - `ext4pack make-bundle --no-agents` against `zstd -19 -T2` of the same
//     image, taking turns, and the bundle writer's compression settings
//     (level, window, frame) one by one;
//   - inflate (issue 21): inflate's BenchmarkGunzip against klauspost's
//     gzip and compress/gzip on the Debian tar, gzip -6, at GOMAXPROCS 1,
//     2 and 16, and `ext4pack image` of the gzipped flat tar and of five
//     gzip layers against -prevbin (the binary before issue 21) when given;
//   - make-bundle's peak memory and workers on a tar of 1 GiB of text at
//     GOMAXPROCS 2 and 16, against -oldbin (the binary before the memory
//     budget) when given, with GOMEMLIMIT=512MiB, and in cgroups of 512
//     and 256 MiB where the harness can make them; then the same on the
//     pulls phase's image of five gzip layers (issue 21);
//   - `ext4pack image` on generated tars of 10k, 100k and 1M small files and
//     one with a 100,000-entry directory, against a near-empty tar, for the
//     time and memory an entry costs;
//   - CPU profiles of the image pipeline (tarflat into ext4w, as the CLI
//     calls them) on the Debian tar and on the 100k-file tar.
//
// Each process's wall time, CPU time and peak RSS (wait4's ru_maxrss, taken
// by a small helper that starts it: see runProc) are kept; the report
// gives medians of the wall and CPU times and the largest peak RSS. It is
// printed and written into BENCHMARKS.md between the markers
// "<!-- bench:begin" and "<!-- bench:end -->"; the text around them is kept.
//
// Usage (the flags' defaults come from the environment variables named):
//
//	go run ./bench -bin bin/ext4pack [-oldbin OLD] [-prevbin PREV] [-prepullbin OLD] [-tar FILE] [-dir DIR] [-rounds N]
//	               [-scale 10k,100k,1m,dir100k] [-skip LIST] [-out BENCHMARKS.md]
//
// The Debian tar is -tar (BENCH_TAR), else the boot test's cached one
// ($EXT4PACK_CACHE, default ~/.cache/ext4pack-boottest,
// rootfs-bookworm-minbase-systemd-sysv-iproute2.tar), else one made now with
// debootstrap (as root) from the mirror apt uses, and cached there.
//
// It runs on Linux only: it reads /proc and relies on wait4 rusage.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// config is the run's settings.
type config struct {
	bin        string   // the ext4pack binary under test
	oldBin     string   // the binary from before the memory budget, for the memory phase; "" for none
	prevBin    string   // the binary from before issue 21, for the inflate phase; "" for none
	prePullBin string   // an ext4pack from before issue 18 (one connection, no cache), the pulls phase's baseline; "" for none
	tar        string   // the Debian rootfs tar; "" to find or build one
	dir        string   // where the work directory is made (a tmpfs)
	rounds     int      // rounds of each measured pipeline
	scale      []string // generated corpora to run
	skip       []string // phases to leave out
	out        string   // the report file; "" or "-" to only print
	keep       bool     // keep the work directory
}

// phases a run has, in order; -skip takes their names.
var phases = []string{"pipelines", "images", "pulls", "inflate", "bundle", "compress", "memory", "scale", "profile"}

func main() {
	// Helper modes: the harness runs itself as one step of a pipeline, so
	// that the step is a process whose time and memory are measured.
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "rusage":
			exit(rusageMain(os.Args[2:]))
		case "debugfs-script":
			exit(debugfsScriptMain(os.Args[2:]))
		case "profile-image":
			exit(profileImageMain(os.Args[2:]))
		case "download":
			exit(downloadMain(os.Args[2:]))
		case "pulls-layout":
			exit(pullsLayoutMain(os.Args[2:]))
		}
	}
	c, err := parseFlags(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	exit(run(ctx, c))
}

func exit(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func parseFlags(args []string) (config, error) {
	var c config
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.StringVar(&c.bin, "bin", envOr("BENCH_BIN", "bin/ext4pack"), "the ext4pack binary (BENCH_BIN); `make build` makes bin/ext4pack")
	fs.StringVar(&c.tar, "tar", os.Getenv("BENCH_TAR"), "the Debian rootfs tar (BENCH_TAR); default: the boot test's cache, else debootstrap")
	fs.StringVar(&c.oldBin, "oldbin", os.Getenv("BENCH_OLD_BIN"), "an ext4pack from before the memory budget (BENCH_OLD_BIN), the memory phase's baseline; default: none")
	fs.StringVar(&c.prevBin, "prevbin", os.Getenv("BENCH_PREV_BIN"), "an ext4pack from before issue 21's inflate (BENCH_PREV_BIN), the inflate phase's baseline; default: none")
	fs.StringVar(&c.prePullBin, "prepullbin", os.Getenv("BENCH_PREPULL_BIN"), "an ext4pack from before issue 18 (BENCH_PREPULL_BIN), the pulls phase's baseline; default: none")
	fs.StringVar(&c.dir, "dir", envOr("BENCH_DIR", "/dev/shm"), "a tmpfs to work in (BENCH_DIR)")
	rounds := fs.Int("rounds", 3, "rounds of each pipeline; medians are reported")
	scale := fs.String("scale", envOr("BENCH_SCALE", "10k,100k,1m,dir100k"), "generated corpora (BENCH_SCALE): any of 10k, 100k, 1m, dir100k; \"none\" for none")
	skip := fs.String("skip", os.Getenv("BENCH_SKIP"), "phases to leave out (BENCH_SKIP), comma separated: "+strings.Join(phases, ", "))
	fs.StringVar(&c.out, "out", envOr("BENCH_OUT", "BENCHMARKS.md"), "the report file to update (BENCH_OUT); - prints only")
	fs.BoolVar(&c.keep, "keep", false, "keep the work directory (images, tars, profiles)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *rounds < 1 {
		return c, fmt.Errorf("-rounds %d: want 1 or more", *rounds)
	}
	c.rounds = *rounds
	for _, s := range strings.Split(*scale, ",") {
		s = strings.TrimSpace(s)
		if s == "" || s == "none" {
			continue
		}
		if _, ok := corpusSpecs[s]; !ok || s == "empty" {
			return c, fmt.Errorf("-scale: unknown corpus %q (want 10k, 100k, 1m or dir100k)", s)
		}
		c.scale = append(c.scale, s)
	}
	for _, s := range strings.Split(*skip, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if !slices.Contains(phases, s) {
			return c, fmt.Errorf("-skip: unknown phase %q (want %s)", s, strings.Join(phases, ", "))
		}
		c.skip = append(c.skip, s)
	}
	var err error
	if c.bin, err = filepath.Abs(c.bin); err != nil {
		return c, err
	}
	if st, err := os.Stat(c.bin); err != nil || st.IsDir() {
		return c, fmt.Errorf("-bin %s: not a file (run `make build` first)", c.bin)
	}
	if c.prevBin != "" {
		if c.prevBin, err = filepath.Abs(c.prevBin); err != nil {
			return c, err
		}
		if st, err := os.Stat(c.prevBin); err != nil || st.IsDir() {
			return c, fmt.Errorf("-prevbin %s: not a file", c.prevBin)
		}
	}
	if c.oldBin != "" {
		if c.oldBin, err = filepath.Abs(c.oldBin); err != nil {
			return c, err
		}
		if st, err := os.Stat(c.oldBin); err != nil || st.IsDir() {
			return c, fmt.Errorf("-oldbin %s: not a file", c.oldBin)
		}
	}
	if c.prePullBin != "" {
		if c.prePullBin, err = filepath.Abs(c.prePullBin); err != nil {
			return c, err
		}
		if st, err := os.Stat(c.prePullBin); err != nil || st.IsDir() {
			return c, fmt.Errorf("-prepullbin %s: not a file", c.prePullBin)
		}
	}
	return c, nil
}

func (c config) skipped(phase string) bool { return slices.Contains(c.skip, phase) }

// logf prints progress on stderr with the time since the start.
var start = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

// run does the whole benchmark and writes the report.
func run(ctx context.Context, c config) error {
	work, onTmpfs, err := makeWorkDir(c.dir)
	if err != nil {
		return err
	}
	if !c.keep {
		defer os.RemoveAll(work)
	} else {
		defer logf("kept %s", work)
	}
	if !onTmpfs {
		logf("warning: %s is not a tmpfs; disk speed will be part of every figure", c.dir)
	}
	r := &report{date: time.Now().UTC(), rounds: c.rounds, workDir: work, onTmpfs: onTmpfs}
	load := startLoadMeter()
	r.machine = describeMachine(ctx, c.bin)

	deb, err := debianTar(ctx, c, work)
	if err != nil {
		return fmt.Errorf("the Debian rootfs tar: %w", err)
	}
	r.debian = deb
	logf("Debian tar: %s (%s, %d entries), copied to %s", deb.source, mib(deb.size), deb.entries, deb.path)

	// One image made before the measured rounds: its size is the old way's
	// mkfs.ext4 size, and the bundle and compression phases read it.
	img := filepath.Join(work, "debian.ext4")
	if _, _, err := runProc(ctx, nil, c.bin, "image", "--rootfs-tar", deb.path, "--out", img); err != nil {
		return err
	}
	st, err := os.Stat(img)
	if err != nil {
		return err
	}
	r.debian.imageSize = st.Size()

	if !c.skipped("pipelines") {
		if r.pipelines, err = runPipelines(ctx, c, r.machine, work, deb.path, st.Size()); err != nil {
			return err
		}
	}
	if !c.skipped("images") {
		if r.images, err = runImages(ctx, c, work, deb.path, st.Size()); err != nil {
			return err
		}
	}
	if !c.skipped("pulls") {
		if r.pulls, err = runPulls(ctx, c, work, deb.path); err != nil {
			return err
		}
	}
	if !c.skipped("inflate") {
		if r.inflate, err = runInflate(ctx, c, work, deb.path); err != nil {
			return err
		}
	}
	if !c.skipped("bundle") {
		if r.bundle, err = runBundle(ctx, c, work, deb.path, img); err != nil {
			return err
		}
	}
	if !c.skipped("compress") {
		if r.compress, err = runCompress(ctx, img); err != nil {
			return err
		}
	}
	if !c.skipped("memory") {
		if r.memory, err = runMemory(ctx, c, work, deb.path); err != nil {
			return err
		}
	}
	var corpora []*corpus
	switch {
	case c.skipped("scale"):
		r.scaleSkip = phaseSkipped("scale")
	case len(c.scale) == 0:
		r.scaleSkip = "not measured: no corpus ran (-scale none)"
	}
	if !c.skipped("scale") && len(c.scale) > 0 {
		if corpora, err = generateCorpora(ctx, work, c.scale); err != nil {
			return err
		}
		if r.scale, err = runScale(ctx, c, work, corpora); err != nil {
			return err
		}
	}
	if !c.skipped("profile") {
		targets := []profileTarget{{"the Debian tar", deb.path}}
		for _, k := range corpora {
			if k.name == "100k" {
				targets = append(targets, profileTarget{"the 100k-file tar", k.path})
			}
		}
		if r.profiles, err = runProfiles(ctx, work, targets); err != nil {
			return err
		}
	}
	r.load = load.stop()

	text := r.markdown()
	fmt.Println(text)
	if c.out == "" || c.out == "-" {
		return nil
	}
	if err := updateReport(c.out, text); err != nil {
		return err
	}
	logf("wrote %s", c.out)
	return nil
}

// makeWorkDir makes a fresh directory under dir and says whether it is on
// a tmpfs.
func makeWorkDir(dir string) (string, bool, error) {
	work, err := os.MkdirTemp(dir, "ext4pack-bench-")
	if err != nil {
		return "", false, err
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(work, &sfs); err != nil {
		os.RemoveAll(work)
		return "", false, err
	}
	const tmpfsMagic = 0x01021994
	return work, sfs.Type == tmpfsMagic, nil
}
