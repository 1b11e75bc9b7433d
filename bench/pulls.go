//go:build linux

package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
)

// The pulls phase (issue 18): a registry image of five gzip layers, about
// 900 MB of Debian (the base the biggest), pulled over a link like a
// CDN's seen from a laptop or a CI runner (toxiproxy, run in this process:
// 20 ms of latency and 20 MB/s on each connection), and on loopback.
// ext4pack cold (an empty cache), warm (every blob cached) and with every
// connection cut after 60 MB, against skopeo's pull, ext4pack's own
// download without the build, the build from the pulled layout, and,
// when -prepullbin names one, the ext4pack from before issue 18 (one
// connection, no cache).

// Row names, the same in both tables.
const (
	pSkopeo   = "skopeo copy docker:// to oci: (its default: 6 blobs at once)"
	pDownload = "ext4pack's download alone, 6 connections (bench download), the build left out"
	pBuild    = "the build from the pulled layout: --image oci:"
	pBefore   = "before issue 18: --image docker:// (one connection, no cache)"
	pCold     = "cold: --image docker://, an empty cache"
	pWarm     = "warm: --image docker://, every blob cached"
	pCut      = "cold, every connection cut after 60 MB"
)

// Targets of issue 18.
const (
	targetColdVsSkopeo = 0.6
	targetColdVsParts  = 1.3
	targetWarm         = 1.1
	targetCut          = 1.3
	targetPullRSS      = 96 << 20
	// On loopback nothing may get slower than before issue 18: within
	// the rounds' noise, 5%.
	targetLoopback = 1.05
)

// The link: per connection, as toxiproxy's toxics take them.
const (
	linkLatencyMs = 20
	linkRateKBs   = 20000 // 20 MB/s
	cutBytes      = 60_000_000
)

// pullsResult is the pulls phase's figures: one table a link.
type pullsResult struct {
	layers []int64 // the layer blobs' sizes, base first
	tarMB  float64 // the layers' uncompressed size, MB
	links  []*pullLink
	notes  []string
}

type pullLink struct {
	name string // "20 ms, 20 MB/s a connection" or "loopback"
	rows []*imageRow
}

func (pl *pullLink) row(name string) *imageRow {
	for _, r := range pl.rows {
		if r.name == name {
			return r
		}
	}
	return nil
}

// measured is the row called name when it has samples, else nil.
func (pl *pullLink) measured(name string) *imageRow { return measuredRow(pl.row(name)) }

// why says why the row called name has no figure.
func (pl *pullLink) why(name string) string { return whyNoFigure(name, pl.row(name)) }

