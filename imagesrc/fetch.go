package imagesrc

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/ext4pack/ext4pack/blobstore"
)

// A registry's layers are fetched by a fetcher: every blob the cache
// lacks starts downloading at Open, into an ingest of the store (the
// cache, or a spool), on up to Jobs connections, the oldest layer's bytes
// first; big blobs as several ranges at once. The build reads each layer
// in order from its ingest as the bytes land (blobReader), and waits
// where they have not yet. A blob's digest runs on as its prefix
// completes (hashBlob): at the end it is committed to the store, or
// refused, before the reader sees its end. Blobs the cache holds are
// hashed once before they are read (checkCached): a corrupt one is
// removed and fetched again before the build has used a byte of it.
//
// Nothing is held in memory but a buffer a connection: the bytes ahead of
// the build wait in files.

// Defaults, and bounds, of the fetching options.
const (
	defaultJobs    = 6
	maxJobs        = 64
	defaultStall   = 30 * time.Second
	defaultPiece   = 16 << 20
	minPiece       = 64 << 10
	defaultTries   = 5
	defaultBackoff = 250 * time.Millisecond
	// waitPoll is how often a blob that another process is fetching is
	// looked for in the store.
	waitPoll = 100 * time.Millisecond
)

// The options' values, or their defaults where unset (Open's check has
// refused the negative ones).
func (o Options) jobs() int              { return cmp.Or(o.Jobs, defaultJobs) }
func (o Options) stall() time.Duration   { return cmp.Or(o.StallTimeout, defaultStall) }
func (o Options) pieceSize() int64       { return cmp.Or(o.PieceSize, defaultPiece) }
func (o Options) tries() int             { return cmp.Or(o.Tries, defaultTries) }
func (o Options) backoff() time.Duration { return cmp.Or(o.Backoff, defaultBackoff) }

// check checks the fetching options' values.
func (o Options) check() error {
	switch {
	case o.Jobs < 0 || o.Jobs > maxJobs:
		return fmt.Errorf("jobs %d: out of range 1..%d", o.Jobs, maxJobs)
	case o.StallTimeout < 0:
		return fmt.Errorf("stall timeout %v: negative", o.StallTimeout)
	case o.PieceSize != 0 && o.PieceSize < minPiece:
		return fmt.Errorf("piece size %d: at least %d", o.PieceSize, minPiece)
	case o.Tries < 0:
		return fmt.Errorf("tries %d: negative", o.Tries)
	case o.Backoff < 0:
		return fmt.Errorf("backoff %v: negative", o.Backoff)
	case o.Pull < PullMissing || o.Pull > PullNever:
		return fmt.Errorf("pull policy %d: unknown", int(o.Pull))
	}
	return nil
}

// rangeSupport is what the registry was seen to do with a Range header.
type rangeSupport int

const (
	rangesUnknown rangeSupport = iota
	rangesYes                  // 206 Partial Content
	rangesNo                   // 200 and the whole blob
)

type blobState int

const (
	stateChecking blobState = iota // in the cache, being hashed
	stateWaiting                   // another process holds its ingest
	stateFetching                  // downloading into its ingest
	stateDone                      // verified and committed, or refused (verdict)
)

// fetcher downloads an image's layers. Its state is under mu; changed is
// closed, and replaced, at every change, for whoever waits on one.
type fetcher struct {
	r     *registry
	store *blobstore.Store
	spool string // the spool's directory, removed by close; "" for a cache
	o     Options

	ctx    context.Context
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	changed chan struct{}
	blobs   []*blob  // each distinct blob once, in layer order
	queue   []*piece // pieces no worker has taken yet, in order
	err     error    // the first failure: every reader returns it
	closed  bool
	ranges  rangeSupport
	probing bool // a piece of a split blob is in flight while ranges is unknown

	clientMu sync.Mutex
	client   *http.Client

	done, total atomic.Int64 // bytes downloaded, and to download
	// For tests: blob requests answered, tries after a failure, bytes
	// read past, and the last failures retried (under mu).
	requests, retries atomic.Int64
	skipped           atomic.Int64 // bytes read past: a resume that a 200 answered
	retried           []error
}

// blob is one layer blob.
type blob struct {
	index int    // in fetcher.blobs
	what  string // "layer 2 of 5 (sha256:...)"
	h     v1.Hash
	d     blobstore.Digest
	size  int64

	state   blobState
	cached  blobstore.ReaderAt // stateChecking, and done from the cache
	w       *blobstore.Writer  // stateFetching, and done from a download
	pieces  []*piece           // in order
	avail   int64              // [0, avail) can be read
	verdict error              // stateDone: nil, or why the blob is refused
}

