//go:build linux

package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// The images phase (issue 13): the Debian tar as a three-layer OCI image
// against the same content as one flat tar; the usual daemonless way
// (umoci unpack --rootless, then mkfs.ext4 -d); and a pull from a local
// registry, alone, built alone, and the two at once.

// What the upper layers change, as a Dockerfile's RUN rm and COPY would.
var (
	benchDeleted = []string{"usr/share/doc", "var/lib/apt/lists"}
	benchAdded   = map[string]string{"opt/app/hello": "hello from layer 2\n", "etc/app.conf": "setting=1\n"}
)

// imagesResult is the images phase's figures.
type imagesResult struct {
	rows  []*imageRow
	notes []string
}

type imageRow struct {
	name, command string
	skip          string
	samples       series
}

func (ir *imagesResult) row(name string) *imageRow {
	for _, r := range ir.rows {
		if r.name == name {
			return r
		}
	}
	return nil
}

// Row names.
const (
	iFlatPlain  = "--rootfs-tar, the flat tar"
	iOCIPlain   = "--image oci:, three plain layers"
	iFlatGzip   = "--rootfs-tar, the flat tar gzipped"
	iOCIGzip    = "--image oci:, three gzip layers"
	iUmoci      = "umoci unpack --rootless, then mkfs.ext4 -d: plain layers"
	iUmociGz    = "umoci unpack --rootless, then mkfs.ext4 -d: gzip layers"
	iPull       = "skopeo's pull, for scale: skopeo copy docker:// to oci: (tmpfs)"
	iDownload   = "download alone: ext4pack's own pull (imagesrc), the build left out"
	iBuild      = "build alone: --image oci: of the pulled layout"
	iPullBuild  = "pull and build: --image docker:// (local registry)"
	targetLayer = 1.3
)

