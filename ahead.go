package ext4pack

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/ext4pack/ext4pack/imagesrc"
	"github.com/ext4pack/ext4pack/internal/ctxio"
	"github.com/ext4pack/ext4pack/tarflat"
)

// maxAhead bounds how many gzip layers inflate ahead of the one being
// built. Each holds its blob's read-ahead (8 MiB), a 1 MiB input buffer,
// its decoder and 1 MiB of spool in memory, the rest of it on disk: one
// keeps `image --image` within SPEC's 96 MiB at any core count (two
// reached 107 MiB).
const maxAhead = 1

// aheadLayers opens the gzip layers after the one being built and
// inflates them on other cores (tarflat.Prefetch), into spools beside
// the image: the layers are still applied one at a time, in order, each
// checked as before (blob digest as it is read, diff_id as it is
// applied). It sits between the source (imagesrc's verified blob
// streams) and the build (tarflat.Layers): ordered streams in, ordered
// inflated streams out.
type aheadLayers struct {
	ctx    context.Context
	layers []imagesrc.Layer
	dir    string
	n      int          // how many layers may be ahead
	open   []*openLayer // by layer index; nil when not opened ahead
}

// openLayer is a layer whose blob is open, maybe inflating ahead.
type openLayer struct {
	rc  io.ReadCloser // the verified blob stream
	in  *counter      // counts rc's bytes, for progress
	pre *tarflat.Prefetched
	err error // opening it failed: reported when its turn comes
}

func newAheadLayers(ctx context.Context, layers []imagesrc.Layer, img *os.File) *aheadLayers {
	dir := filepath.Dir(img.Name())
	if img.Name() == "" {
		dir = os.TempDir()
	}
	return &aheadLayers{ctx: ctx, layers: layers, dir: dir, n: min(runtime.GOMAXPROCS(0)-1, maxAhead), open: make([]*openLayer, len(layers))}
}

// startAfter starts inflating the gzip layers after layer i, up to the
// bound, that are not started yet.
func (a *aheadLayers) startAfter(i int) {
	for j := i + 1; j < len(a.layers) && j <= i+a.n; j++ {
		l := a.layers[j]
		if a.open[j] != nil || !strings.Contains(string(l.MediaType), "gzip") {
			continue
		}
		rc, err := l.Open(a.ctx)
		if err != nil {
			a.open[j] = &openLayer{err: err}
			continue
		}
		in := &counter{r: ctxio.Reader{Ctx: a.ctx, R: rc}}
		a.open[j] = &openLayer{rc: rc, in: in, pre: tarflat.Prefetch(in, a.dir)}
	}
}

// take hands layer i over to the build: what was opened ahead, or nil.
func (a *aheadLayers) take(i int) *openLayer {
	ol := a.open[i]
	a.open[i] = nil
	return ol
}

// close stops what is still ahead (after an error): the goroutines, the
// spools and their files, the blobs.
func (a *aheadLayers) close() {
	for i, ol := range a.open {
		if ol != nil && ol.rc != nil {
			ol.pre.Close()
			ol.rc.Close()
		}
		a.open[i] = nil
	}
}
