//go:build linux

package main

import (
	"strings"
	"testing"
	"time"
)

// ser is a series of one sample: wall seconds and peak RSS in MiB.
func ser(wall float64, rssMiB int64) series {
	return series{{wall: time.Duration(wall * float64(time.Second)), cpu: time.Second, maxRSS: rssMiB << 20}}
}

func pl(name string, wall float64) *pipeline { return &pipeline{name: name, samples: ser(wall, 30)} }
func plSkip(name, why string) *pipeline      { return &pipeline{name: name, skip: why} }

func img(name string, wall float64) *imageRow { return &imageRow{name: name, samples: ser(wall, 50)} }
func imgSkip(name, why string) *imageRow      { return &imageRow{name: name, skip: why} }

// allPipelines is a run where every pipeline ran and met its target.
func allPipelines() []*pipeline {
	return []*pipeline{pl(pFloor, 0.1), pl(pExt4pack, 0.15), pl(pOldWay, 2), pl(pMke2fs, 0.6), pl(pTar2ext4, 0.5)}
}

// allImages is a run where every images row ran and met its target.
func allImages() *imagesResult {
	return &imagesResult{rows: []*imageRow{
		img(iFlatPlain, 0.2), img(iOCIPlain, 0.25), img(iFlatGzip, 0.8), img(iOCIGzip, 0.9),
		img(iUmoci, 5), img(iUmociGz, 10), img(iPull, 0.3), img(iDownload, 0.4), img(iBuild, 0.8), img(iPullBuild, 0.9),
	}}
}

func memRuns(cg *memoryRun) *memoryResult {
	const sum = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	m := &memoryResult{runs: []*memoryRun{
		{label: "(this build) GOMEMLIMIT=512MiB", gomaxprocs: 2, s: sample{maxRSS: 380 << 20}, workers: 2, sum: sum},
		{label: "(this build) GOMEMLIMIT=512MiB", gomaxprocs: 16, s: sample{maxRSS: 380 << 20}, workers: 2, sum: sum},
		{label: "(this build)", gomaxprocs: 2, s: sample{maxRSS: 380 << 20}, workers: 2, sum: sum},
		{label: "(this build)", gomaxprocs: 16, s: sample{maxRSS: 1900 << 20}, workers: 9, sum: sum},
		{label: "(this build) in a 512 MiB cgroup", gomaxprocs: 2, s: sample{maxRSS: 360 << 20}, workers: 2, sum: sum},
		{label: "(this build) in a 512 MiB cgroup", gomaxprocs: 16, s: sample{maxRSS: 360 << 20}, workers: 2, sum: sum},
	}}
	if cg != nil {
		m.runs = append(m.runs, cg)
	}
	return m
}

func corpora(names ...string) []*corpus {
	entries := map[string]int{"empty": 2, "10k": 10_000, "100k": 100_000, "1m": 1_000_000, "dir100k": 100_000}
	var out []*corpus
	for _, n := range append([]string{"empty"}, names...) {
		e := entries[n]
		// 5 µs an entry over 0.01 s, 250 B an entry over 20 MiB.
		out = append(out, &corpus{name: n, entries: e, samples: series{{
			wall:   10*time.Millisecond + time.Duration(e)*5*time.Microsecond,
			maxRSS: 20<<20 + int64(e)*250,
		}}})
	}
	return out
}

// fullReport is a run in which every target was measured and met.
func fullReport() *report {
	return &report{
		rounds:    1,
		pipelines: allPipelines(),
		images:    allImages(),
		bundle:    &bundleResult{bundle: ser(8, 300), zstd: ser(42, 100), bundleSize: 100, zstdSize: 100},
		memory:    memRuns(&memoryRun{label: "(this build) in a 256 MiB cgroup", gomaxprocs: 16, inCgroup: true, cgroup: "/sys/fs/cgroup/x", s: sample{maxRSS: 180 << 20}}),
		inflate:   inflateRuns(),
		scale:     corpora("10k", "100k", "1m", "dir100k"),
	}
}

// inflateRuns is an inflate phase whose targets are all met: both
// binaries stamped alike, the same images, half the time.
func inflateRuns() *inflateResult {
	const before = "(before issue 21: -prevbin)"
	run := func(input, label string, wall float64) *gzipRun {
		return &gzipRun{input: input, label: label, samples: ser(wall, 80), sum: "aaaa"}
	}
	return &inflateResult{
		rows:    []*inflateRow{{procs: 1, mbps: map[string][]float64{"inflate": {560}, "klauspost": {315}}}},
		prevBin: "/old", thisVer: "ext4pack v1", prevVer: "ext4pack v1",
		runs: []*gzipRun{
			run(gzFlat, "(this build)", 0.5), run(gzFlat, before, 0.8),
			run(gzLayout, "(this build)", 2), run(gzLayout, before, 4),
		},
	}
}

