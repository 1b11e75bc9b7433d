// Package ext4pack turns a container's root filesystem into a bootable
// ext4 root disk and a microVM image bundle, in one process and one pass,
// in pure Go: no e2fsprogs, no daemon, no root, no loop device. It is the
// library behind the ext4pack command, for Go programs (such as banger)
// that build images in-process.
//
// The input is a Source: a rootfs tar (`docker export` style; plain, gzip
// or zstd) or a container image reference (a registry, an OCI layout, a
// `docker save` archive). Build streams it into an image file: the tar,
// or the image's layers oldest first, go through tarflat into ext4w,
// which writes the image, and for a bundle the guest files are added
// before the image is closed. WriteBundle then packs the image with its
// manifest into a .tar.zst. BuildImage and MakeBundle do it all on paths,
// leaving nothing behind on failure or when ctx is cancelled. Inspect
// reads an image or a bundle back.
//
//	rootfs tar | image layers -> tarflat -> ext4w -> guest files -> bundle
package ext4pack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/imagesrc"
	"github.com/ext4pack/ext4pack/internal/asynchash"
	"github.com/ext4pack/ext4pack/internal/ctxio"
	"github.com/ext4pack/ext4pack/tarflat"
)

// Version is ext4pack's version: it goes into bundles' manifests and into
// the hash the image's UUID is derived from. Release builds stamp it with
// -ldflags "-X github.com/ext4pack/ext4pack.Version=...".
var Version = "0.1.0-dev"

// Source is what an image is built from: exactly one of TarPath, Tar and
// Image.
type Source struct {
	// TarPath is a rootfs tar file, opened when the options have been
	// checked and the output file made, and closed before Build returns.
	// It names the input in messages and gives the total for progress.
	TarPath string

	// Tar is a rootfs tar stream: plain, gzip or zstd, told by its magic
	// bytes. TarName names it in messages ("rootfs.tar", "standard
	// input"), and TarSize is its length, for progress (0: unknown).
	// Tar is not closed. A Tar that is not a regular file (a pipe,
	// standard input) is read on a goroutine of its own, so that a
	// cancelled ctx ends a read that waits for a writer that stalls.
	Tar     io.Reader
	TarName string
	TarSize int64

	// Image is a container image reference: docker://HOST/REPO[:TAG|@DIGEST]
	// or a bare reference (alpine:3.20), oci:DIR[:TAG],
	// oci-archive:FILE[:TAG] or docker-archive:FILE[:REF].
	Image string
	// Platform picks from a multi-platform image: os/arch[/variant].
	// Empty: linux and Options.Arch, else the host's arch.
	Platform string
}

func (s Source) name() string {
	switch {
	case s.Image != "":
		return s.Image
	case s.TarPath != "":
		return s.TarPath
	case s.TarName != "":
		return s.TarName
	}
	return "the rootfs tar"
}

// check reports a Source that is not exactly one of its three kinds.
func (s Source) check() error {
	n := 0
	for _, set := range []bool{s.TarPath != "", s.Tar != nil, s.Image != ""} {
		if set {
			n++
		}
	}
	if n != 1 {
		return errors.New("ext4pack: a source needs exactly one of a tar file, a tar stream and an image reference")
	}
	return nil
}

// open returns the tar stream of a tar source, opening TarPath, and what
// closes it.
func (s Source) open() (io.Reader, int64, func(), error) {
	if s.TarPath == "" {
		return s.Tar, s.TarSize, func() {}, nil
	}
	f, err := os.Open(s.TarPath)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("rootfs tar: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, fmt.Errorf("rootfs tar: %w", err)
	}
	if st.IsDir() {
		f.Close()
		return nil, 0, nil, fmt.Errorf("rootfs tar %s is a directory", s.TarPath)
	}
	var size int64
	if st.Mode().IsRegular() {
		size = st.Size()
	}
	return f, size, func() { f.Close() }, nil
}

