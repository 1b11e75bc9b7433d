//go:build linux

package main

import (
	"strings"
	"testing"
)

// allPulls is a pulls phase where every row ran and every target was met.
func allPulls() *pullsResult {
	link := &pullLink{name: "link", rows: []*imageRow{
		img(pSkopeo, 10), img(pDownload, 3), img(pBuild, 4), img(pBefore, 20),
		img(pCold, 5), img(pWarm, 4.2), img(pCut, 6),
	}}
	loop := &pullLink{name: "loopback", rows: []*imageRow{
		img(pSkopeo, 3), img(pDownload, 1), img(pBuild, 4), img(pBefore, 4.5),
		img(pCold, 4.4), img(pWarm, 4.1), img(pCut, 4.6),
	}}
	return &pullsResult{layers: []int64{150e6, 50e6, 50e6, 50e6, 50e6}, tarMB: 760, links: []*pullLink{link, loop}}
}

// TestPullTargets: each target of issue 18 is met only when its rows
// ran and their figures meet it.
func TestPullTargets(t *testing.T) {
	const (
		tSkopeo = "over the link, a cold pull at most 0.6x skopeo"
		tParts  = "over the link, a cold pull within 1.3x"
		tWarm   = "a warm cache at most 1.1x"
		tCut    = "over the link, every connection cut"
		tRSS    = "peak RSS of `--image docker://`"
		tLoop   = "on loopback nothing slower"
	)
	set := func(r *report, link int, row *imageRow) {
		for i, x := range r.pulls.links[link].rows {
			if x.name == row.name {
				r.pulls.links[link].rows[i] = row
			}
		}
	}
	for _, c := range []struct {
		name   string
		change func(r *report)
		target string
		want   verdict
		says   string
	}{
		{"skopeo met", nil, tSkopeo, met, "0.50x (5.00 s vs 10.0 s)"},
		{"skopeo not met", func(r *report) { set(r, 0, img(pCold, 7)) }, tSkopeo, notMet, "0.70x"},
		{"skopeo did not run", func(r *report) { set(r, 0, imgSkip(pSkopeo, "skopeo is not installed")) }, tSkopeo, notMeasured, "skopeo is not installed"},
		{"parts met", nil, tParts, met, "1.25x (5.00 s vs the larger of 3.00 s and 4.00 s)"},
		{"parts: the download is the larger", func(r *report) { set(r, 0, img(pDownload, 4.5)) }, tParts, met, "1.11x"},
		{"parts not met", func(r *report) { set(r, 0, img(pCold, 5.3)) }, tParts, notMet, "1.32x"},
		{"parts without the download", func(r *report) { set(r, 0, imgSkip(pDownload, "no registry")) }, tParts, notMeasured, "no registry"},
		{"warm met", nil, tWarm, met, "link: 1.05x"},
		{"warm not met on loopback", func(r *report) { set(r, 1, img(pWarm, 4.5)) }, tWarm, notMet, "loopback: 1.12x"},
		{"cut met", nil, tCut, met, "1.20x"},
		{"cut not met", func(r *report) { set(r, 0, img(pCut, 7)) }, tCut, notMet, "1.40x"},
		{"RSS met", nil, tRSS, met, "50.0 MiB"},
		{"RSS over on loopback's cut", func(r *report) { set(r, 1, &imageRow{name: pCut, samples: ser(4.6, 97)}) }, tRSS, notMet, "97.0 MiB"},
		{"RSS with a row missing", func(r *report) { set(r, 0, imgSkip(pWarm, "gone")) }, tRSS, notMeasured, "gone"},
		{"loopback met", nil, tLoop, met, "0.98x"},
		{"loopback slower", func(r *report) { set(r, 1, img(pCold, 4.8)) }, tLoop, notMet, "1.07x"},
		{"loopback without the old binary", func(r *report) {
			set(r, 1, imgSkip(pBefore, "no ext4pack from before issue 18 given (-prepullbin, BENCH_PREPULL_BIN)"))
		}, tLoop, notMeasured, "-prepullbin"},
		{"pulls phase skipped", func(r *report) { r.pulls = nil }, tWarm, notMeasured, "-skip pulls"},
		{"no registry", func(r *report) { r.pulls = &pullsResult{notes: []string{"docker-registry is not installed"}} }, tCut, notMeasured, "docker-registry is not installed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &report{pulls: allPulls()}
			if c.change != nil {
				c.change(r)
			}
			got := verdictOf(t, r.pullsTargets(), c.target)
			if got.verdict != c.want || !strings.Contains(got.measured, c.says) {
				t.Errorf("%s: %q, %s; want %s, saying %q", got.target, got.measured, got.verdict, c.want, c.says)
			}
		})
	}
	// The table renders, targets and all.
	var r report
	r.pulls = allPulls()
	md := r.markdown()
	if !strings.Contains(md, "### Pulls over a link") || !strings.Contains(md, "| "+pCut+" | 6.00 s") {
		t.Errorf("the pulls table is missing:\n%s", md)
	}
}