// runPulls makes the image, pushes it to a local registry, and times
// every row of both links, taking turns, c.rounds rounds.
func runPulls(ctx context.Context, c config, work, debTar string) (*pullsResult, error) {
	res := &pullsResult{}
	dir := filepath.Join(work, "pulls")
	tmp := filepath.Join(dir, "tmp") // every spool and temporary file in the tmpfs
	for _, d := range []string{dir, tmp} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	env := []string{"TMPDIR=" + tmp}
	layers, mb, err := pullLayers(debTar, dir)
	if err != nil {
		return nil, err
	}
	res.tarMB = mb
	layout := filepath.Join(dir, "layout")
	logf("pulls: gzipping %.0f MB of layers into %s", mb, layout)
	if err := writeLayout(layout, "debian", layers, true); err != nil {
		return nil, err
	}
	for _, l := range layers {
		os.Remove(l.path)
	}
	if res.layers, err = layoutLayerSizes(layout); err != nil {
		return nil, err
	}
	reg, stop, err := startBenchRegistry(ctx, dir)
	if err != nil {
		res.notes = append(res.notes, "not measured: "+err.Error())
		return res, nil
	}
	defer stop()
	skopeo, _ := lookTool("skopeo")
	repo := "/bench/pull:gz"
	if _, _, err := runProcEnv(ctx, env, nil, skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false", "oci:"+layout+":debian", "docker://"+reg+repo); err != nil {
		return nil, err
	}
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	proxies := &proxySet{}
	defer proxies.stop()
	link := fmt.Sprintf(`{"type": "latency", "attributes": {"latency": %d}}`, linkLatencyMs)
	rate := fmt.Sprintf(`{"type": "bandwidth", "attributes": {"rate": %d}}`, linkRateKBs)
	cut := fmt.Sprintf(`{"type": "limit_data", "attributes": {"bytes": %d}}`, cutBytes)
	out := filepath.Join(dir, "out.ext4")
	var runs []runner
	for _, l := range []struct {
		name          string
		plain, cutTox []string
	}{
		{fmt.Sprintf("%d ms, %d MB/s a connection", linkLatencyMs, linkRateKBs/1000), []string{link, rate}, []string{link, rate, cut}},
		{"loopback: no proxy, no toxic (the cut row through a proxy that only cuts)", nil, []string{cut}},
	} {
		pl := &pullLink{name: l.name}
		res.links = append(res.links, pl)
		host := reg
		if l.plain != nil {
			if host, err = proxies.start(reg, l.plain...); err != nil {
				return nil, err
			}
		}
		cutHost, err := proxies.start(reg, l.cutTox...)
		if err != nil {
			return nil, err
		}
		ref, cutRef := host+repo, cutHost+repo
		sub := filepath.Join(dir, fmt.Sprint(len(res.links)))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			return nil, err
		}
		pulled := filepath.Join(sub, "pulled") // skopeo's layout, for the build row
		if _, _, err := runProcEnv(ctx, env, nil, skopeo, "--insecure-policy", "copy", "--src-tls-verify=false", "docker://"+reg+repo, "oci:"+pulled+":debian"); err != nil {
			return nil, err
		}
		// The warm cache, filled by a pull of the same reference (the
		// cache keeps the tag's manifest under the name it was pulled by).
		warm := filepath.Join(sub, "warm")
		if _, _, err := runProcEnv(ctx, env, nil, c.bin, "image", "--image", ref, "--cache", warm, "--out", out); err != nil {
			return nil, err
		}
		add := func(name, command, skip string, run func(context.Context) (sample, error)) {
			addRow(&pl.rows, &runs, name, command, skip, run)
		}
		image := func(ref string, args ...string) func(context.Context) (sample, error) {
			return func(ctx context.Context) (sample, error) {
				os.Remove(out)
				s, _, err := runProcEnv(ctx, env, nil, c.bin, append([]string{"image", "--image", ref, "--out", out}, args...)...)
				return s, err
			}
		}
		// fresh empties a cache before each sample: a cold pull.
		fresh := func(cache string, run func(context.Context) (sample, error)) func(context.Context) (sample, error) {
			return func(ctx context.Context) (sample, error) {
				os.RemoveAll(cache)
				defer os.RemoveAll(cache)
				return run(ctx)
			}
		}
		skopeoOut := filepath.Join(sub, "skopeo")
		add(pSkopeo, "skopeo copy --src-tls-verify=false docker://HOST/bench/pull:gz oci:DIR:debian", "",
			func(ctx context.Context) (sample, error) {
				os.RemoveAll(skopeoOut)
				s, _, err := runProcEnv(ctx, env, nil, skopeo, "--insecure-policy", "copy", "--src-tls-verify=false", "docker://"+ref, "oci:"+skopeoOut+":debian")
				return s, err
			})
		add(pDownload, "bench download HOST/bench/pull:gz (the spool in the tmpfs)", "",
			func(ctx context.Context) (sample, error) {
				s, _, err := runProcEnv(ctx, env, nil, self, "download", ref)
				return s, err
			})
		add(pBuild, "ext4pack image --image oci:DIR:debian --out IMAGE (the layout skopeo pulled)", "", image("oci:"+pulled+":debian"))
		skipBefore := ""
		if c.prePullBin == "" {
			skipBefore = "no ext4pack from before issue 18 given (-prepullbin, BENCH_PREPULL_BIN)"
		}
		add(pBefore, "OLD image --image HOST/bench/pull:gz --out IMAGE", skipBefore,
			func(ctx context.Context) (sample, error) {
				os.Remove(out)
				s, _, err := runProcEnv(ctx, env, nil, c.prePullBin, "image", "--image", ref, "--out", out)
				return s, err
			})
		cold := filepath.Join(sub, "cold")
		add(pCold, "ext4pack image --image HOST/bench/pull:gz --cache EMPTY --out IMAGE", "", fresh(cold, image(ref, "--cache", cold)))
		add(pWarm, "ext4pack image --image HOST/bench/pull:gz --cache FULL --out IMAGE", "", image(ref, "--cache", warm))
		add(pCut, "ext4pack image --image CUTHOST/bench/pull:gz --cache EMPTY --out IMAGE, CUTHOST's connections each cut after 60 MB", "",
			fresh(cold, image(cutRef, "--cache", cold)))
	}
	if err := takeTurns(ctx, c.rounds, "pulls", runs); err != nil {
		return nil, err
	}
	return res, nil
}

