//go:build linux

package main

import (
	"archive/tar"
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// corpusSpec is a generated tar: files non-directory entries, in many
// directories of 1 to 63 entries or, with hugeDir, all in one directory.
type corpusSpec struct {
	files   int
	hugeDir bool
	desc    string
}

var corpusSpecs = map[string]corpusSpec{
	"10k":     {10_000, false, "10,000 small files in many directories"},
	"100k":    {100_000, false, "100,000 small files in many directories"},
	"1m":      {1_000_000, false, "1,000,000 small files in many directories"},
	"dir100k": {100_000, true, "one directory of 100,000 small files"},
	"empty":   {1, false, "near-empty: one directory, one file (the baseline)"},
}

// corpus is a generated tar on disk.
type corpus struct {
	name, desc, path string
	entries          int // tar headers
	size             int64
	genTime          time.Duration
	samples          series
}

// generateCorpora writes the near-empty baseline and the named corpora
// into work. They are made fresh every run and never kept.
func generateCorpora(ctx context.Context, work string, names []string) ([]*corpus, error) {
	var out []*corpus
	for _, name := range append([]string{"empty"}, names...) {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		spec := corpusSpecs[name]
		k := &corpus{name: name, desc: spec.desc, path: filepath.Join(work, "corpus-"+name+".tar")}
		t0 := time.Now()
		n, err := writeCorpus(k.path, name, spec)
		if err != nil {
			return nil, fmt.Errorf("generating %s: %w", name, err)
		}
		k.genTime, k.entries = time.Since(t0), n
		st, err := os.Stat(k.path)
		if err != nil {
			return nil, err
		}
		k.size = st.Size()
		logf("generated %-8s %9d entries  %s  in %.1f s", name, n, mib(k.size), k.genTime.Seconds())
		out = append(out, k)
	}
	return out, nil
}

// Words for names that look like a distribution's: package-ish directory
// names under the usual prefixes, file names with common extensions.
var (
	tops = []string{"usr/share/doc", "usr/lib/python3/dist-packages", "usr/share/locale", "usr/include",
		"usr/lib/x86_64-linux-gnu", "usr/share/man/man3", "etc", "var/lib/dpkg/info", "opt/app/node_modules",
		"usr/share/perl5", "usr/lib/modules/6.1.0/kernel/drivers", "srv/www/static"}
	words = []string{"lib", "core", "util", "net", "http", "json", "xml", "crypto", "ssl", "audio", "video",
		"image", "font", "config", "data", "test", "parser", "common", "base", "system", "client", "server",
		"proto", "cache", "stream", "codec", "auth", "log", "event", "task", "worker", "queue", "store",
		"index", "query", "schema", "model", "view", "route", "handler", "plugin", "theme", "locale", "i18n",
		"widget", "layout", "render", "math", "time", "zone", "color", "shape", "graph", "tree", "list",
		"map", "set", "hash", "sort", "search", "file", "path", "io", "os"}
	subs = []string{"lib", "bin", "share", "include", "src", "dist", "test", "docs", "LC_MESSAGES", "__pycache__"}
	exts = []string{"py", "pyc", "so", "h", "c", "js", "json", "txt", "gz", "conf", "mo", "md", "pm", "ko", "list", "md5sums"}
)

// writeCorpus writes the corpus name to path and returns its header
// count. The content is the same on every run (a fixed seed).
func writeCorpus(path, name string, spec corpusSpec) (int, error) {
	f, err := os.Create(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	rng := rand.New(rand.NewPCG(0x65787434, uint64(len(name))<<32|uint64(spec.files)))
	base := time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)
	var text strings.Builder
	for text.Len() < 4096 {
		text.WriteString(words[rng.IntN(len(words))])
		text.WriteByte(" \n"[rng.IntN(8)/7])
	}
	content := []byte(text.String())

	entries := 0
	emitted := map[string]bool{}
	put := func(h *tar.Header, data []byte) error {
		h.ModTime = base.Add(time.Duration(entries) * time.Second)
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		entries++
		if len(data) > 0 {
			_, err := tw.Write(data)
			return err
		}
		return nil
	}
	ensureDir := func(dir string) error {
		for i := 0; i <= len(dir); i++ {
			if i < len(dir) && dir[i] != '/' {
				continue
			}
			p := dir[:i]
			if emitted[p] {
				continue
			}
			emitted[p] = true
			if err := put(&tar.Header{Typeflag: tar.TypeDir, Name: p + "/", Mode: 0o755}, nil); err != nil {
				return err
			}
		}
		return nil
	}
	w := func() string { return words[rng.IntN(len(words))] }
	regular := func(name string) error {
		size := 0
		if rng.IntN(4) != 0 { // a quarter are empty, as __init__.py and .keep are
			size = 1 + rng.IntN(700)
		}
		mode := int64(0o644)
		if rng.IntN(10) == 0 {
			mode = 0o755
		}
		uid := 0
		if rng.IntN(30) == 0 {
			uid = 1000
		}
		off := rng.IntN(len(content) - size)
		return put(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Uid: uid, Gid: uid, Size: int64(size)}, content[off:off+size])
	}

	files := 0
	switch {
	case name == "empty":
		if err := ensureDir("etc"); err != nil {
			return 0, err
		}
		if err := put(&tar.Header{Typeflag: tar.TypeReg, Name: "etc/hostname", Mode: 0o644, Size: 6}, []byte("bench\n")); err != nil {
			return 0, err
		}
	case spec.hugeDir:
		dir := "var/spool/bench"
		if err := ensureDir(dir); err != nil {
			return 0, err
		}
		for ; files < spec.files; files++ {
			if err := regular(fmt.Sprintf("%s/%08x-%06d.msg", dir, rng.Uint32(), files)); err != nil {
				return 0, err
			}
		}
	default:
		for d := 0; files < spec.files; d++ {
			dir := fmt.Sprintf("%s/%s-%s%d", tops[d%len(tops)], w(), w(), d/len(tops))
			if rng.IntN(2) == 0 {
				dir += "/" + subs[rng.IntN(len(subs))]
			}
			if err := ensureDir(dir); err != nil {
				return 0, err
			}
			lastReg := ""
			for j, k := 0, 1+rng.IntN(63); j < k && files < spec.files; j++ {
				name := fmt.Sprintf("%s/%s_%s-%d.%s", dir, w(), w(), j, exts[rng.IntN(len(exts))])
				var err error
				switch x := rng.IntN(100); {
				case x < 5: // a symlink, to a sibling or far away
					target := "/usr/lib/" + w() + ".so"
					if lastReg != "" {
						target = filepath.Base(lastReg)
					}
					err = put(&tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}, nil)
				case x < 6 && lastReg != "": // a hard link to an earlier file
					err = put(&tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: lastReg, Mode: 0o644}, nil)
				default:
					err = regular(name)
					lastReg = name
				}
				if err != nil {
					return 0, err
				}
				files++
			}
		}
	}
	if err := tw.Close(); err != nil {
		return 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, err
	}
	return entries, f.Close()
}

// runScale runs ext4pack image on every corpus, the near-empty one
// included, taking turns, and deletes each image after it is measured.
func runScale(ctx context.Context, c config, work string, corpora []*corpus) ([]*corpus, error) {
	out := filepath.Join(work, "scale.ext4")
	for r := 0; r < c.rounds; r++ {
		for _, k := range corpora {
			os.Remove(out)
			s, _, err := runProc(ctx, nil, c.bin, "image", "--rootfs-tar", k.path, "--out", out)
			os.Remove(out)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", k.name, err)
			}
			k.samples = append(k.samples, s)
			logf("round %d: image %-8s %8.3f s  %7.1f MiB", r+1, k.name, s.wall.Seconds(), float64(s.maxRSS)/(1<<20))
		}
	}
	return corpora, nil
}
