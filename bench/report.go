//go:build linux

package main

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"
)

// report is everything a run measured.
type report struct {
	date      time.Time
	rounds    int
	workDir   string
	onTmpfs   bool
	machine   machine
	load      loadReport
	debian    debian
	pipelines []*pipeline
	images    *imagesResult
	pulls     *pullsResult
	bundle    *bundleResult
	compress  []compressRow
	memory    *memoryResult
	inflate   *inflateResult
	scale     []*corpus
	scaleSkip string // why no corpus ran, when none did
	profiles  []profile
}

// The markers around the generated part of BENCHMARKS.md.
const (
	beginMarker = "<!-- bench:begin"
	endMarker   = "<!-- bench:end -->"
)

// The yardstick of issue 8, measured elsewhere on a 6,768-entry, 201 MiB
// bookworm minbase tar: shown beside the pipelines for scale, never
// judged against (a target whose baseline did not run is not measured).
var yardstick = map[string]float64{pOldWay: 1.67, pMke2fs: 0.62, pTar2ext4: 0.47, pFloor: 0.12}

// Targets of issues 8 and 6.
const (
	targetVsOldWay    = 0.2
	targetVsMke2fs    = 0.5
	targetVsFloor     = 2.0
	targetPeakRSS     = 64 << 20
	targetFlat        = 1.5
	targetBytesEntry  = 300
	targetBundleSize  = 1.05
	targetBundleTime  = 0.2
	targetTar2ext4Max = 1.0
	targetBundleRSS   = 512 << 20
)

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
func secs(d time.Duration) string {
	switch {
	case d >= 10*time.Second:
		return fmt.Sprintf("%.1f s", d.Seconds())
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	}
	return fmt.Sprintf("%.3f s", d.Seconds())
}