// Options shape the image. The zero value is a usable default: the image
// is sized from the content, with mke2fs's inode ratio, a UUID derived
// from the input, and no guest files.
type Options struct {
	// Size is the image size in bytes, a multiple of 4096 from MinSize to
	// MaxSize. 0: 1.5 times what the content needs, at least 64 MiB. Too
	// small for the content is a *SizeError.
	Size int64
	// Inodes is the inode count. 0: 1.5 times the entries, and at least
	// one per 16 KiB. Too few is a *SizeError that is also
	// ErrTooManyInodes.
	Inodes uint64
	// Label is the volume label, at most 16 bytes.
	Label string
	// UUID is the filesystem UUID. Nil: derived from a hash of the input,
	// so that equal input gives an equal image.
	UUID *[16]byte
	// Epoch is SOURCE_DATE_EPOCH: the time of the entries ext4pack makes
	// itself and of the superblock. Nil: the newest mtime of the input,
	// and 0 for the superblock.
	Epoch *time.Time

	// Arch is the architecture wanted: "x86_64" or "aarch64" (amd64 and
	// arm64 are accepted). It picks an image's platform, and a bundle's
	// arch; an input whose executables or config say otherwise is an
	// error. Empty: the input's own, else the host's.
	Arch string

	// Bundle, when set, makes the image a bundle's: its arch and distro
	// are settled, the guest files are added, and an image's config is
	// written for the guest's init. WriteBundle needs it.
	Bundle *BundleOptions

	// Fetch says how a registry's image is fetched and cached.
	Fetch FetchOptions

	// Warn receives warnings, one line each without a newline. Nil: dropped.
	Warn func(msg string)
	// Progress receives progress reports, often: it should be cheap. It
	// is called from one goroutine at a time. Nil: none.
	Progress func(Progress)
	// ImageBuilt, when set, is called by MakeBundle once the image is
	// built and before it is packed, with what was learnt: a caller can
	// say what was found (the image's platform, the guest init) while
	// the bundle is written. Nil: not called.
	ImageBuilt func(*Built)
}

// Progress is how far a build or a bundle has come.
type Progress struct {
	// Stage says what is being done: "reading rootfs.tar", "layer 2 of 3",
	// "hashing", "compressing".
	Stage string
	// Done and Total count bytes of the whole job's input; Total is 0
	// when it is not known (a tar on a pipe). For an image, the layers'
	// bytes built so far, and in all.
	Done, Total int64
	// Fetched and FetchTotal count the bytes of a registry's image
	// downloaded so far and to download (the cached blobs not counted):
	// the download runs ahead of the build. Both 0 for other sources.
	Fetched, FetchTotal int64
}

// Built describes an image Build wrote.
type Built struct {
	// Info is what the input told about itself: entry counts, distro,
	// arch, init system.
	Info tarflat.Info
	// Arch and Distro are the bundle's (Options.Bundle set): x86_64 or
	// aarch64, and the os-release ID unless BundleOptions.Distro says.
	Arch, Distro string
	// Image is the container image read, for an image source.
	Image *ImageSource
	// GuestInit is the init system the guest files were installed for.
	GuestInit string
	// RootfsGrows says the guest grows / to its disk at boot: guest files
	// without BundleOptions.NoGrow.
	RootfsGrows bool
	// GuestMessage is one line naming the init found and how the guest
	// services start under it, for the user ("ext4pack: guest init: ...").
	GuestMessage string
	// Time is the time of the entries ext4pack made itself: Epoch, else
	// the input's newest mtime. Bundles' members take it too.
	Time time.Time

	bundle      *BundleOptions
	imageConfig []byte // the image config's "config" object, for the guest init
}

// ImageSource is the container image an image was built from.
type ImageSource struct {
	Ref      string // as given
	Digest   string // the image manifest's digest; empty for a legacy docker save archive
	Platform string // os/arch[/variant] of its config
	Layers   int
}