// verdictOf finds the row whose target starts with prefix.
func verdictOf(t *testing.T, rows []targetRow, prefix string) targetRow {
	t.Helper()
	for _, r := range rows {
		if strings.HasPrefix(r.target, prefix) {
			return r
		}
	}
	t.Fatalf("no target starting %q in %v", prefix, rows)
	return targetRow{}
}

func TestTargetVerdicts(t *testing.T) {
	const (
		tOld        = "`ext4pack image` at most 0.2x the old way"
		tTar2ext4   = "faster than tar2ext4"
		tMke2fs     = "at most 0.5x mke2fs"
		tFloor      = "aim: 2x the floor"
		tRSS        = "peak RSS at most 64 MiB (Debian tar)"
		tFlat       = "time per entry flat"
		tMem        = "memory grows at most 300 B"
		tGzLayout   = "five gzip layers, `--image oci:`: at most 0.65x"
		tGzFlat     = "the gzipped flat Debian tar at most 0.65x"
		tThroughput = "inflate at least 1.4x klauspost"
		tBRSS2      = "make-bundle's peak RSS at most 512 MiB on 1 GiB of text with GOMEMLIMIT=512MiB, GOMAXPROCS 2"
		tBRSS16     = "make-bundle's peak RSS at most 512 MiB on 1 GiB of text with GOMEMLIMIT=512MiB, GOMAXPROCS 16"
		tCg512      = "make-bundle of 1 GiB of text completes in a 512 MiB cgroup, GOMAXPROCS 16"
		tWorkers    = "more workers at GOMAXPROCS 16 with the default budget"
		tCgroup     = "make-bundle of 1 GiB of text completes in a 256 MiB cgroup"
		tSize       = "bundle within 5%"
		tTime       = "bundle in under a fifth"
		tLayers     = "`--image oci:` at most 1.3x"
		tIRSS       = "peak RSS of `--image oci:`"
		tUmoci      = "at least 10x faster than umoci"
		tOverlap    = "a pull overlaps"
	)
	setRow := func(r *report, name string, row *imageRow) {
		for i, x := range r.images.rows {
			if x.name == name {
				r.images.rows[i] = row
			}
		}
	}
	setPipe := func(r *report, p *pipeline) {
		for i, x := range r.pipelines {
			if x.name == p.name {
				r.pipelines[i] = p
			}
		}
	}
	cases := []struct {
		name   string
		change func(r *report)
		target string
		want   verdict
		says   string // in the measured column
	}{
		{"old way met", nil, tOld, met, "0.075x"},
		{"old way not met", func(r *report) { setPipe(r, pl(pExt4pack, 0.5)) }, tOld, notMet, "0.250x"},
		{"old way did not run", func(r *report) { setPipe(r, plSkip(pOldWay, "e2fsprogs is not installed")) }, tOld, notMeasured, "e2fsprogs is not installed"},

		// No verdict from the yardstick's constants: a missing baseline
		// is not measured, though the old way ran.
		{"tar2ext4 met", nil, tTar2ext4, met, "0.300x"},
		{"tar2ext4 equal is not faster", func(r *report) { setPipe(r, pl(pTar2ext4, 0.15)) }, tTar2ext4, notMet, "1.000x"},
		{"tar2ext4 did not run", func(r *report) { setPipe(r, plSkip(pTar2ext4, "tar2ext4 is not installed")) }, tTar2ext4, notMeasured, "tar2ext4 is not installed"},
		{"mke2fs met", nil, tMke2fs, met, "0.250x"},
		{"mke2fs did not run", func(r *report) { setPipe(r, plSkip(pMke2fs, "e2fsprogs here is 1.47.0")) }, tMke2fs, notMeasured, "1.47.0"},
		{"mke2fs not met", func(r *report) { setPipe(r, pl(pMke2fs, 0.2)) }, tMke2fs, notMet, "0.750x"},
		{"floor met", nil, tFloor, met, "1.500x"},
		{"pipelines phase skipped", func(r *report) { r.pipelines = nil }, tTar2ext4, notMeasured, "-skip pipelines"},
		{"pipelines phase skipped: RSS", func(r *report) { r.pipelines = nil }, tRSS, notMeasured, "-skip pipelines"},
		{"Debian RSS not met", func(r *report) { setPipe(r, &pipeline{name: pExt4pack, samples: ser(0.15, 65)}) }, tRSS, notMet, "65.0 MiB"},

		{"flat met", nil, tFlat, met, "1m"},
		{"flat needs 1m", func(r *report) { r.scale = corpora("10k", "100k") }, tFlat, notMeasured, "10k and 1m"},
		{"flat not met", func(r *report) { r.scale[1].samples[0].wall *= 3 }, tFlat, notMet, "x"},
		{"memory per entry met", nil, tMem, met, "250 B (from 10k)"},
		{"memory per entry from 10k alone is not measured", func(r *report) { r.scale = corpora("10k") }, tMem, notMeasured, "no corpus above 10k"},
		{"memory per entry not met", func(r *report) { r.scale[3].samples[0].maxRSS += 400 << 20 }, tMem, notMet, "1m"},
		{"scale phase skipped", func(r *report) { r.scale, r.scaleSkip = nil, phaseSkipped("scale") }, tMem, notMeasured, "-skip scale"},

		{"bundle RSS met", nil, tBRSS2, met, "380.0 MiB"},
		{"bundle RSS failed", func(r *report) { r.memory.runs[1].failed = "signal: killed" }, tBRSS16, notMet, "signal: killed"},
		{"cgroup met", nil, tCgroup, met, "180.0 MiB"},
		{"512 MiB cgroup met", nil, tCg512, met, "360.0 MiB"},
		{"512 MiB cgroup killed", func(r *report) { r.memory.runs[5].failed = "signal: killed" }, tCg512, notMet, "signal: killed"},
		{"workers follow the machine", nil, tWorkers, met, "9 workers against 2"},
		{"workers: bundles differ", func(r *report) { r.memory.runs[3].sum = "f" + r.memory.runs[3].sum[1:] }, tWorkers, notMet, "differ"},
		{"workers: as many", func(r *report) { r.memory.runs[3].workers = 2 }, tWorkers, notMet, "2 workers against 2"},
		{"workers not said", func(r *report) { r.memory.runs[1].workers = 0 }, tWorkers, notMeasured, "--verbose"},
		// A make-bundle that dies in the cgroup is not met, never skipped.
		{"cgroup run died", func(r *report) {
			r.memory = memRuns(&memoryRun{label: "in a cgroup", gomaxprocs: 16, inCgroup: true, cgroup: "/x", failed: "signal: killed"})
		}, tCgroup, notMet, "signal: killed"},
		{"no cgroup could be made", func(r *report) {
			r.memory = memRuns(&memoryRun{label: "in a cgroup", gomaxprocs: 16, inCgroup: true, skip: "no cgroup memory controller"})
		}, tCgroup, notMeasured, "no cgroup memory controller"},
		{"memory phase skipped", func(r *report) { r.memory = nil }, tCgroup, notMeasured, "-skip memory"},

		{"bundle size met", nil, tSize, met, "1.000x"},
		{"bundle time met", nil, tTime, met, "0.190x"},
		{"bundle without zstd", func(r *report) { r.bundle = &bundleResult{bundle: ser(8, 300), skipZstd: "zstd is not installed"} }, tTime, notMeasured, "zstd is not installed"},

		{"layers met", nil, tLayers, met, "gzip layers"},
		{"layers: gzip fails", func(r *report) { setRow(r, iOCIGzip, img(iOCIGzip, 1.2)) }, tLayers, notMet, "1.50x"},
		{"layers: plain fails", func(r *report) { setRow(r, iOCIPlain, img(iOCIPlain, 0.3)) }, tLayers, notMet, "1.50x"},
		{"image RSS: gzip over", func(r *report) { setRow(r, iOCIGzip, &imageRow{name: iOCIGzip, samples: ser(0.9, 70)}) }, tIRSS, notMet, "70.0 MiB"},
		{"image RSS: gzip missing", func(r *report) { setRow(r, iOCIGzip, imgSkip(iOCIGzip, "no gzip")) }, tIRSS, notMeasured, "no gzip"},
		// Every row with two cases judges both: 15x on plain layers and
		// 4.8x on gzip layers is not met.
		{"umoci met", nil, tUmoci, met, "20.00x"},
		{"umoci: gzip at 4.8x", func(r *report) { setRow(r, iUmociGz, img(iUmociGz, 4.32)) }, tUmoci, notMet, "4.80x"},
		{"umoci: not installed", func(r *report) {
			setRow(r, iUmoci, imgSkip(iUmoci, "umoci is not installed"))
			setRow(r, iUmociGz, imgSkip(iUmociGz, "umoci is not installed"))
		}, tUmoci, notMeasured, "umoci is not installed"},
		{"umoci: gzip missing, plain met", func(r *report) { setRow(r, iUmociGz, imgSkip(iUmociGz, "gone")) }, tUmoci, notMeasured, "gone"},

		{"overlap met", nil, tOverlap, met, "75% of the shorter hidden"},
		// Judged against ext4pack's own download, not skopeo's: with
		// skopeo's 0.3 s the sum would be 1.1 s and 1.05 s together would
		// hide a sixth of it; ext4pack's own download of 0.2 s makes the
		// sum 1.0 s, and nothing overlapped.
		{"overlap against ext4pack's download", func(r *report) {
			setRow(r, iDownload, img(iDownload, 0.2))
			setRow(r, iPull, img(iPull, 0.3))
			setRow(r, iPullBuild, img(iPullBuild, 1.05))
		}, tOverlap, notMet, "download alone 0.200 s"},
		{"overlap within the noise", func(r *report) { setRow(r, iPullBuild, img(iPullBuild, 1.19)) }, tOverlap, notMet, "2% of the shorter"},
		{"overlap without ext4pack's download", func(r *report) { setRow(r, iDownload, imgSkip(iDownload, "no registry")) }, tOverlap, notMeasured, "no registry"},
		{"images phase skipped", func(r *report) { r.images = nil }, tUmoci, notMeasured, "-skip images"},

		{"inflate layout met", nil, tGzLayout, met, "0.500x (2.00 s vs 4.00 s), the same image"},
		{"inflate flat met", nil, tGzFlat, met, "0.625x"},
		{"inflate: images differ", func(r *report) { r.inflate.runs[2].sum = "bbbb" }, tGzLayout, notMet, "the images differ"},
		// The version salts the UUID and hash seed: binaries stamped
		// differently cannot write the same image, and are judged on time
		// alone, saying so.
		{"inflate: stamps differ", func(r *report) {
			r.inflate.prevVer = "ext4pack v0"
			r.inflate.runs[2].sum = "bbbb"
		}, tGzLayout, met, "not compared (version stamps differ)"},
		{"inflate: too slow", func(r *report) { r.inflate.runs[0].samples = ser(0.6, 80) }, tGzFlat, notMet, "0.750x"},
		{"inflate: no baseline", func(r *report) { r.inflate.runs = r.inflate.runs[2:3] }, tGzLayout, notMeasured, "-prevbin"},
		{"inflate throughput met", nil, tThroughput, met, "1.78x"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := fullReport()
			if c.change != nil {
				c.change(r)
			}
			rows := append(r.targets(), r.imagesTargets()...)
			got := verdictOf(t, rows, c.target)
			if got.verdict != c.want || !strings.Contains(got.measured, c.says) {
				t.Errorf("%s: %q, %s; want %s, saying %q", got.target, got.measured, got.verdict, c.want, c.says)
			}
		})
	}
}

