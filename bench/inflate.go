//go:build linux

package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// The inflate phase (issue 21): inflate's BenchmarkGunzip on the Debian
// tar through gzip -6 (MB/s of output: inflate, klauspost/compress's
// gzip, compress/gzip) at GOMAXPROCS 1, 2 and 16, the three taking turns
// within each process and the processes round after round; then `image`
// of the gzipped flat tar and of a layout of five gzip layers (the Debian
// tar five times, over 800 MB) against -prevbin, the binary from before
// issue 21, taking turns. The image must be the same; the times are
// ratios within the run.

// inflateRow is one GOMAXPROCS's throughputs, MB/s per round.
type inflateRow struct {
	procs int
	mbps  map[string][]float64 // by decoder
}

// gzipRun is `image` of one gzip input by one binary.
type gzipRun struct {
	input, label string
	samples      series
	sum          string // the image's sha256, the last round's
}

type inflateResult struct {
	gzSize, layoutBytes int64
	rows                []*inflateRow
	benchErr            string // why the Go benchmark gave no figures
	runs                []*gzipRun
	prevBin             string
	// The two binaries' version stamps ("ext4pack v1.2.3"). The version
	// salts the derived UUID and hash seed, so only binaries stamped alike
	// can write the same image: build the baseline with the same VERSION.
	thisVer, prevVer string
}

// comparable says whether the two binaries' images can be compared byte
// for byte.
func (ir *inflateResult) comparable() bool { return ir.thisVer == ir.prevVer }

