//go:build linux

package main

import (
	"fmt"
	"strings"
	"time"
)

// verdict is what a run says of a target. The zero value is notMeasured:
// a target is met only when the run measured it, every case of it.
type verdict int

const (
	notMeasured verdict = iota // a tool, a phase or a case did not run
	met
	notMet
)

func (v verdict) String() string {
	switch v {
	case met:
		return "met"
	case notMet:
		return "**not met**"
	}
	return "not measured"
}

// judge is met when ok, else notMet: for a figure the run measured.
func judge(ok bool) verdict {
	if ok {
		return met
	}
	return notMet
}

// all combines the verdicts of a target's cases (plain and gzip layers,
// GOMAXPROCS 2 and 16): not met as soon as one measured case fails, met
// only when every case was measured and met.
func all(vs ...verdict) verdict {
	v := met
	for _, x := range vs {
		switch x {
		case notMet:
			return notMet
		case notMeasured:
			v = notMeasured
		}
	}
	return v
}

// targetRow is one line of a targets table.
type targetRow struct {
	target   string // the target as its issue states it
	measured string // what the run measured for it, or why it did not
	verdict  verdict
}

// renderTargets writes rows as a markdown table under head's column names.
func renderTargets(p func(string, ...any), head string, rows []targetRow) {
	p("| %s | measured in this run | |\n|---|---|---|\n", head)
	for _, t := range rows {
		p("| %s | %s | %s |\n", t.target, t.measured, t.verdict)
	}
}

// phaseSkipped is the reason a phase's targets were not measured when the
// run left the phase out.
func phaseSkipped(phase string) string {
	return fmt.Sprintf("not measured: the %s phase did not run (-skip %s)", phase, phase)
}

// why says why pl has no figure, or "" when it has one.
func why(pl *pipeline, name string) string {
	switch {
	case pl == nil:
		return name + " did not run"
	case pl.skip != "":
		return name + ": " + pl.skip
	case len(pl.samples) == 0:
		return name + " has no samples"
	}
	return ""
}

// ratioTarget judges a/b <= limit (< limit when strict) for two
// pipelines, or says which did not run.
func ratioTarget(target string, a, b *pipeline, aName, bName string, limit float64, strict bool) targetRow {
	reasons := nonEmpty(why(a, aName), why(b, bName))
	if len(reasons) > 0 {
		return targetRow{target, "not measured: " + strings.Join(reasons, "; "), notMeasured}
	}
	x := a.samples.wall().Seconds() / b.samples.wall().Seconds()
	ok := x <= limit
	if strict {
		ok = x < limit
	}
	return targetRow{target, fmt.Sprintf("%.3fx (%s vs %s)", x, secs(a.samples.wall()), secs(b.samples.wall())), judge(ok)}
}