// pullLayers writes the image's five layers from the Debian tar, in the
// shape of issue 18's (800 MB of tar, 370 MB of gzip blobs, the base 42%
// of them): the base is the Debian tree and two copies of its usr, under
// opt/copy0 and opt/copy1, each upper layer one more copy of usr
// (opt/copy2 .. opt/copy5). It returns them and their size in MB.
func pullLayers(debTar, dir string) ([]benchLayer, float64, error) {
	in, err := os.Open(debTar)
	if err != nil {
		return nil, 0, err
	}
	defer in.Close()
	var layers []benchLayer
	var tws []*tar.Writer
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for i := range 5 {
		p := filepath.Join(dir, fmt.Sprintf("pull-layer%d.tar", i+1))
		f, err := os.Create(p)
		if err != nil {
			return nil, 0, err
		}
		files = append(files, f)
		tws = append(tws, tar.NewWriter(f))
		layers = append(layers, benchLayer{p})
	}
	// copies are the copies of usr each layer holds.
	copies := [][]int{{0, 1}, {2}, {3}, {4}, {5}}
	// The upper layers' copies' own directories; opt is the base's.
	for i, tw := range tws[1:] {
		if err := tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("opt/copy%d/", copies[i+1][0]), Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			return nil, 0, err
		}
	}
	var usr []*tar.Header
	var data [][]byte
	tr := tar.NewReader(in)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			return nil, 0, err
		}
		if err := tws[0].WriteHeader(h); err != nil {
			return nil, 0, err
		}
		if _, err := tws[0].Write(b); err != nil {
			return nil, 0, err
		}
		name := strings.TrimPrefix(h.Name, "./")
		if name == "usr/" || strings.HasPrefix(name, "usr/") {
			usr = append(usr, h)
			data = append(data, b)
		}
	}
	for _, k := range copies[0] {
		if err := tws[0].WriteHeader(&tar.Header{Name: fmt.Sprintf("opt/copy%d/", k), Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			return nil, 0, err
		}
	}
	for i, tw := range tws {
		for _, k := range copies[i] {
			prefix := fmt.Sprintf("opt/copy%d/", k)
			for j, h := range usr {
				c := *h
				c.Name = prefix + strings.TrimPrefix(h.Name, "./")
				if c.Typeflag == tar.TypeLink {
					c.Linkname = prefix + strings.TrimPrefix(h.Linkname, "./")
				}
				if err := tw.WriteHeader(&c); err != nil {
					return nil, 0, err
				}
				if _, err := tw.Write(data[j]); err != nil {
					return nil, 0, err
				}
			}
		}
		if err := tw.Close(); err != nil {
			return nil, 0, err
		}
	}
	var total int64
	for _, f := range files {
		st, err := f.Stat()
		if err != nil {
			return nil, 0, err
		}
		total += st.Size()
	}
	return layers, float64(total) / 1e6, nil
}