// source is what the blob's bytes are read from.
func (b *blob) source() interface {
	ReadAt([]byte, int64) (int, error)
} {
	if b.w != nil {
		return b.w
	}
	return b.cached
}

// prefix is how far the blob's pieces are complete from its start.
func (b *blob) prefix() int64 {
	var n int64
	for _, p := range b.pieces {
		if p.start != n {
			break
		}
		n = p.reached
		if p.reached < p.end {
			break
		}
	}
	return n
}

// piece is a range of a blob, fetched on one connection at a time.
type piece struct {
	b                   *blob
	start, end, reached int64
	probe               bool // sent while ranges was unknown
	finished            bool // its worker is done with it
}

// startFetch plans the layers of im, from the cache or the registry,
// starts the downloads and points the layers' Open at them. Under
// PullNever a blob the cache lacks is an error naming it.
func startFetch(ctx context.Context, r *registry, im *Image, spool string) (*fetcher, error) {
	fctx, cancel := context.WithCancelCause(ctx)
	f := &fetcher{r: r, store: r.store, spool: spool, o: r.o, ctx: fctx, cancel: cancel, changed: make(chan struct{})}
	seen := map[v1.Hash]*blob{}
	var byLayer []*blob
	for _, l := range im.Layers {
		b := seen[l.Digest]
		if b == nil {
			b = &blob{index: len(f.blobs), what: l.String(), h: l.Digest, d: blobstore.Digest(l.Digest.String()), size: l.Size}
			if _, err := blobstore.ParseDigest(b.d.String()); err != nil || b.size < 0 {
				f.close()
				return nil, &Error{Layer: b.what, Err: fmt.Errorf("digest %s, size %d: only sha256 blobs of a known size are fetched", l.Digest, l.Size)}
			}
			seen[l.Digest] = b
			f.blobs = append(f.blobs, b)
		}
		byLayer = append(byLayer, b)
	}
	var fetch []*blob
	checking := false
	for _, b := range f.blobs {
		c, err := f.store.ReaderAt(b.d)
		if err == nil && c.Size() == b.size {
			b.cached, b.state = c, stateChecking
			checking = true
			continue
		}
		if err == nil {
			c.Close()
			f.warnf("%s: the cached blob %s is %d bytes, not %d: removed", b.what, f.store.Path(b.d), c.Size(), b.size)
			f.store.Delete(b.d)
		}
		if f.o.Pull == PullNever {
			f.close()
			return nil, &Error{Layer: b.what, Err: fmt.Errorf("blob %s is not in the cache (%s), and the pull policy never asks the registry", b.d, f.store.Dir())}
		}
		fetch = append(fetch, b)
		f.total.Add(b.size)
	}
	for _, b := range fetch {
		f.acquire(b)
	}
	if checking {
		f.goRun(f.checkCached)
	}
	for range f.o.jobs() {
		f.goRun(f.worker)
	}
	for i := range im.Layers {
		b := byLayer[i]
		im.Layers[i].checked = true
		im.Layers[i].open = func(ctx context.Context) (io.ReadCloser, int64, error) {
			return &blobReader{f: f, b: b, ctx: ctx}, b.size, nil
		}
	}
	return f, nil
}

// goRun runs fn on a goroutine that close waits for.
func (f *fetcher) goRun(fn func()) {
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		fn()
	}()
}

func (f *fetcher) warnf(format string, args ...any) {
	if f.o.Warn != nil {
		f.o.Warn(fmt.Sprintf(format, args...))
	}
}

// broadcast wakes whoever waits for a change. Call with mu held.
func (f *fetcher) broadcast() {
	close(f.changed)
	f.changed = make(chan struct{})
}

// waitLocked waits, with mu held, for the next change; false when the
// fetcher stops meanwhile.
func (f *fetcher) waitLocked() bool {
	ch := f.changed
	f.mu.Unlock()
	defer f.mu.Lock()
	select {
	case <-ch:
		return true
	case <-f.ctx.Done():
		return false
	}
}

// fail records the first failure, which every reader then returns, and
// stops every download: the image cannot be built.
func (f *fetcher) fail(err error) {
	f.mu.Lock()
	if f.err == nil {
		f.err = err
	}
	f.broadcast()
	f.mu.Unlock()
	f.cancel(err)
}