// TestAllCombine checks the rule every two-case row follows.
func TestAllCombine(t *testing.T) {
	for _, c := range []struct {
		in   []verdict
		want verdict
	}{
		{[]verdict{met, met}, met},
		{[]verdict{met, notMet}, notMet},
		{[]verdict{notMeasured, notMet}, notMet},
		{[]verdict{met, notMeasured}, notMeasured},
		{[]verdict{notMeasured, notMeasured}, notMeasured},
	} {
		if got := all(c.in...); got != c.want {
			t.Errorf("all(%v) = %s, want %s", c.in, got, c.want)
		}
	}
}

// TestReportClaimsOnlyWhatRan renders a run in which nothing but ext4pack
// ran: every target reads "not measured", none "met", and nothing is
// called indirect.
func TestReportClaimsOnlyWhatRan(t *testing.T) {
	r := &report{
		rounds:    1,
		pipelines: []*pipeline{plSkip(pFloor, "x"), pl(pExt4pack, 0.15), plSkip(pOldWay, "x"), plSkip(pMke2fs, "x"), plSkip(pTar2ext4, "x")},
		scaleSkip: phaseSkipped("scale"),
	}
	md := r.markdown()
	if strings.Contains(md, "indirect") {
		t.Errorf("the report calls something indirect:\n%s", md)
	}
	for _, line := range strings.Split(md, "\n") {
		if strings.HasSuffix(line, "| met |") && !strings.Contains(line, "peak RSS at most 64 MiB (Debian tar)") {
			t.Errorf("a target met that nothing measured: %s", line)
		}
	}
	rows := append(append(r.targets(), r.imagesTargets()...), r.pullsTargets()...)
	for _, row := range rows {
		if row.target == "peak RSS at most 64 MiB (Debian tar)" {
			continue
		}
		if row.verdict != notMeasured {
			t.Errorf("%s: %s (%s), want not measured", row.target, row.verdict, row.measured)
		}
	}
}