// commas writes n with thousands separators.
func commas(n int64) string {
	s := fmt.Sprint(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func (r *report) pipeline(name string) *pipeline {
	for _, p := range r.pipelines {
		if p.name == name {
			return p
		}
	}
	return nil
}

func (r *report) corpus(name string) *corpus {
	for _, k := range r.scale {
		if k.name == name {
			return k
		}
	}
	return nil
}

// markdown renders the generated part of BENCHMARKS.md, markers included.
func (r *report) markdown() string {
	var b bytes.Buffer
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	p("%s: written by `make bench` (go run ./bench); edits up to the end marker are overwritten -->\n\n", beginMarker)
	p("## Latest run: %s\n\n", r.date.Format("2006-01-02 15:04 UTC"))

	p("### Machine\n\n| | |\n|---|---|\n")
	m := r.machine
	p("| nproc | %d |\n| CPU | %s |\n| memory | %s |\n| kernel | %s |\n| go | %s |\n| e2fsprogs | %s |\n| zstd | %s |\n| ext4pack | %s |\n",
		m.nproc, m.cpu, m.memory, m.kernel, m.goVer, m.e2fsprogs, m.zstd, m.ext4packVer)
	fs := "tmpfs"
	if !r.onTmpfs {
		fs = "NOT a tmpfs: disk speed is part of every figure"
	}
	p("| work directory | %s (%s) |\n", r.workDir, fs)
	l := r.load
	if l.available > 0 {
		shared := "the machine was effectively idle apart from the harness"
		if l.others/l.available > 0.05 {
			shared = "**the machine was shared**: compare ratios from this run, not absolute times"
		}
		p("| load | load average %s at the start, %s at the end; over the run's %.0f s other processes used %.0f of the %.0f CPU-seconds (%.0f%%), the harness %.0f: %s |\n",
			l.loadStart, l.loadStop, l.seconds, l.others, l.available, 100*l.others/l.available, l.ours, shared)
	}
	p("\nEvery figure is the median of %d rounds unless it says otherwise; within a round the pipelines take turns, and each round starts with the next one. Times are from fork to exit. Peak RSS is the largest resident set of any one process of the pipeline, the largest over the rounds: wait4's ru_maxrss, taken by a small helper process that starts the command (started from the harness, Linux would fold the harness's own peak into it), or, for a command that stays below the helper's own size (about 6 MiB), the largest VmHWM sampled every 2 ms.\n\n", r.rounds)

	d := r.debian
	p("### The Debian tar\n\n%s: %s, %s entries. ext4pack makes a %s image of it (sparse).\n\n", d.source, mib(d.size), commas(int64(d.entries)), mib(d.imageSize))

	if len(r.pipelines) > 0 {
		r.pipelineTable(&b)
	}
	r.imagesTable(&b)
	r.pullsTable(&b)
	if r.inflate != nil {
		r.inflateTable(&b)
	}
	if r.bundle != nil {
		r.bundleTable(&b)
	}
	if len(r.compress) > 0 {
		r.compressTable(&b)
	}
	if r.memory != nil {
		r.memoryTable(&b)
	}
	if len(r.scale) > 0 {
		r.scaleTable(&b)
	}
	r.targetsTable(&b)
	for _, pr := range r.profiles {
		p("### CPU profile: `ext4pack image` on %s\n\n", pr.label)
		p("The image pipeline as the CLI runs it (tarflat.Copy into ext4w, Close), %d times in one process, %s each, under pprof. Flat time first (where the CPU goes), then cumulative time of ext4pack's own functions (which of them spend it).\n\n", pr.iterations, secs(pr.perIter))
		if pr.err != "" {
			p("go tool pprof failed: %s\n\n", pr.err)
			continue
		}
		p("```\n%s\n```\n\n```\n%s\n```\n\n", pr.flat, pr.cum)
	}
	p("%s\n", endMarker)
	return b.String()
}

func (r *report) pipelineTable(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	e4p := r.pipeline(pExt4pack)
	p("### Pipelines on the Debian tar\n\n")
	p("| pipeline | wall (median) | min - max | CPU (median) | peak RSS | ext4pack's time / this | yardstick (issue 8: another machine and tar, for scale) |\n|---|---:|---:|---:|---:|---:|---:|\n")
	for _, pl := range r.pipelines {
		ys := "-"
		if y, ok := yardstick[pl.name]; ok {
			ys = fmt.Sprintf("%.2f s", y)
		}
		if pl.skip != "" {
			p("| %s | skipped: %s | | | | | %s |\n", pl.name, pl.skip, ys)
			continue
		}
		lo, hi := pl.samples.minMax()
		ratio := "-"
		if e4p != nil && len(e4p.samples) > 0 && pl != e4p {
			ratio = fmt.Sprintf("%.3fx", e4p.samples.wall().Seconds()/pl.samples.wall().Seconds())
		}
		p("| %s | %s | %s - %s | %s | %s | %s | %s |\n", pl.name, secs(pl.samples.wall()), secs(lo), secs(hi),
			secs(pl.samples.cpu()), mib(pl.samples.peakRSS()), ratio, ys)
	}
	p("\nCommands (TAR and the outputs in the tmpfs; the mkfs size is ext4pack's image size):\n\n")
	for _, pl := range r.pipelines {
		p("- %s: `%s`\n", pl.name, pl.command)
	}
	if old := r.pipeline(pOldWay); old != nil && len(old.steps) > 0 {
		p("\nThe old way's steps (median wall, peak RSS):")
		for i, st := range old.steps {
			p(" %s %s, %s;", old.stepNms[i], secs(st.wall()), mib(st.peakRSS()))
		}
		b.Truncate(b.Len() - 1)
		p(". It runs as root here, so `--no-same-owner` stands in for an unprivileged user's extraction; devices and setuid bits are created as root would. The script sets uid, gid and mode (`sif`) of every entry but hard links, 3 requests an entry; the harness writes it from the tar's headers in a Go process of its own, which is the old way's largest process here (a shell or Python script would be about as large).\n")
	}
	p("\n")
}

func (r *report) bundleTable(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	br := r.bundle
	p("### make-bundle against zstd -19 -T2\n\n")
	p("| | wall (median) | min - max | CPU (median) | peak RSS | size (B) |\n|---|---:|---:|---:|---:|---:|\n")
	lo, hi := br.bundle.minMax()
	p("| `ext4pack make-bundle --no-agents` from the tar, end to end | %s | %s - %s | %s | %s | %s |\n",
		secs(br.bundle.wall()), secs(lo), secs(hi), secs(br.bundle.cpu()), mib(br.bundle.peakRSS()), commas(br.bundleSize))
	if br.skipZstd != "" {
		p("| zstd -19 -T2 | skipped: %s | | | | |\n\n", br.skipZstd)
		return
	}
	lo, hi = br.zstd.minMax()
	p("| `zstd -19 -T2` of ext4pack's image (raw, %s; the image already made) | %s | %s - %s | %s | %s | %s |\n",
		mib(r.debian.imageSize), secs(br.zstd.wall()), secs(lo), secs(hi), secs(br.zstd.cpu()), mib(br.zstd.peakRSS()), commas(br.zstdSize))
	p("\nbundle / zstd: size %.3fx (target at most %.2fx), wall time %.3fx (target under %.1fx), CPU time %.3fx. Same image: %s.\n\n",
		float64(br.bundleSize)/float64(br.zstdSize), targetBundleSize,
		br.bundle.wall().Seconds()/br.zstd.wall().Seconds(), targetBundleTime,
		br.bundle.cpu().Seconds()/br.zstd.cpu().Seconds(), br.sameImage)
}

func (r *report) compressTable(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	var zSize int64
	var zWall time.Duration
	if r.bundle != nil && len(r.bundle.zstd) > 0 {
		zSize, zWall = r.bundle.zstdSize, r.bundle.zstd.wall()
	}
	p("### Compression table (issue 6)\n\n")
	p("bundle.Write on ext4pack's image of the Debian tar (%s of data blocks, the rest holes), one round per setting, in the harness's process, output discarded; no image building in these times. zstd -19 -T2 is the median above, on the same image in the same run; it reads the raw image, holes included.\n\n", mib(firstData(r.compress)))
	p("| level | window | frame | wall | CPU | size (B) | size vs zstd -19 -T2 | wall vs zstd -19 -T2 |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	if zSize > 0 {
		p("| zstd -19 -T2 (%s) | 8M | - | %s | %s | %s | 1.000 | 1.000 |\n", r.machine.zstd, secs(zWall), secs(r.bundle.zstd.cpu()), commas(zSize))
	}
	for _, c := range r.compress {
		lvl := c.level.String()
		if c.isDefault {
			lvl += " (the default)"
		}
		vsS, vsT := "-", "-"
		if zSize > 0 {
			vsS = fmt.Sprintf("%.3f", float64(c.size)/float64(zSize))
			vsT = fmt.Sprintf("%.3f", c.wall.Seconds()/zWall.Seconds())
		}
		p("| %s | %dM | %dM | %s | %s | %s | %s | %s |\n", lvl, c.window>>20, c.frame>>20, secs(c.wall), secs(c.cpu), commas(c.size), vsS, vsT)
	}
	p("\n")
}

func (r *report) memoryTable(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	m := r.memory
	p("### make-bundle's memory and workers (issues 15 and 21)\n\n")
	p("`ext4pack make-bundle --no-agents` on a generated tar of %s of text (%s of tar: 1 MiB files of words, compressing as text does), one run each: a run takes a minute. GOMAXPROCS is set in the environment. ", mib(memoryTextBytes), mib(m.tarSize))
	if m.oldBin == "" {
		p("No binary from before the memory budget was given (-oldbin), so there is no baseline in this run.\n\n")
	} else {
		p("\"Before\" is %s, the binary from before the memory budget (frames of 256 MiB, as many workers as GOMAXPROCS and frames allow), run in turn with this build.\n\n", "`"+m.oldBin+"`")
	}
	p("This build runs with `--verbose`: its workers column is what it said (`-` for the binary before, which cannot say). The default budget is a quarter of the machine's memory (issue 21); GOMEMLIMIT and a cgroup's limit lower it.\n\n")
	p("| binary | GOMAXPROCS | workers | wall | CPU | peak RSS | size (B) | peak RSS vs before | size vs before | wall vs before |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	before := func(procs int) *memoryRun {
		for _, x := range m.runs {
			if strings.Contains(x.label, "before") && x.gomaxprocs == procs && x.skip == "" && x.failed == "" {
				return x
			}
		}
		return nil
	}
	for _, x := range m.runs {
		if x.skip != "" {
			p("| %s | %d | | not run: %s | | | | | | |\n", x.label, x.gomaxprocs, x.skip)
			continue
		}
		if x.failed != "" {
			p("| %s | %d | | **failed**: %s | | | | | | |\n", x.label, x.gomaxprocs, x.failed)
			continue
		}
		workers := "-"
		if x.workers > 0 {
			workers = strconv.Itoa(x.workers)
		}
		vsRSS, vsSize, vsWall := "-", "-", "-"
		if o := before(x.gomaxprocs); o != nil && o != x {
			vsRSS = fmt.Sprintf("%.3fx", float64(x.s.maxRSS)/float64(o.s.maxRSS))
			vsSize = fmt.Sprintf("%.4fx", float64(x.size)/float64(o.size))
			vsWall = fmt.Sprintf("%.3fx", x.s.wall.Seconds()/o.s.wall.Seconds())
		}
		label := x.label
		if x.cgroup != "" {
			label += " (`" + x.cgroup + "`)"
		}
		p("| %s | %d | %s | %s | %s | %s | %s | %s | %s | %s |\n", label, x.gomaxprocs, workers, secs(x.s.wall), secs(x.s.cpu), mib(x.s.maxRSS), commas(x.size), vsRSS, vsSize, vsWall)
	}
	p("\n")
	// What the workers imply where there are cores for them: frames are
	// compressed in rounds of as many as there are workers.
	var w2, w16 int
	for _, x := range m.runs {
		if x.label == "(this build)" && x.gomaxprocs == 2 {
			w2 = x.workers
		}
		if x.label == "(this build)" && x.gomaxprocs == 16 {
			w16 = x.workers
		}
	}
	if frames := (m.tarSize + memoryFrameBytes - 1) / memoryFrameBytes; w2 > 0 && w16 > 0 {
		rounds := func(w int) int64 { return (frames + int64(w) - 1) / int64(w) }
		p("On this machine the GOMAXPROCS 16 rows show the workers and the memory, not the speed: it has %d cores. The image holds about %d frames of 128 MiB: %d workers compress them in %d rounds, %d workers in %d, so on 16 real cores compressing would take about %.1fx less time than on 2.\n\n",
			runtime.NumCPU(), frames, w2, rounds(w2), w16, rounds(w16), float64(rounds(w2))/float64(rounds(w16)))
	}
	r.memoryImageTable(b)
}

// memoryImageTable is make-bundle of the 800 MB image of issue 21: the
// workers and memory at GOMAXPROCS 2 and 16 under each budget.
func (r *report) memoryImageTable(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	m := r.memory
	p("#### make-bundle of the pulls phase's image\n\n")
	if m.imageErr != "" {
		p("Not measured: %s\n\n", m.imageErr)
		return
	}
	p("`ext4pack make-bundle --image oci:LAYOUT:v1 --no-agents --verbose` of an OCI layout of the image of the pulls phase: five gzip layers, %s of tar, %s of blobs (the Debian tree and six copies of its usr, issue 21's image of 800 MB in shape). One run each, this build only.\n\n", mib(m.imageBytes), mib(m.imageGz))
	p("| settings | GOMAXPROCS | workers | frames | wall | CPU | peak RSS | size (B) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	var sums []string
	for _, x := range m.imageRuns {
		switch {
		case x.skip != "":
			p("| %s | %d | | | not run: %s | | | |\n", x.label, x.gomaxprocs, x.skip)
			continue
		case x.failed != "":
			p("| %s | %d | | | **failed**: %s | | | |\n", x.label, x.gomaxprocs, x.failed)
			continue
		}
		label := x.label
		if x.cgroup != "" {
			label += " (`" + x.cgroup + "`)"
		}
		p("| %s | %d | %d | %d | %s | %s | %s | %s |\n", label, x.gomaxprocs, x.workers, x.frames(), secs(x.s.wall), secs(x.s.cpu), mib(x.s.maxRSS), commas(x.size))
		if !slices.Contains(sums, x.sum) {
			sums = append(sums, x.sum)
		}
	}
	p("\n")
	switch len(sums) {
	case 0:
	case 1:
		p("Every run wrote the same bundle (sha256 %s...), whatever its workers.\n\n", sums[0][:12])
	default:
		p("**The runs wrote %d different bundles**: the bytes must not depend on the workers.\n\n", len(sums))
	}
	var w2, w16, frames int
	for _, x := range m.imageRuns {
		if x.label == "(this build)" && x.skip == "" && x.failed == "" {
			if x.gomaxprocs == 2 {
				w2 = x.workers
			} else {
				w16 = x.workers
			}
			frames = x.frames()
		}
	}
	if w2 > 0 && w16 > 0 && frames > 0 {
		rounds := func(w int) int { return (frames + w - 1) / w }
		p("The GOMAXPROCS 16 rows show the workers and the memory, not the speed (%d cores here). %d frames: %d workers compress them in %d rounds, %d workers in %d, so on 16 real cores the compressing, most of make-bundle's time, would take about %.1fx less time than on 2.\n\n",
			runtime.NumCPU(), frames, w2, rounds(w2), w16, rounds(w16), float64(rounds(w2))/float64(rounds(w16)))
	}
}

func firstData(rows []compressRow) int64 {
	if len(rows) == 0 {
		return 0
	}
	return rows[0].data
}

// scaleFigures are a corpus's per-entry costs.
type scaleFigures struct {
	raw, marginal time.Duration // per entry
	rssPerEntry   float64       // bytes
	rssBase       string        // the corpus rssPerEntry is measured from
}

// scaleFigures returns k's time per entry beyond the near-empty tar's, and
// its memory per entry beyond the 10k corpus's (the near-empty tar's for
// the 10k one itself): the first few thousand entries bring in fixed
// buffers (copy buffers, the data stream's queue) that are no growth.
func (r *report) scaleFigures(k *corpus) (scaleFigures, bool) {
	empty := r.corpus("empty")
	if empty == nil || k == empty || k.entries == 0 {
		return scaleFigures{}, false
	}
	base := r.corpus("10k")
	if base == nil || base == k {
		base = empty
	}
	n := time.Duration(k.entries)
	return scaleFigures{
		raw:         k.samples.wall() / n,
		marginal:    (k.samples.wall() - empty.samples.wall()) / n,
		rssPerEntry: float64(k.samples.peakRSS()-base.samples.peakRSS()) / float64(k.entries-base.entries),
		rssBase:     base.name,
	}, true
}

func (r *report) scaleTable(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("### Scale: `ext4pack image` on generated tars\n\n")
	p("Generated afresh in the tmpfs each run (fixed seed): names like a distribution's under usr/, etc/, var/, opt/; 1 to 63 entries a directory; a quarter of the files empty, the rest 1 to 700 bytes; 5%% symlinks, 1%% hard links. Per entry = (median wall - the near-empty tar's) / entries; Raw = median wall / entries. RSS per entry = the growth of peak RSS from the 10k corpus (from the near-empty tar for the 10k one) over the growth in entries: the first thousands of entries bring in fixed buffers that are no growth.\n\n")
	p("| corpus | entries | tar | wall (median) | CPU | per entry | raw per entry | peak RSS | RSS per entry (from) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, k := range r.scale {
		f, ok := r.scaleFigures(k)
		per, raw, rss := "-", "-", "-"
		if ok {
			per = fmt.Sprintf("%.2f µs", float64(f.marginal.Nanoseconds())/1e3)
			raw = fmt.Sprintf("%.2f µs", float64(f.raw.Nanoseconds())/1e3)
			rss = fmt.Sprintf("%.0f B (%s)", f.rssPerEntry, f.rssBase)
		}
		p("| %s: %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", k.name, k.desc, commas(int64(k.entries)), mib(k.size),
			secs(k.samples.wall()), secs(k.samples.cpu()), per, raw, mib(k.samples.peakRSS()), rss)
	}
	p("\n")
}

// targetsTable says, target by target, what this run measured.
func (r *report) targetsTable(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	p("### Targets\n\n")
	renderTargets(p, "target", r.targets())
	p("\n")
}

// updateReport replaces the generated part of path, between the markers,
// and keeps the rest; a file without the markers gets the default text.
func updateReport(path, generated string) error {
	old, err := os.ReadFile(path)
	if err != nil && !os.IsNotExist(err) {
		return err
	}
	text := string(old)
	i := strings.Index(text, beginMarker)
	j := strings.Index(text, endMarker)
	var out string
	if i < 0 || j < i {
		out = defaultReportHead + generated
	} else {
		out = text[:i] + generated + strings.TrimPrefix(text[j+len(endMarker):], "\n")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(out), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

const defaultReportHead = `# ext4pack benchmarks

How to run: ` + "`make bench`" + ` (BENCH_TAR=path to use another rootfs tar). See bench/main.go.

`