// runImages builds the layouts and the flat tars in work and times every
// row, taking turns, c.rounds rounds.
func runImages(ctx context.Context, c config, work, debTar string, imageSize int64) (*imagesResult, error) {
	res := &imagesResult{}
	dir := filepath.Join(work, "images")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	flat := filepath.Join(dir, "flat.tar")
	layers, err := benchLayers(debTar, flat, dir)
	if err != nil {
		return nil, err
	}
	plain := filepath.Join(dir, "plain")
	if err := writeLayout(plain, "debian", layers, false); err != nil {
		return nil, err
	}
	gz := filepath.Join(dir, "gzip")
	if err := writeLayout(gz, "debian", layers, true); err != nil {
		return nil, err
	}
	flatGz := flat + ".gz"
	if err := gzipFile(flat, flatGz); err != nil {
		return nil, err
	}
	out := filepath.Join(dir, "out.ext4")
	image := func(args ...string) func(context.Context) (sample, error) {
		return func(ctx context.Context) (sample, error) {
			os.Remove(out)
			s, _, err := runProc(ctx, nil, c.bin, append([]string{"image", "--out", out}, args...)...)
			return s, err
		}
	}
	var runs []runner
	add := func(name, command, skip string, run func(context.Context) (sample, error)) {
		addRow(&res.rows, &runs, name, command, skip, run)
	}
	add(iFlatPlain, "ext4pack image --rootfs-tar FLAT.tar --out IMAGE", "", image("--rootfs-tar", flat))
	add(iOCIPlain, "ext4pack image --image oci:LAYOUT:debian --out IMAGE", "", image("--image", "oci:"+plain+":debian"))
	add(iFlatGzip, "ext4pack image --rootfs-tar FLAT.tar.gz --out IMAGE", "", image("--rootfs-tar", flatGz))
	add(iOCIGzip, "ext4pack image --image oci:GZLAYOUT:debian --out IMAGE", "", image("--image", "oci:"+gz+":debian"))

	umoci, errU := lookTool("umoci")
	mkfs, errM := lookTool("mkfs.ext4")
	skip := ""
	if errU != nil || errM != nil {
		skip = "umoci or mkfs.ext4 is not installed (apt-get install umoci e2fsprogs)"
	}
	sizeK := strconv.FormatInt(imageSize>>10, 10) + "k"
	umociRun := func(layout string) func(context.Context) (sample, error) {
		return func(ctx context.Context) (sample, error) {
			bundle := filepath.Join(dir, "bundle")
			defer os.RemoveAll(bundle)
			os.Remove(out)
			var total sample
			s, _, err := runProc(ctx, nil, umoci, "unpack", "--rootless", "--image", layout+":debian", bundle)
			if err != nil {
				return total, err
			}
			total.add(s)
			s, _, err = runProc(ctx, nil, mkfs, "-q", "-F", "-b", "4096", "-d", filepath.Join(bundle, "rootfs"), out, sizeK)
			total.add(s)
			return total, err
		}
	}
	add(iUmoci, "umoci unpack --rootless --image LAYOUT:debian BUNDLE; mkfs.ext4 -q -F -b 4096 -d BUNDLE/rootfs IMAGE "+sizeK, skip, umociRun(plain))
	add(iUmociGz, "the same on GZLAYOUT", skip, umociRun(gz))

	reg, stop, err := startBenchRegistry(ctx, dir)
	if err != nil {
		res.notes = append(res.notes, "registry rows skipped: "+err.Error())
		for _, n := range []string{iPull, iDownload, iBuild, iPullBuild} {
			add(n, "", err.Error(), nil)
		}
	} else {
		defer stop()
		skopeo, _ := lookTool("skopeo")
		ref := reg + "/bench/debian:gz"
		if _, _, err := runProc(ctx, nil, skopeo, "--insecure-policy", "copy", "--dest-tls-verify=false", "oci:"+gz+":debian", "docker://"+ref); err != nil {
			return nil, err
		}
		pulled := filepath.Join(dir, "pulled")
		add(iPull, "skopeo copy --src-tls-verify=false docker://127.0.0.1:PORT/bench/debian:gz oci:DIR:debian", "",
			func(ctx context.Context) (sample, error) {
				os.RemoveAll(pulled)
				s, _, err := runProc(ctx, nil, skopeo, "--insecure-policy", "copy", "--src-tls-verify=false", "docker://"+ref, "oci:"+pulled+":debian")
				return s, err
			})
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		// The spool of ext4pack's download, and the cache of its pull,
		// in the tmpfs; the cache emptied before each pull, so that each
		// is a first pull (issue 18's cache would make the later rounds
		// warm).
		spool := []string{"TMPDIR=" + filepath.Join(dir, "tmp")}
		if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o755); err != nil {
			return nil, err
		}
		add(iDownload, "bench download 127.0.0.1:PORT/bench/debian:gz (imagesrc.Open, then every layer's Layer.Open and imagesrc.Finish, as the build reads them, to io.Discard; the spool in the tmpfs)", "",
			func(ctx context.Context) (sample, error) {
				s, _, err := runProcEnv(ctx, spool, nil, self, "download", ref)
				return s, err
			})
		add(iBuild, "ext4pack image --image oci:DIR:debian --out IMAGE (the layout just pulled)", "",
			func(ctx context.Context) (sample, error) {
				if _, err := os.Stat(pulled); err != nil {
					if _, _, err := runProc(ctx, nil, skopeo, "--insecure-policy", "copy", "--src-tls-verify=false", "docker://"+ref, "oci:"+pulled+":debian"); err != nil {
						return sample{}, err
					}
				}
				return image("--image", "oci:"+pulled+":debian")(ctx)
			})
		cache := filepath.Join(dir, "cache")
		add(iPullBuild, "ext4pack image --image 127.0.0.1:PORT/bench/debian:gz --cache EMPTY --out IMAGE", "",
			func(ctx context.Context) (sample, error) {
				os.RemoveAll(cache)
				defer os.RemoveAll(cache)
				return image("--image", ref, "--cache", cache)(ctx)
			})
	}

	if err := takeTurns(ctx, c.rounds, "images", runs); err != nil {
		return nil, err
	}
	return res, nil
}

// benchLayer is one layer's tar, written to a file.
type benchLayer struct{ path string }