// Build writes the image of src to img, an empty file, and returns what
// it learnt. It does not close img. On error, img holds garbage: remove
// it. Errors about one tar entry are *tarflat.EntryError; a fixed Size
// that is too small is a *SizeError saying how much is needed. Once ctx
// is done, Build stops at its next read of the input and returns an error
// that wraps ctx.Err().
func Build(ctx context.Context, src Source, img *os.File, o Options) (*Built, error) {
	o, err := prepare(src, o)
	if err != nil {
		return nil, err
	}
	return build(ctx, src, img, o)
}

// prepare checks src and o before any file is made: the arch's
// spelling, and the bundle's options (BundleOptions.Check, the one call
// of it). It returns o with the arch normalized.
func prepare(src Source, o Options) (Options, error) {
	if err := src.check(); err != nil {
		return o, err
	}
	if o.Arch != "" {
		a, ok := NormalizeArch(o.Arch)
		if !ok {
			return o, fmt.Errorf("ext4pack: arch %q: use x86_64 (or amd64) or aarch64 (or arm64)", o.Arch)
		}
		o.Arch = a
	}
	if o.Bundle != nil {
		if err := o.Bundle.Check(); err != nil {
			return o, err
		}
	}
	if err := o.Fetch.check(); err != nil {
		return o, err
	}
	return o, nil
}

// build is Build once prepare has checked src and o.
func build(ctx context.Context, src Source, img *os.File, o Options) (*Built, error) {
	w, err := ext4w.NewWriter(img, writerOptions(o)...)
	if err != nil {
		return nil, err
	}
	b := &Built{bundle: o.Bundle}
	if src.Image != "" {
		err = buildFromImage(ctx, src, img, w, o, b)
	} else {
		err = buildFromTar(ctx, src, w, o, b)
	}
	if err == nil && o.Bundle != nil {
		err = finishBundleImage(w, o, b)
	}
	if err != nil {
		w.Abort()
		return nil, err
	}
	// Close lays out all metadata while the whole tree is in memory, and
	// its buffers come on top: collecting more often from here keeps the
	// peak near the live tree (a few percent of CPU, at the end only).
	defer tightenGC(25)()
	if err := w.Close(); err != nil {
		return nil, err
	}
	return b, nil
}

// writerOptions turns Options into ext4w's, with the salt that makes the
// derived UUID depend on the options and the version as well as the input.
func writerOptions(o Options) []ext4w.Option {
	var opts []ext4w.Option
	salt := []string{"ext4pack " + Version}
	if o.Size != 0 {
		opts = append(opts, ext4w.WithSize(o.Size))
	}
	if o.Inodes != 0 {
		opts = append(opts, ext4w.WithInodes(o.Inodes))
	}
	if o.Label != "" {
		opts = append(opts, ext4w.WithLabel(o.Label))
	}
	if o.UUID != nil {
		opts = append(opts, ext4w.WithUUID(*o.UUID))
	}
	if o.Epoch != nil {
		opts = append(opts, ext4w.WithDefaultTime(*o.Epoch), ext4w.WithSuperblockTime(*o.Epoch))
		salt = append(salt, fmt.Sprintf("epoch=%d", o.Epoch.Unix()))
	}
	// The same fields, in the same form, as ext4pack has always salted
	// with, so that equal flags keep giving equal images.
	size, inodes := "", ""
	if o.Size != 0 {
		size = fmt.Sprint(o.Size)
	}
	if o.Inodes != 0 {
		inodes = fmt.Sprint(o.Inodes)
	}
	salt = append(salt, "size="+size, "inodes="+inodes, "label="+o.Label)
	opts = append(opts, ext4w.WithSalt([]byte(strings.Join(salt, "\x00"))))
	opts = append(opts, ext4w.WithWarn(o.warn))
	return opts
}

func (o Options) warn(m string) {
	if o.Warn != nil {
		o.Warn(m)
	}
}

func (o Options) progress(p Progress) {
	if o.Progress != nil {
		o.Progress(p)
	}
}