// layoutLayerSizes reads the layer blobs' sizes from a layout that
// writeLayout wrote.
func layoutLayerSizes(layout string) ([]int64, error) {
	var idx struct {
		Manifests []struct{ Digest string }
	}
	if err := readJSON(filepath.Join(layout, "index.json"), &idx); err != nil {
		return nil, err
	}
	if len(idx.Manifests) != 1 {
		return nil, fmt.Errorf("%s: %d manifests", layout, len(idx.Manifests))
	}
	var man struct {
		Layers []struct{ Size int64 }
	}
	if err := readJSON(filepath.Join(layout, "blobs", "sha256", strings.TrimPrefix(idx.Manifests[0].Digest, "sha256:")), &man); err != nil {
		return nil, err
	}
	var out []int64
	for _, l := range man.Layers {
		out = append(out, l.Size)
	}
	return out, nil
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// proxySet runs toxiproxy's proxies in this process.
type proxySet struct {
	srv     *toxiproxy.ApiServer
	proxies []*toxiproxy.Proxy
}

var quietToxiproxy sync.Once

// start starts a proxy to upstream with the toxics (toxiproxy's JSON) and
// returns its HOST:PORT.
func (ps *proxySet) start(upstream string, toxics ...string) (string, error) {
	quietToxiproxy.Do(func() { zerolog.SetGlobalLevel(zerolog.Disabled) })
	if ps.srv == nil {
		ps.srv = toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
	}
	p := toxiproxy.NewProxy(ps.srv, fmt.Sprintf("bench%d", len(ps.proxies)), "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		return "", err
	}
	ps.proxies = append(ps.proxies, p)
	for _, t := range toxics {
		if _, err := p.Toxics.AddToxicJson(strings.NewReader(t)); err != nil {
			return "", fmt.Errorf("toxic %s: %w", t, err)
		}
	}
	return p.Listen, nil
}

func (ps *proxySet) stop() {
	for _, p := range ps.proxies {
		p.Stop()
	}
}

// pullsTable writes the pulls phase's tables and targets.
func (r *report) pullsTable(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	pr := r.pulls
	p("### Pulls over a link: a five-layer image from a registry (issue 18)\n\n")
	if pr == nil {
		p("The pulls phase did not run (-skip pulls).\n\n")
		renderTargets(p, "target (issue 18)", r.pullsTargets())
		p("\n")
		return
	}
	var sizes []string
	var sum int64
	for _, s := range pr.layers {
		sizes = append(sizes, fmt.Sprintf("%.0f", float64(s)/1e6))
		sum += s
	}
	p("The image: five gzip layers, %.0f MB of tar (the Debian tar and two copies of its /usr as the base, one more copy of /usr in each upper layer), %.0f MB of blobs (%s MB, base first), in distribution's docker-registry on 127.0.0.1; toxiproxy runs in the harness. Everything in the tmpfs, spools and caches included.\n\n",
		pr.tarMB, float64(sum)/1e6, strings.Join(sizes, ", "))
	for _, n := range pr.notes {
		p("%s\n\n", n)
	}
	for _, l := range pr.links {
		p("Link: %s.\n\n| | wall (median) | min - max | CPU (median) | peak RSS |\n|---|---:|---:|---:|---:|\n", l.name)
		for _, row := range l.rows {
			if row.skip != "" {
				p("| %s | skipped: %s | | | |\n", row.name, row.skip)
				continue
			}
			lo, hi := row.samples.minMax()
			p("| %s | %s | %s - %s | %s | %s |\n", row.name, secs(row.samples.wall()), secs(lo), secs(hi), secs(row.samples.cpu()), mib(row.samples.peakRSS()))
		}
		p("\n")
	}
	if len(pr.links) > 0 {
		p("Commands:\n\n")
		for _, row := range pr.links[0].rows {
			p("- %s: `%s`\n", row.name, row.command)
		}
		p("\n")
	}
	renderTargets(p, "target (issue 18)", r.pullsTargets())
	p("\n")
}

// pullsTargets judges the targets of issue 18 on the link, and that
// nothing got slower on loopback.
func (r *report) pullsTargets() []targetRow {
	tSkopeo := fmt.Sprintf("over the link, a cold pull at most %.1fx skopeo copy alone", targetColdVsSkopeo)
	tParts := fmt.Sprintf("over the link, a cold pull within %.1fx of the larger of ext4pack's download alone (same connections) and the build from the pulled layout", targetColdVsParts)
	tWarm := fmt.Sprintf("a warm cache at most %.1fx the build from the layout", targetWarm)
	tCut := fmt.Sprintf("over the link, every connection cut after 60 MB: at most %.1fx the cold pull without cuts", targetCut)
	tRSS := "peak RSS of `--image docker://` at most 96 MiB (cold, warm and cut, both tables)"
	tLoop := fmt.Sprintf("on loopback nothing slower: a cold pull at most %.2fx the ext4pack before issue 18", targetLoopback)
	all6 := []string{tSkopeo, tParts, tWarm, tCut, tRSS, tLoop}
	pr := r.pulls
	if pr == nil || len(pr.links) < 2 {
		why := phaseSkipped("pulls")
		if pr != nil {
			why = strings.Join(append([]string{"not measured"}, pr.notes...), ": ")
		}
		var rows []targetRow
		for _, t := range all6 {
			rows = append(rows, targetRow{t, why, notMeasured})
		}
		return rows
	}
	link, loop := pr.links[0], pr.links[1]
	ratio := func(target string, l *pullLink, a, b string, limit float64) targetRow {
		ra, rb := l.measured(a), l.measured(b)
		if ra == nil || rb == nil {
			return targetRow{target, "not measured: " + strings.Join(nonEmpty(l.why(a), l.why(b)), "; "), notMeasured}
		}
		x := ra.samples.wall().Seconds() / rb.samples.wall().Seconds()
		return targetRow{target, fmt.Sprintf("%.2fx (%s vs %s)", x, secs(ra.samples.wall()), secs(rb.samples.wall())), judge(x <= limit)}
	}
	rows := []targetRow{ratio(tSkopeo, link, pCold, pSkopeo, targetColdVsSkopeo)}

	cold, dl, build := link.measured(pCold), link.measured(pDownload), link.measured(pBuild)
	if cold == nil || dl == nil || build == nil {
		rows = append(rows, targetRow{tParts, "not measured: " + strings.Join(nonEmpty(link.why(pCold), link.why(pDownload), link.why(pBuild)), "; "), notMeasured})
	} else {
		larger := max(dl.samples.wall(), build.samples.wall())
		x := cold.samples.wall().Seconds() / larger.Seconds()
		rows = append(rows, targetRow{tParts, fmt.Sprintf("%.2fx (%s vs the larger of %s and %s)", x, secs(cold.samples.wall()), secs(dl.samples.wall()), secs(build.samples.wall())), judge(x <= targetColdVsParts)})
	}

	// The warm target in both tables: a cache spares the link.
	w1, w2 := ratio("", link, pWarm, pBuild, targetWarm), ratio("", loop, pWarm, pBuild, targetWarm)
	rows = append(rows, targetRow{tWarm, "link: " + w1.measured + "; loopback: " + w2.measured, all(w1.verdict, w2.verdict)})
	rows = append(rows, ratio(tCut, link, pCut, pCold, targetCut))

	var texts []string
	var vs []verdict
	for _, l := range pr.links {
		for _, name := range []string{pCold, pWarm, pCut} {
			x := l.measured(name)
			if x == nil {
				texts = append(texts, "not measured ("+l.why(name)+")")
				vs = append(vs, notMeasured)
				continue
			}
			texts = append(texts, mib(x.samples.peakRSS()))
			vs = append(vs, judge(x.samples.peakRSS() <= targetPullRSS))
		}
	}
	rows = append(rows, targetRow{tRSS, "link: " + strings.Join(texts[:3], ", ") + "; loopback: " + strings.Join(texts[3:], ", "), all(vs...)})
	rows = append(rows, ratio(tLoop, loop, pCold, pBefore, targetLoopback))
	return rows
}