// acquire takes the blob's ingest and queues its pieces, or, when
// another process holds it, waits for that process's blob.
func (f *fetcher) acquire(b *blob) {
	w, err := f.store.Writer(b.d.String())
	if err == nil && f.committedMeanwhile(b, w) {
		return
	}
	switch {
	case errors.Is(err, blobstore.ErrLocked):
		f.mu.Lock()
		b.state = stateWaiting
		f.mu.Unlock()
		f.goRun(func() { f.waitOther(b) })
	case err != nil:
		f.fail(&Error{Layer: b.what, Err: err})
	default:
		f.startFetching(b, w)
	}
}

// startFetching plans the blob's pieces and queues them.
func (f *fetcher) startFetching(b *blob, w *blobstore.Writer) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		w.Close()
		return
	}
	b.w, b.state = w, stateFetching
	b.pieces = f.plan(b)
	b.avail = b.prefix()
	f.queue = append(f.queue, b.pieces...)
	slices.SortStableFunc(f.queue, func(x, y *piece) int {
		if x.b.index != y.b.index {
			return x.b.index - y.b.index
		}
		return cmp.Compare(x.start, y.start)
	})
	f.broadcast()
	// Not closed, under mu: close's Wait comes after this Add.
	f.goRun(func() { f.hashBlob(b) })
}

// plan splits a blob into pieces: one, unless it is over twice the piece
// size and the registry is not known to ignore ranges. The last piece
// takes a short tail rather than leave a range of its own for it.
func (f *fetcher) plan(b *blob) []*piece {
	size, ps := b.size, f.o.pieceSize()
	if size <= 2*ps || f.ranges == rangesNo {
		return []*piece{{b: b, start: 0, end: size}}
	}
	var out []*piece
	for off := int64(0); off < size; {
		end := off + ps
		if size-end < ps/2 {
			end = size
		}
		out = append(out, &piece{b: b, start: off, end: end, reached: off})
		off = end
	}
	return out
}

// waitOther waits for a blob whose ingest another process holds: for it
// to appear in the store, or for the ingest to be free (that process
// failed or stopped), then fetches it here.
func (f *fetcher) waitOther(b *blob) {
	t := time.NewTicker(waitPoll)
	defer t.Stop()
	for {
		select {
		case <-f.ctx.Done():
			return
		case <-t.C:
		}
		if c, err := f.store.ReaderAt(b.d); err == nil {
			f.total.Add(-b.size)
			f.mu.Lock()
			b.cached, b.state = c, stateChecking
			f.mu.Unlock()
			f.checkOne(b)
			return
		}
		w, err := f.store.Writer(b.d.String())
		if errors.Is(err, blobstore.ErrLocked) {
			continue
		}
		if err != nil {
			f.fail(&Error{Layer: b.what, Err: err})
			return
		}
		if !f.committedMeanwhile(b, w) {
			f.startFetching(b, w)
		}
		return
	}
}

// committedMeanwhile handles a blob whose ingest was just taken: if
// another process committed the blob between our look in the store and
// the taking (its ingest then is a new file, free), the ingest is let go
// and the committed blob checked and read instead of fetched again.
func (f *fetcher) committedMeanwhile(b *blob, w *blobstore.Writer) bool {
	c, err := f.store.ReaderAt(b.d)
	if err != nil {
		return false
	}
	w.Close()
	f.total.Add(-b.size)
	f.mu.Lock()
	b.cached, b.state = c, stateChecking
	f.mu.Unlock()
	f.goRun(func() { f.checkOne(b) })
	return true
}

// progress is the bytes downloaded and to download.
func (f *fetcher) progress() (done, total int64) {
	return f.done.Load(), f.total.Load()
}

var errClosed = errors.New("imagesrc: the image was closed")

// close stops the downloads, waits for them, removes what was not
// committed (Writer.Close does) and the spool.
func (f *fetcher) close() error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	f.broadcast()
	f.mu.Unlock()
	f.cancel(errClosed)
	f.wg.Wait()
	f.r.touchSmall()
	var errs []error
	for _, b := range f.blobs {
		if b.w != nil {
			errs = append(errs, b.w.Close())
		}
		if b.cached != nil {
			b.cached.Close()
		}
	}
	if f.spool != "" {
		errs = append(errs, os.RemoveAll(f.spool))
	}
	return errors.Join(errs...)
}