// buildFromTar streams a rootfs tar into w.
func buildFromTar(ctx context.Context, src Source, w *ext4w.Writer, o Options, b *Built) error {
	tar, size, closeTar, err := src.open()
	if err != nil {
		return err
	}
	defer closeTar()
	// A read that waits for a stalled writer ends when ctx is done.
	tr := ctxio.NewReader(ctx, tar)
	defer tr.Close()
	stage := "reading " + src.name()
	in := &counter{r: tr}
	in.start(func(n int64) {
		o.progress(Progress{Stage: stage, Done: n, Total: size})
	})
	r := tarflat.NewReader(in, tarflat.WithWarn(o.warn))
	defer r.Close()
	info, err := tarflat.Copy(w, r)
	if err != nil {
		return fmt.Errorf("%s: %w", src.name(), err)
	}
	b.Info = info
	return nil
}

// buildFromImage streams an image's layers, oldest first, into w. Each
// blob's size and digest, and each layer's diff_id, are checked as it
// streams; a mismatch names the layer.
func buildFromImage(ctx context.Context, src Source, img *os.File, w *ext4w.Writer, o Options, b *Built) error {
	iopts, err := o.Fetch.imageOptions(src.Image, o.warn)
	if err != nil {
		return err
	}
	iopts.Platform, iopts.Arch, iopts.UserAgent = src.Platform, o.Arch, "ext4pack/"+Version
	if fetchTune != nil {
		fetchTune(&iopts)
	}
	im, err := imagesrc.Open(ctx, src.Image, iopts)
	if err != nil {
		return err
	}
	defer im.Close()
	b.Image = &ImageSource{Ref: src.Image, Digest: im.Digest, Platform: im.Platform.String(), Layers: len(im.Layers)}
	if o.Bundle != nil {
		arch, ok := NormalizeArch(im.Platform.Architecture)
		switch {
		case !ok:
			return fmt.Errorf("image %s is %s; a bundle is x86_64 or aarch64", src.Image, im.Platform)
		case o.Arch != "" && o.Arch != arch:
			return fmt.Errorf("--arch %s contradicts the image: its config says %s", o.Arch, im.Platform)
		}
		b.Arch = arch
	}
	rep := &imageProgress{o: o, im: im}
	for _, l := range im.Layers {
		rep.total += max(l.Size, 0)
	}
	defer rep.tick()()
	// A layered build holds fixed buffers of some 40 MB beside the tree:
	// each open blob's read-ahead, the layer inflating ahead, ext4w's data
	// queue, the diff_id hashes. The default percentage grants garbage in
	// proportion to all of it, which put peaks at 92-96 MiB on a 1 GB
	// image (SPEC's bound is 96 MiB); 25 keeps them near 80. The buffers
	// hold no pointers, so the extra collections only mark the tree: no
	// measurable CPU on that image (BENCHMARKS.md, issue 21's phase).
	defer tightenGC(25)()
	layers := tarflat.NewLayers(w)
	ahead := newAheadLayers(ctx, im.Layers, img)
	defer ahead.close()
	for i, l := range im.Layers {
		ahead.startAfter(i)
		if err := addLayer(ctx, layers, l, ahead.take(i), o, rep); err != nil {
			return fmt.Errorf("image %s: %w", src.Image, err)
		}
	}
	b.Info = layers.Info()
	if o.Bundle != nil {
		cfg, err := im.ContainerConfig()
		if err != nil {
			return fmt.Errorf("image %s: %w", src.Image, err)
		}
		b.imageConfig = cfg
	}
	return nil
}

// fetchTune, when set (tests), adjusts the options of a registry's fetch.
var fetchTune func(*imagesrc.Options)

// imageProgress reports an image's build, and its download: from the
// build's reads, and, while a registry's download is under way, ten times
// a second, since the build may be waiting for bytes that are not there
// yet.
type imageProgress struct {
	o     Options
	im    *imagesrc.Image
	mu    sync.Mutex
	stage string
	done  int64 // layer bytes built, of total
	total int64
}