// benchLayers writes the two upper layers and the flat tar they give
// with the Debian tar as the base, and returns the three layers.
func benchLayers(debTar, flat, dir string) ([]benchLayer, error) {
	mtime := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	upper := func(name string, hs []*tar.Header, data map[string]string) (string, error) {
		var b bytes.Buffer
		tw := tar.NewWriter(&b)
		for _, h := range hs {
			h.ModTime = mtime
			h.Size = int64(len(data[h.Name]))
			if err := tw.WriteHeader(h); err != nil {
				return "", err
			}
			if _, err := io.WriteString(tw, data[h.Name]); err != nil {
				return "", err
			}
		}
		if err := tw.Close(); err != nil {
			return "", err
		}
		p := filepath.Join(dir, name)
		return p, os.WriteFile(p, b.Bytes(), 0o644)
	}
	var l2 []*tar.Header
	for _, d := range benchDeleted {
		l2 = append(l2, &tar.Header{Name: filepath.Dir(d) + "/.wh." + filepath.Base(d), Typeflag: tar.TypeReg, Mode: 0o644})
	}
	l2 = append(l2, &tar.Header{Name: "opt/app/", Typeflag: tar.TypeDir, Mode: 0o755},
		&tar.Header{Name: "opt/app/hello", Typeflag: tar.TypeReg, Mode: 0o644})
	p2, err := upper("layer2.tar", l2, benchAdded)
	if err != nil {
		return nil, err
	}
	p3, err := upper("layer3.tar", []*tar.Header{{Name: "etc/app.conf", Typeflag: tar.TypeReg, Mode: 0o640}}, benchAdded)
	if err != nil {
		return nil, err
	}

	// The flat tar: the base without what layer 2 deletes, then what
	// the upper layers add.
	in, err := os.Open(debTar)
	if err != nil {
		return nil, err
	}
	defer in.Close()
	f, err := os.Create(flat)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tw := tar.NewWriter(f)
	tr := tar.NewReader(in)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
		name := strings.TrimPrefix(strings.TrimPrefix(h.Name, "./"), "/")
		gone := false
		for _, d := range benchDeleted {
			if name == d || name == d+"/" || strings.HasPrefix(name, d+"/") {
				gone = true
			}
		}
		if gone {
			continue
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return nil, err
		}
	}
	for _, p := range []string{p2, p3} {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		tr := tar.NewReader(bytes.NewReader(b))
		for {
			h, err := tr.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, err
			}
			if strings.Contains(h.Name, ".wh.") {
				continue
			}
			if err := tw.WriteHeader(h); err != nil {
				return nil, err
			}
			if _, err := io.Copy(tw, tr); err != nil {
				return nil, err
			}
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return []benchLayer{{debTar}, {p2}, {p3}}, nil
}

// writeLayout writes an OCI layout at dir whose image tag holds layers,
// plain or gzip-compressed.
func writeLayout(dir, tag string, layers []benchLayer, gz bool) error {
	blobs := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobs, 0o755); err != nil {
		return err
	}
	put := func(src io.Reader) (string, int64, error) {
		tmp, err := os.CreateTemp(blobs, "tmp-")
		if err != nil {
			return "", 0, err
		}
		h := sha256.New()
		n, err := io.Copy(io.MultiWriter(tmp, h), src)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", 0, err
		}
		d := hex.EncodeToString(h.Sum(nil))
		return "sha256:" + d, n, os.Rename(tmp.Name(), filepath.Join(blobs, d))
	}
	type desc struct {
		MediaType   string            `json:"mediaType"`
		Digest      string            `json:"digest"`
		Size        int64             `json:"size"`
		Annotations map[string]string `json:"annotations,omitempty"`
	}
	var descs []desc
	var diffIDs []string
	for _, l := range layers {
		f, err := os.Open(l.path)
		if err != nil {
			return err
		}
		h := sha256.New()
		tee := io.TeeReader(f, h)
		src := tee
		mt := "application/vnd.oci.image.layer.v1.tar"
		if gz {
			mt += "+gzip"
			pr, pw := io.Pipe()
			go func() {
				zw := gzip.NewWriter(pw)
				_, err := io.Copy(zw, tee)
				if err == nil {
					err = zw.Close()
				}
				pw.CloseWithError(err)
			}()
			src = pr
		}
		d, n, err := put(src)
		f.Close()
		if err != nil {
			return err
		}
		descs = append(descs, desc{MediaType: mt, Digest: d, Size: n})
		diffIDs = append(diffIDs, "sha256:"+hex.EncodeToString(h.Sum(nil)))
	}
	js := func(v any) (desc, error) {
		b, err := json.Marshal(v)
		if err != nil {
			return desc{}, err
		}
		d, n, err := put(bytes.NewReader(b))
		return desc{Digest: d, Size: n}, err
	}
	cfg, err := js(map[string]any{"architecture": "amd64", "os": "linux", "rootfs": map[string]any{"type": "layers", "diff_ids": diffIDs}})
	if err != nil {
		return err
	}
	cfg.MediaType = "application/vnd.oci.image.config.v1+json"
	man, err := js(map[string]any{"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json", "config": cfg, "layers": descs})
	if err != nil {
		return err
	}
	man.MediaType = "application/vnd.oci.image.manifest.v1+json"
	man.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag}
	idx, err := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []desc{man}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "index.json"), idx, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

func gzipFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.Create(dst)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(out)
	_, err = io.Copy(zw, in)
	if err == nil {
		err = zw.Close()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// startBenchRegistry starts distribution's docker-registry on 127.0.0.1
// with its storage in dir, and returns HOST:PORT.
func startBenchRegistry(ctx context.Context, dir string) (string, func(), error) {
	bin, err := lookTool("docker-registry")
	if err != nil {
		return "", nil, fmt.Errorf("docker-registry is not installed (apt-get install docker-registry)")
	}
	if _, err := lookTool("skopeo"); err != nil {
		return "", nil, fmt.Errorf("skopeo is not installed (apt-get install skopeo)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	host := l.Addr().String()
	l.Close()
	cfg := filepath.Join(dir, "registry.yml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "registry"), host)), 0o644); err != nil {
		return "", nil, err
	}
	cmd := exec.CommandContext(ctx, bin, "serve", cfg)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() { cmd.Process.Kill(); cmd.Wait() }
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get("http://" + host + "/v2/")
		if err == nil {
			resp.Body.Close()
			return host, stop, nil
		}
		if time.Since(start) > 20*time.Second {
			stop()
			return "", nil, fmt.Errorf("docker-registry did not answer: %v", err)
		}
	}
}

// imagesTable writes the images phase's table and its targets.
func (r *report) imagesTable(b *bytes.Buffer) {
	p := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	ir := r.images
	p("### Container images: the Debian tar as three layers\n\n")
	if ir == nil {
		p("The images phase did not run (-skip images).\n\n")
		renderTargets(p, "target (issue 13)", r.imagesTargets())
		p("\n")
		return
	}
	p("The base layer is the Debian tar; layer 2 deletes /usr/share/doc and /var/lib/apt/lists (whiteouts) and adds a file; layer 3 adds a config file. The flat tar is what the three give, as one tar. All in the tmpfs; gzip at Go's default level.\n\n")
	p("| | wall (median) | min - max | CPU (median) | peak RSS |\n|---|---:|---:|---:|---:|\n")
	for _, row := range ir.rows {
		if row.skip != "" {
			p("| %s | skipped: %s | | | |\n", row.name, row.skip)
			continue
		}
		lo, hi := row.samples.minMax()
		p("| %s | %s | %s - %s | %s | %s |\n", row.name, secs(row.samples.wall()), secs(lo), secs(hi), secs(row.samples.cpu()), mib(row.samples.peakRSS()))
	}
	p("\nCommands:\n\n")
	for _, row := range ir.rows {
		if row.command != "" {
			p("- %s: `%s`\n", row.name, row.command)
		}
	}
	for _, n := range ir.notes {
		p("\n%s\n", n)
	}
	p("\n")
	renderTargets(p, "target (issue 13)", r.imagesTargets())
	p("\n")
}