// versionOf is the first line of `bin version`: ext4pack and its stamp.
func versionOf(ctx context.Context, bin string) string {
	out, err := exec.CommandContext(ctx, bin, "version").Output()
	if err != nil {
		return "unknown"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return strings.TrimSpace(line)
}

const (
	gzFlat   = "the flat Debian tar, gzip -6"
	gzLayout = "`--image oci:`, five gzip layers"
)

var gunzipLine = regexp.MustCompile(`(?m)^BenchmarkGunzip/decoder=(\w+)(?:-\d+)?\s+\d+\s+\d+ ns/op\s+([0-9.]+) MB/s`)

func runInflate(ctx context.Context, c config, work, debTar string) (*inflateResult, error) {
	res := &inflateResult{prevBin: c.prevBin, thisVer: versionOf(ctx, c.bin)}
	if c.prevBin != "" {
		res.prevVer = versionOf(ctx, c.prevBin)
	}
	dir := filepath.Join(work, "inflate")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	gz := filepath.Join(dir, "debian.tar.gz")
	if err := shell(ctx, "gzip -6 -n -c < "+strconv.Quote(debTar)+" > "+strconv.Quote(gz)); err != nil {
		return nil, err
	}
	st, err := os.Stat(gz)
	if err != nil {
		return nil, err
	}
	res.gzSize = st.Size()

	// The Go benchmark, built once.
	test := filepath.Join(dir, "inflate.test")
	if out, err := exec.CommandContext(ctx, "go", "test", "-c", "-o", test, "./inflate").CombinedOutput(); err != nil {
		res.benchErr = fmt.Sprintf("go test -c ./inflate: %v: %s", err, tail(out, 1024))
	}
	for _, procs := range []int{1, 2, 16} {
		res.rows = append(res.rows, &inflateRow{procs: procs, mbps: map[string][]float64{}})
	}
	for round := 0; round < c.rounds && res.benchErr == ""; round++ {
		for _, row := range res.rows {
			cmd := exec.CommandContext(ctx, test, "-test.run", "^$", "-test.bench", "^BenchmarkGunzip$", "-test.count", "1", "-test.benchtime", "3x")
			cmd.Env = append(os.Environ(), "GOMAXPROCS="+strconv.Itoa(row.procs), "EXT4PACK_INFLATE_BENCH="+gz)
			out, err := cmd.CombinedOutput()
			if err != nil {
				res.benchErr = fmt.Sprintf("BenchmarkGunzip: %v: %s", err, tail(out, 1024))
				break
			}
			for _, m := range gunzipLine.FindAllSubmatch(out, -1) {
				v, _ := strconv.ParseFloat(string(m[2]), 64)
				row.mbps[string(m[1])] = append(row.mbps[string(m[1])], v)
			}
			logf("inflate: GOMAXPROCS %-2d %s", row.procs, summary(row))
		}
	}

	// The five-layer layout.
	layout := filepath.Join(dir, "layout")
	var layers []benchLayer
	for range 5 {
		layers = append(layers, benchLayer{debTar})
	}
	if err := writeLayout(layout, "v1", layers, true); err != nil {
		return nil, err
	}
	res.layoutBytes = 5 * fileSize(debTar)
	inputs := []struct{ name, flag, src string }{
		{gzFlat, "--rootfs-tar", gz},
		{gzLayout, "--image", "oci:" + layout + ":v1"},
	}
	bins := []struct{ label, bin string }{{"(this build)", c.bin}}
	if c.prevBin != "" {
		bins = append(bins, struct{ label, bin string }{"(before issue 21: -prevbin)", c.prevBin})
	}
	for _, in := range inputs {
		for _, b := range bins {
			res.runs = append(res.runs, &gzipRun{input: in.name, label: b.label})
		}
	}
	out := filepath.Join(dir, "out.ext4")
	for round := 0; round < c.rounds; round++ {
		i := 0
		for _, in := range inputs {
			for _, b := range bins {
				r := res.runs[i]
				i++
				s, _, err := runProc(ctx, nil, b.bin, "image", in.flag, in.src, "--out", out)
				if err != nil {
					return nil, err
				}
				r.samples = append(r.samples, s)
				if r.sum, err = sha256File(out); err != nil {
					return nil, err
				}
				os.Remove(out)
				logf("image %-40s %-28s %7.2f s  %6.1f MiB", in.name, b.label, s.wall.Seconds(), float64(s.maxRSS)/(1<<20))
			}
		}
	}
	return res, nil
}

func summary(row *inflateRow) string {
	var b bytes.Buffer
	for _, d := range []string{"inflate", "klauspost", "stdlib"} {
		if v := row.mbps[d]; len(v) > 0 {
			fmt.Fprintf(&b, "%s %.0f MB/s  ", d, v[len(v)-1])
		}
	}
	return b.String()
}

func medianFloat(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func fileSize(p string) int64 {
	st, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return st.Size()
}

// shell runs a sh command line (the harness may run programs).
func shell(ctx context.Context, line string) error {
	out, err := exec.CommandContext(ctx, "sh", "-c", line).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %v: %s", line, err, tail(out, 1024))
	}
	return nil
}

func (ir *inflateResult) run(input, label string) *gzipRun {
	for _, r := range ir.runs {
		if r.input == input && r.label == label && len(r.samples) > 0 {
			return r
		}
	}
	return nil
}

func (r *report) inflateTable(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	ir := r.inflate
	p("### Inflate (issue 21)\n\n")
	p("inflate's `BenchmarkGunzip`: the Debian tar through gzip -6 (%s), decoded whole in memory by inflate, klauspost/compress/gzip (what tarflat used before) and compress/gzip; MB/s of output, the median of %d processes at each GOMAXPROCS, the three decoders taking turns within each. One stream decodes on one core: GOMAXPROCS shows that the decoders do not lean on more.\n\n", mib(ir.gzSize), r.rounds)
	if ir.benchErr != "" {
		p("The benchmark did not run: %s\n\n", ir.benchErr)
	} else {
		p("| GOMAXPROCS | inflate | klauspost | compress/gzip | inflate vs klauspost | inflate vs compress/gzip |\n|---:|---:|---:|---:|---:|---:|\n")
		for _, row := range ir.rows {
			in, kp, sd := medianFloat(row.mbps["inflate"]), medianFloat(row.mbps["klauspost"]), medianFloat(row.mbps["stdlib"])
			p("| %d | %.0f MB/s | %.0f MB/s | %.0f MB/s | %s | %s |\n", row.procs, in, kp, sd, ratioStr(in, kp), ratioStr(in, sd))
		}
		p("\n")
	}
	p("`ext4pack image` of gzip input: the flat tar above, and an OCI layout of five gzip layers, the Debian tar five times (%s uncompressed; Go's gzip, default level), each layer replacing the one below. GOMAXPROCS is the machine's. ", mib(ir.layoutBytes))
	if ir.prevBin == "" {
		p("No binary from before issue 21 was given (-prevbin): no baseline in this run.\n\n")
	} else {
		p("\"Before\" is `%s`, run in turn with this build; the images must be the same. ", ir.prevBin)
		if ir.comparable() {
			p("Both binaries are stamped `%s`: the version salts the derived UUID and hash seed, so the baseline was built with this build's VERSION to compare the images.\n\n", ir.thisVer)
		} else {
			p("The images were not compared: the binaries are stamped `%s` and `%s`, and the version salts the derived UUID and hash seed. Build the baseline with the same VERSION (`make build VERSION=...`, and `make bench VERSION=...`) to compare them.\n\n", ir.thisVer, ir.prevVer)
		}
	}
	p("| input | binary | wall | CPU | peak RSS | wall vs before | image |\n|---|---|---:|---:|---:|---:|---|\n")
	for _, x := range ir.runs {
		if len(x.samples) == 0 {
			continue
		}
		vs, same := "-", "-"
		if o := ir.run(x.input, "(before issue 21: -prevbin)"); o != nil && o != x {
			vs = fmt.Sprintf("%.3fx", x.samples.wall().Seconds()/o.samples.wall().Seconds())
			switch {
			case !ir.comparable():
				same = "not compared"
			case o.sum == x.sum:
				same = "the same"
			default:
				same = "**differs**"
			}
		}
		p("| %s | %s | %s | %s | %s | %s | %s |\n", x.input, x.label, secs(x.samples.wall()), secs(x.samples.cpu()), mib(x.samples.peakRSS()), vs, same)
	}
	p("\n")
}

func ratioStr(a, b float64) string {
	if a <= 0 || b <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2fx", a/b)
}

// inflateTargets judges issue 21's targets.
func (r *report) inflateTargets() []targetRow {
	const (
		tThroughput = "inflate at least 1.4x klauspost's throughput on the Debian layer (GOMAXPROCS 1)"
		tLayout     = "five gzip layers, `--image oci:`: at most 0.65x the time of the binary before issue 21"
		tFlat       = "the gzipped flat Debian tar at most 0.65x the binary before issue 21"
		tRSS        = "five gzip layers, `--image oci:`: peak RSS at most 96 MiB"
	)
	ir := r.inflate
	if ir == nil {
		var rows []targetRow
		for _, t := range []string{tThroughput, tLayout, tFlat, tRSS} {
			rows = append(rows, targetRow{t, phaseSkipped("inflate"), notMeasured})
		}
		return rows
	}
	var rows []targetRow
	switch {
	case ir.benchErr != "":
		rows = append(rows, targetRow{tThroughput, "not measured: " + ir.benchErr, notMeasured})
	case len(ir.rows) == 0 || len(ir.rows[0].mbps["inflate"]) == 0 || len(ir.rows[0].mbps["klauspost"]) == 0:
		rows = append(rows, targetRow{tThroughput, "not measured: no figures", notMeasured})
	default:
		in, kp := medianFloat(ir.rows[0].mbps["inflate"]), medianFloat(ir.rows[0].mbps["klauspost"])
		rows = append(rows, targetRow{tThroughput, fmt.Sprintf("%.0f MB/s against %.0f: %.2fx", in, kp, in/kp), judge(in >= 1.4*kp)})
	}
	for _, t := range []struct{ target, input string }{{tLayout, gzLayout}, {tFlat, gzFlat}} {
		a, b := ir.run(t.input, "(this build)"), ir.run(t.input, "(before issue 21: -prevbin)")
		switch {
		case a == nil || b == nil:
			rows = append(rows, targetRow{t.target, "not measured: no baseline (-prevbin)", notMeasured})
		case ir.comparable() && a.sum != b.sum:
			rows = append(rows, targetRow{t.target, "the images differ", notMet})
		default:
			x := a.samples.wall().Seconds() / b.samples.wall().Seconds()
			m := fmt.Sprintf("%.3fx (%s vs %s), the same image", x, secs(a.samples.wall()), secs(b.samples.wall()))
			if !ir.comparable() {
				m = fmt.Sprintf("%.3fx (%s vs %s); the images not compared (version stamps differ)", x, secs(a.samples.wall()), secs(b.samples.wall()))
			}
			rows = append(rows, targetRow{t.target, m, judge(x <= 0.65)})
		}
	}
	if a := ir.run(gzLayout, "(this build)"); a == nil {
		rows = append(rows, targetRow{tRSS, "not measured: no run", notMeasured})
	} else {
		rows = append(rows, targetRow{tRSS, mib(a.samples.peakRSS()), judge(a.samples.peakRSS() <= 96<<20)})
	}
	return rows
}