// built is how many layer bytes the build has read.
func (p *imageProgress) built() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done
}

func (p *imageProgress) set(stage string, done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stage, p.done = stage, done
	p.reportLocked()
}

func (p *imageProgress) reportLocked() {
	if p.o.Progress == nil {
		return
	}
	f, ft := p.im.Fetched()
	p.o.Progress(Progress{Stage: p.stage, Done: p.done, Total: p.total, Fetched: f, FetchTotal: ft})
}

// tick reports ten times a second while the download runs, until the
// function it returns is called.
func (p *imageProgress) tick() (stop func()) {
	if p.o.Progress == nil {
		return func() {}
	}
	quit, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			if f, ft := p.im.Fetched(); ft == 0 || f >= ft {
				continue
			}
			p.mu.Lock()
			if p.stage != "" {
				p.reportLocked()
			}
			p.mu.Unlock()
		}
	}()
	return func() {
		close(quit)
		<-exited
	}
}

// addLayer streams one layer into layers and checks it. ol is the layer
// as opened ahead (inflating on another core), or nil.
func addLayer(ctx context.Context, layers *tarflat.Layers, l imagesrc.Layer, ol *openLayer, o Options, rep *imageProgress) error {
	if ol == nil {
		rc, err := l.Open(ctx)
		if err != nil {
			return err
		}
		ol = &openLayer{rc: rc, in: &counter{r: ctxio.Reader{Ctx: ctx, R: rc}}}
	}
	if ol.err != nil {
		return ol.err
	}
	rc, in := ol.rc, ol.in
	defer rc.Close()
	stage := l.String()
	base := rep.built()
	in.start(func(n int64) { rep.set(stage, base+n) })
	if l.DiffID.Algorithm != "sha256" {
		return fmt.Errorf("%s: diff_id %s: only sha256 is checked", l, l.DiffID)
	}
	opts := []tarflat.Option{tarflat.WithWarn(o.warn)}
	// An uncompressed blob's digest is its diff_id, which the blob's own
	// check then covers: one hash, not two.
	var h *asynchash.Hash
	if l.Digest != l.DiffID {
		h = asynchash.New(sha256.New())
		defer h.Close()
		opts = append(opts, tarflat.WithDigest(h))
	}
	var src io.Reader = in
	if ol.pre != nil {
		src = ol.pre
	}
	r := tarflat.NewReader(src, opts...)
	err := layers.Add(r)
	r.Close()
	// The blob's own check first: a tampered blob often breaks its
	// compression too, and its digest says why.
	if ferr := imagesrc.Finish(rc); ferr != nil {
		return ferr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", l, err)
	}
	if h == nil {
		return nil
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != l.DiffID.Hex {
		return fmt.Errorf("%s: the uncompressed layer's sha256 is %s, the config's diff_id says %s (tampered with or corrupt)", l, got, l.DiffID.Hex)
	}
	return nil
}

// tightenGC lowers the GC percentage to at most pct, unless collection is
// off, and returns what restores it.
func tightenGC(pct int) (restore func()) {
	old := debug.SetGCPercent(pct)
	if old < 0 || old < pct {
		debug.SetGCPercent(old)
	}
	return func() { debug.SetGCPercent(old) }
}

// counter reports the bytes read through it, once started. A layer
// inflating ahead is read on another goroutine before its turn: it
// reports from its turn on (start); the lock keeps the reports, made by
// that goroutine and by start, one at a time.
type counter struct {
	r      io.Reader
	mu     sync.Mutex
	n      int64
	report func(int64)
}

func (c *counter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.mu.Lock()
	c.n += int64(n)
	if c.report != nil {
		c.report(c.n)
	}
	c.mu.Unlock()
	return n, err
}

// start makes c report to f, first what was read so far.
func (c *counter) start(f func(int64)) {
	c.mu.Lock()
	c.report = f
	f(c.n)
	c.mu.Unlock()
}