func nonEmpty(ss ...string) []string {
	var out []string
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

// targets are the targets of issues 8, 6 and 15, one row each, measured
// or not: no verdict comes from a figure measured elsewhere.
func (r *report) targets() []targetRow {
	var rows []targetRow
	e4p, old, floor := r.pipeline(pExt4pack), r.pipeline(pOldWay), r.pipeline(pFloor)
	if r.pipelines == nil {
		for _, t := range []string{
			fmt.Sprintf("`ext4pack image` at most %.1fx the old way", targetVsOldWay),
			"faster than tar2ext4",
			fmt.Sprintf("at most %.1fx mke2fs -d TARBALL", targetVsMke2fs),
			"aim: 2x the floor",
			"peak RSS at most 64 MiB (Debian tar)",
		} {
			rows = append(rows, targetRow{t, phaseSkipped("pipelines"), notMeasured})
		}
	} else {
		rows = append(rows,
			ratioTarget(fmt.Sprintf("`ext4pack image` at most %.1fx the old way", targetVsOldWay), e4p, old, "ext4pack", "the old way", targetVsOldWay, false),
			ratioTarget("faster than tar2ext4", e4p, r.pipeline(pTar2ext4), "ext4pack", "tar2ext4", targetTar2ext4Max, true),
			ratioTarget(fmt.Sprintf("at most %.1fx mke2fs -d TARBALL", targetVsMke2fs), e4p, r.pipeline(pMke2fs), "ext4pack", "mke2fs -d TARBALL", targetVsMke2fs, false),
			ratioTarget("aim: 2x the floor", e4p, floor, "ext4pack", "the floor", targetVsFloor, false))
		if w := why(e4p, "ext4pack"); w != "" {
			rows = append(rows, targetRow{"peak RSS at most 64 MiB (Debian tar)", "not measured: " + w, notMeasured})
		} else {
			rss := e4p.samples.peakRSS()
			rows = append(rows, targetRow{"peak RSS at most 64 MiB (Debian tar)", mib(rss), judge(rss <= targetPeakRSS)})
		}
	}
	rows = append(rows, r.scaleTargets()...)
	rows = append(rows, r.memoryTargets()...)
	rows = append(rows, r.bundleTargets()...)
	rows = append(rows, r.inflateTargets()...)
	return rows
}

// scaleTargets judges the time and memory an entry costs. The time is
// flat from 10k to 1M only if both ran; the memory is judged from the
// corpora above 10k, whose growth is measured from the 10k one.
func (r *report) scaleTargets() []targetRow {
	const (
		tFlat = "time per entry flat from 10k to 1M, within 1.5x"
		tMem  = "memory grows at most 300 B an entry (judged from the 10k corpus up)"
	)
	if len(r.scale) == 0 {
		why := r.scaleSkip
		if why == "" {
			why = "not measured: no corpus ran (-scale)"
		}
		return []targetRow{{tFlat, why, notMeasured}, {tMem, why, notMeasured}}
	}
	var rows []targetRow
	var flat []string
	var lo, hi time.Duration
	for _, name := range []string{"10k", "100k", "1m"} {
		k := r.corpus(name)
		if k == nil {
			continue
		}
		f, ok := r.scaleFigures(k)
		if !ok {
			continue
		}
		flat = append(flat, fmt.Sprintf("%s %.2f µs", name, float64(f.marginal.Nanoseconds())/1e3))
		if lo == 0 || f.marginal < lo {
			lo = f.marginal
		}
		hi = max(hi, f.marginal)
	}
	_, ok10k := r.scaleFiguresOf("10k")
	_, ok1m := r.scaleFiguresOf("1m")
	switch {
	case !ok10k || !ok1m || lo <= 0:
		m := "not measured: the 10k and 1m corpora must both run (-scale 10k,1m)"
		if len(flat) > 0 {
			m += "; this run: " + strings.Join(flat, ", ")
		}
		rows = append(rows, targetRow{tFlat, m, notMeasured})
	default:
		x := float64(hi) / float64(lo)
		rows = append(rows, targetRow{tFlat, fmt.Sprintf("%s: %.2fx", strings.Join(flat, ", "), x), judge(x <= targetFlat)})
	}

	var mem []string
	var vs []verdict
	for _, name := range []string{"10k", "100k", "1m", "dir100k"} {
		f, ok := r.scaleFiguresOf(name)
		if !ok {
			continue
		}
		mem = append(mem, fmt.Sprintf("%s %.0f B (from %s)", name, f.rssPerEntry, f.rssBase))
		if f.rssBase != "empty" { // from empty, the fixed buffers dominate
			vs = append(vs, judge(f.rssPerEntry <= targetBytesEntry))
		}
	}
	switch {
	case len(vs) == 0:
		m := "not measured: no corpus above 10k ran with the 10k one (-scale 10k,100k)"
		if len(mem) > 0 {
			m += "; this run: " + strings.Join(mem, ", ")
		}
		rows = append(rows, targetRow{tMem, m, notMeasured})
	default:
		rows = append(rows, targetRow{tMem, strings.Join(mem, ", "), all(vs...)})
	}
	return rows
}

func (r *report) scaleFiguresOf(name string) (scaleFigures, bool) {
	k := r.corpus(name)
	if k == nil || len(k.samples) == 0 {
		return scaleFigures{}, false
	}
	return r.scaleFigures(k)
}

// memoryTargets judges make-bundle's memory (issues 15 and 21): its peak
// within GOMEMLIMIT=512MiB at GOMAXPROCS 2 and 16, its completing in
// cgroups of 512 and 256 MiB, and its workers following the machine: more
// at GOMAXPROCS 16 with the default budget than with GOMEMLIMIT=512MiB,
// and the same bundle. A make-bundle that fails (the kernel's OOM killer,
// or make-bundle refusing the budget) does not meet its target.
func (r *report) memoryTargets() []targetRow {
	tRSS := func(procs int) string {
		return fmt.Sprintf("make-bundle's peak RSS at most 512 MiB on 1 GiB of text with GOMEMLIMIT=512MiB, GOMAXPROCS %d", procs)
	}
	tCg512 := func(procs int) string {
		return fmt.Sprintf("make-bundle of 1 GiB of text completes in a 512 MiB cgroup, GOMAXPROCS %d", procs)
	}
	const (
		tCgroup  = "make-bundle of 1 GiB of text completes in a 256 MiB cgroup"
		tWorkers = "more workers at GOMAXPROCS 16 with the default budget than with GOMEMLIMIT=512MiB, and the same bundle"
	)
	m := r.memory
	if m == nil {
		var rows []targetRow
		for _, t := range []string{tRSS(2), tRSS(16), tCg512(2), tCg512(16), tCgroup, tWorkers} {
			rows = append(rows, targetRow{t, phaseSkipped("memory"), notMeasured})
		}
		return rows
	}
	find := func(procs int, label string) *memoryRun {
		for _, x := range m.runs {
			if x.gomaxprocs == procs && x.label == label {
				return x
			}
		}
		return nil
	}
	judged := func(target string, x *memoryRun, ok func(*memoryRun) (string, bool)) targetRow {
		switch {
		case x == nil:
			return targetRow{target, "not measured: no such run", notMeasured}
		case x.skip != "":
			return targetRow{target, "not measured: " + x.skip, notMeasured}
		case x.failed != "":
			return targetRow{target, "make-bundle failed: " + x.failed, notMet}
		}
		m, good := ok(x)
		return targetRow{target, m, judge(good)}
	}
	peak := func(limit int64) func(*memoryRun) (string, bool) {
		return func(x *memoryRun) (string, bool) {
			w := "workers"
			if x.workers == 1 {
				w = "worker"
			}
			return fmt.Sprintf("%s peak RSS, %d %s", mib(x.s.maxRSS), x.workers, w), x.s.maxRSS <= limit
		}
	}
	var rows []targetRow
	for _, procs := range []int{2, 16} {
		rows = append(rows, judged(tRSS(procs), find(procs, "(this build) GOMEMLIMIT=512MiB"), peak(targetBundleRSS)))
	}
	for _, procs := range []int{2, 16} {
		rows = append(rows, judged(tCg512(procs), find(procs, "(this build) in a 512 MiB cgroup"), peak(memoryCgroup512)))
	}
	var cg256 *memoryRun
	for _, x := range m.runs {
		if x.inCgroup {
			cg256 = x
		}
	}
	rows = append(rows, judged(tCgroup, cg256, peak(memoryCgroupMax)))
	big, small := find(16, "(this build)"), find(16, "(this build) GOMEMLIMIT=512MiB")
	switch {
	case big == nil || small == nil || big.failed != "" || small.failed != "":
		rows = append(rows, targetRow{tWorkers, "not measured: a run is missing or failed", notMeasured})
	case big.workers == 0 || small.workers == 0:
		rows = append(rows, targetRow{tWorkers, "not measured: make-bundle --verbose did not say its workers", notMeasured})
	default:
		rows = append(rows, targetRow{tWorkers, fmt.Sprintf("%d workers against %d; bundles %s", big.workers, small.workers, sameOrNot(big.sum, small.sum)),
			judge(big.workers > small.workers && big.sum == small.sum)})
	}
	return rows
}

func sameOrNot(a, b string) string {
	if a == b {
		return "identical (sha256 " + a[:12] + "...)"
	}
	return "**differ** (" + a[:12] + " vs " + b[:12] + ")"
}

// bundleTargets judges the bundle against zstd -19 -T2 (issue 6).
func (r *report) bundleTargets() []targetRow {
	const (
		tSize = "bundle within 5% of zstd -19 -T2's size"
		tTime = "bundle in under a fifth of zstd -19 -T2's time"
	)
	br := r.bundle
	var reason string
	switch {
	case br == nil:
		reason = phaseSkipped("bundle")
	case br.skipZstd != "":
		reason = "not measured: " + br.skipZstd
	case len(br.zstd) == 0 || len(br.bundle) == 0:
		reason = "not measured: no samples"
	}
	if reason != "" {
		return []targetRow{{tSize, reason, notMeasured}, {tTime, reason, notMeasured}}
	}
	s := float64(br.bundleSize) / float64(br.zstdSize)
	t := br.bundle.wall().Seconds() / br.zstd.wall().Seconds()
	return []targetRow{
		{tSize, fmt.Sprintf("%.3fx (%s B vs %s B)", s, commas(br.bundleSize), commas(br.zstdSize)), judge(s <= targetBundleSize)},
		{tTime, fmt.Sprintf("%.3fx (%s vs %s)", t, secs(br.bundle.wall()), secs(br.zstd.wall())), judge(t < targetBundleTime)},
	}
}

// imagesTargets are the targets of issue 13. Each row with plain and gzip
// layers judges both; the overlap of a pull is judged against ext4pack's
// own download of the same image, measured in the same run.
func (r *report) imagesTargets() []targetRow {
	const (
		tLayers  = "`--image oci:` at most 1.3x `--rootfs-tar` on the flat tar, plain and gzip"
		tRSS     = "peak RSS of `--image oci:` at most 64 MiB, plain and gzip"
		tUmoci   = "at least 10x faster than umoci unpack --rootless + mkfs.ext4 -d on the same layout, plain and gzip"
		tOverlap = "a pull overlaps downloading and building: pull and build together take less than ext4pack's download alone + the build alone, by at least a tenth of the shorter"
	)
	ir := r.images
	if ir == nil {
		s := phaseSkipped("images")
		return []targetRow{{tLayers, s, notMeasured}, {tRSS, s, notMeasured}, {tUmoci, s, notMeasured}, {tOverlap, s, notMeasured}}
	}
	// ratio judges a/b against limit (at most, or at least when atLeast).
	type part struct {
		text string
		v    verdict
	}
	ratio := func(label, a, b string, limit float64, atLeast bool) part {
		ra, rb := ir.measured(a), ir.measured(b)
		if ra == nil || rb == nil {
			return part{label + ": not measured (" + strings.Join(nonEmpty(ir.why(a), ir.why(b)), "; ") + ")", notMeasured}
		}
		x := ra.samples.wall().Seconds() / rb.samples.wall().Seconds()
		ok := x <= limit
		if atLeast {
			ok = x >= limit
		}
		return part{fmt.Sprintf("%s: %.2fx (%s vs %s)", label, x, secs(ra.samples.wall()), secs(rb.samples.wall())), judge(ok)}
	}
	row := func(target string, parts ...part) targetRow {
		var texts []string
		var vs []verdict
		for _, p := range parts {
			texts = append(texts, p.text)
			vs = append(vs, p.v)
		}
		return targetRow{target, strings.Join(texts, "; "), all(vs...)}
	}
	rss := func(label, name string) part {
		x := ir.measured(name)
		if x == nil {
			return part{label + ": not measured (" + ir.why(name) + ")", notMeasured}
		}
		return part{label + ": " + mib(x.samples.peakRSS()), judge(x.samples.peakRSS() <= targetPeakRSS)}
	}
	rows := []targetRow{
		row(tLayers, ratio("plain layers", iOCIPlain, iFlatPlain, targetLayer, false), ratio("gzip layers against the gzipped flat tar", iOCIGzip, iFlatGzip, targetLayer, false)),
		row(tRSS, rss("plain layers", iOCIPlain), rss("gzip layers", iOCIGzip)),
		row(tUmoci, ratio("plain layers", iUmoci, iOCIPlain, 10, true), ratio("gzip layers", iUmociGz, iOCIGzip, 10, true)),
	}
	pb, dl, build := ir.measured(iPullBuild), ir.measured(iDownload), ir.measured(iBuild)
	if pb == nil || dl == nil || build == nil {
		rows = append(rows, targetRow{tOverlap, "not measured: " + strings.Join(nonEmpty(ir.why(iPullBuild), ir.why(iDownload), ir.why(iBuild)), "; "), notMeasured})
	} else {
		d, b, t := dl.samples.wall(), build.samples.wall(), pb.samples.wall()
		hidden := d + b - t
		ok := hidden >= min(d, b)/10
		rows = append(rows, targetRow{tOverlap, fmt.Sprintf("together %s; download alone %s + build alone %s = %s: %s of the shorter hidden",
			secs(t), secs(d), secs(b), secs(d+b), fmt.Sprintf("%.0f%%", 100*hidden.Seconds()/min(d, b).Seconds())), judge(ok)})
	}
	return rows
}

// measured is the row called name when it has samples, else nil.
func (ir *imagesResult) measured(name string) *imageRow { return measuredRow(ir.row(name)) }

// why says why the row called name has no figure.
func (ir *imagesResult) why(name string) string { return whyNoFigure(name, ir.row(name)) }

// measuredRow is x when it has samples, else nil.
func measuredRow(x *imageRow) *imageRow {
	if x == nil || x.skip != "" || len(x.samples) == 0 {
		return nil
	}
	return x
}

// whyNoFigure says why x, the row called name, has no figure, or "".
func whyNoFigure(name string, x *imageRow) string {
	switch {
	case x == nil:
		return name + " did not run"
	case x.skip != "":
		return name + ": " + x.skip
	case len(x.samples) == 0:
		return name + " has no samples"
	}
	return ""
}
