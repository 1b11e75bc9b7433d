package imagesrc

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ext4pack/ext4pack/blobstore"
)

// copyBufSize is a connection's buffer, and the step in which the bytes
// it brings become readable.
const copyBufSize = 256 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}

// errStalled is the cause of a connection dropped for bringing nothing.
var errStalled = errors.New("stalled")

// worker takes the pieces in order and fetches each, until none is left
// or will come.
func (f *fetcher) worker() {
	for {
		p := f.take()
		if p == nil {
			return
		}
		err := f.fetchPiece(p)
		f.mu.Lock()
		p.finished = true
		if p.probe {
			p.probe, f.probing = false, false
		}
		f.broadcast()
		f.mu.Unlock()
		if err != nil {
			f.fail(err)
			return
		}
	}
}

// take returns the first piece no worker has, waiting for one while a
// blob may still turn into pieces (a cached blob being checked, a blob
// another process fetches); nil when there is nothing more to do. While
// nobody knows whether the registry honours ranges, one piece of a split
// blob goes at a time: its answer tells.
func (f *fetcher) take() *piece {
	f.mu.Lock()
	defer f.mu.Unlock()
	for {
		if f.err != nil || f.closed {
			return nil
		}
		for i, p := range f.queue {
			if len(p.b.pieces) > 1 && f.ranges == rangesUnknown {
				if f.probing {
					continue
				}
				f.probing, p.probe = true, true
			}
			f.queue = slices.Delete(f.queue, i, i+1)
			return p
		}
		more := false
		for _, b := range f.blobs {
			if b.state == stateChecking || b.state == stateWaiting {
				more = true
			}
		}
		if f.probing {
			more = true // the probe may fail and put its split blob's pieces back in play
		}
		if !more {
			return nil
		}
		if !f.waitLocked() {
			return nil
		}
	}
}

// fetchPiece fetches a piece, resuming it from the byte it reached after
// a dropped, failed or stalled connection. A try that brought bytes is
// resumed at once; tries that bring nothing wait, longer each time, and
// Tries of them in a row give up.
func (f *fetcher) fetchPiece(p *piece) error {
	failures := 0
	for {
		n, err := f.attempt(p)
		if err == nil {
			// Complete, unless a merge moved its end on meanwhile.
			f.mu.Lock()
			done := p.reached >= p.end
			p.finished = done
			f.mu.Unlock()
			if done {
				return nil
			}
			continue
		}
		if f.ctx.Err() != nil {
			return nil // closed, or another blob failed: not this piece's failure
		}
		f.mu.Lock()
		at := p.reached
		f.mu.Unlock()
		if !retryableFetch(err) {
			return &Error{Layer: p.b.what, Err: fmt.Errorf("fetching the blob at byte %d of %d: %w", at, p.b.size, err)}
		}
		if n > 0 {
			failures = 0
		}
		failures++
		if failures >= f.o.tries() {
			return &Error{Layer: p.b.what, Err: fmt.Errorf("fetching the blob failed at byte %d of %d, %d tries in a row: %w", at, p.b.size, failures, err)}
		}
		f.retries.Add(1)
		f.mu.Lock()
		if len(f.retried) < 64 {
			f.retried = append(f.retried, err)
		}
		f.mu.Unlock()
		if n > 0 {
			continue
		}
		select {
		case <-time.After(f.o.backoff() << (failures - 1)):
		case <-f.ctx.Done():
			return nil
		}
	}
}

// protocolError is a registry's answer, or a local failure, that no
// retry will mend.
type protocolError struct{ err error }

func (e *protocolError) Error() string { return e.err.Error() }
func (e *protocolError) Unwrap() error { return e.err }

// sizeError is a registry that serves a blob of another size than the
// manifest's: cut short, or tampered with.
func sizeError(served, size int64) error {
	return &protocolError{fmt.Errorf("%w: the registry serves %d bytes, the manifest says %d (truncated or tampered with); not cached", ErrDigest, served, size)}
}

// statusError is an HTTP status other than 200 and 206.
type statusError struct {
	code int
	body string
}

func (e *statusError) Error() string {
	if e.body != "" {
		return fmt.Sprintf("the registry answered %s: %s", http.StatusText(e.code), e.body)
	}
	return "the registry answered " + http.StatusText(e.code)
}

// retryableFetch tells the failures worth another try: all but a
// registry's refusal (a 4xx other than 408 and 429), an answer no retry
// mends, and a name that does not resolve. Connections fail in more ways
// than net/http names (refused, reset, dropped, stalled, "server closed
// idle connection"), and the tries are bounded.
func retryableFetch(err error) bool {
	var se *statusError
	var pe *protocolError
	var dns *net.DNSError
	switch {
	case errors.As(err, &pe):
		return false
	case errors.As(err, &se):
		return se.code >= 500 || se.code == http.StatusRequestTimeout || se.code == http.StatusTooManyRequests
	case errors.As(err, &dns):
		return dns.IsTemporary || dns.IsTimeout
	}
	return true
}

// httpClient is the authenticated client, made at the first request.
func (f *fetcher) httpClient(ctx context.Context) (*http.Client, error) {
	f.clientMu.Lock()
	defer f.clientMu.Unlock()
	if f.client != nil {
		return f.client, nil
	}
	c, err := f.r.blobClient(ctx)
	if err != nil {
		return nil, err
	}
	f.client = c
	return c, nil
}

// attempt makes one request for the rest of a piece and writes what
// comes to the ingest. It returns how many bytes it brought, and nil
// once the piece is complete.
func (f *fetcher) attempt(p *piece) (int64, error) {
	f.mu.Lock()
	from, end, size := p.reached, p.end, p.b.size
	f.mu.Unlock()
	if from >= end {
		return 0, nil
	}
	ctx, cancel := context.WithCancelCause(f.ctx)
	defer cancel(nil)
	stall := f.o.stall()
	timer := time.AfterFunc(stall, func() { cancel(fmt.Errorf("%w: no byte for %v", errStalled, stall)) })
	defer timer.Stop()
	// why prefers the stall, or the fetcher's stop, to the "context
	// canceled" that the transport reports for it.
	why := func(err error) error {
		if c := context.Cause(ctx); c != nil {
			return c
		}
		return err
	}

	client, err := f.httpClient(ctx)
	if err != nil {
		return 0, why(err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.r.blobURL(p.b.h), nil)
	if err != nil {
		return 0, &protocolError{err}
	}
	ranged := from > 0 || end < size
	if ranged {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-%d", from, end-1))
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // not the URL again
		}
		return 0, fmt.Errorf("no answer: %w", why(err))
	}
	defer resp.Body.Close()
	f.requests.Add(1)
	off := from // the blob offset of the body's next byte
	switch {
	case resp.StatusCode == http.StatusPartialContent && ranged:
		start, total, ok := contentRange(resp.Header.Get("Content-Range"))
		if !ok || start != from {
			return 0, &protocolError{fmt.Errorf("asked for the bytes from %d, the registry sent Content-Range %q", from, resp.Header.Get("Content-Range"))}
		}
		if total >= 0 && total != size {
			return 0, sizeError(total, size)
		}
		f.rangesKnown(rangesYes)
	case resp.StatusCode == http.StatusOK:
		// The whole blob, whatever was asked: the bytes before from are
		// read past, and the pieces not yet started are merged (below).
		if resp.ContentLength >= 0 && resp.ContentLength != size {
			return 0, sizeError(resp.ContentLength, size)
		}
		off = 0
		if ranged {
			f.rangesKnown(rangesNo)
		}
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		// Only a blob shorter than the manifest says has no byte from.
		_, total, ok := contentRange(resp.Header.Get("Content-Range"))
		if !ok {
			total = from
		}
		return 0, sizeError(total, size)
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return 0, &statusError{code: resp.StatusCode, body: strings.TrimSpace(string(body))}
	}
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var brought int64
	sawEOF := false
	for {
		f.mu.Lock()
		end = p.end // a merge may have moved it on
		f.mu.Unlock()
		if off >= end {
			break
		}
		k, rerr := resp.Body.Read(buf[:min(int64(len(buf)), end-off)])
		if k > 0 {
			timer.Reset(stall)
			data, at := buf[:k], off
			if skip := min(from-at, int64(k)); skip > 0 {
				data, at = data[skip:], at+skip
				f.skipped.Add(skip)
			}
			if len(data) > 0 {
				if _, err := p.b.w.WriteAt(data, at); err != nil {
					return brought, &protocolError{err} // a full disk: no retry mends it
				}
				brought += int64(len(data))
				f.done.Add(int64(len(data)))
				f.advance(p, at+int64(len(data)))
			}
			off += int64(k)
		}
		if rerr == io.EOF {
			if off < end {
				return brought, fmt.Errorf("the connection ended early: %w", io.ErrUnexpectedEOF)
			}
			sawEOF = true
			break
		}
		if rerr != nil {
			return brought, fmt.Errorf("the connection broke: %w", why(rerr))
		}
	}
	// Read the body's end, so that the connection serves the next request
	// (net/http usually hands it with the last bytes).
	if !sawEOF {
		resp.Body.Read(buf[:1])
	}
	return brought, nil
}

// contentRange reads "bytes FIRST-LAST/SIZE" (a 206), or "bytes */SIZE"
// (a 416): the first byte (-1 for "*") and the size (-1 for "*").
func contentRange(s string) (first, size int64, ok bool) {
	rest, ok := strings.CutPrefix(s, "bytes ")
	if !ok {
		return 0, 0, false
	}
	span, total, ok := strings.Cut(rest, "/")
	if !ok {
		return 0, 0, false
	}
	first, size = -1, -1
	if span != "*" {
		a, _, ok := strings.Cut(span, "-")
		n, err := strconv.ParseInt(a, 10, 64)
		if !ok || err != nil {
			return 0, 0, false
		}
		first = n
	}
	if total != "*" {
		n, err := strconv.ParseInt(total, 10, 64)
		if err != nil {
			return 0, 0, false
		}
		size = n
	}
	return first, size, true
}

// rangesKnown records what the registry did with a Range header. A
// registry that ignores ranges gets one connection a blob: each piece not
// yet started is merged into the one before it where that one is still
// in flight (it then reads on), and later blobs are not split.
func (f *fetcher) rangesKnown(r rangeSupport) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ranges == r {
		return
	}
	f.ranges = r
	f.probing = false
	if r == rangesNo {
		taken := func(p *piece) bool { return !slices.Contains(f.queue, p) }
		for _, b := range f.blobs {
			for i := 1; i < len(b.pieces); {
				prev, p := b.pieces[i-1], b.pieces[i]
				if taken(p) || prev.finished {
					i++
					continue
				}
				prev.end = p.end
				f.queue = slices.DeleteFunc(f.queue, func(x *piece) bool { return x == p })
				b.pieces = slices.Delete(b.pieces, i, i+1)
			}
		}
	}
	f.broadcast()
}

// advance records that a piece is complete up to to.
func (f *fetcher) advance(p *piece, to int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if to > p.reached {
		p.reached = to
	}
	if a := p.b.prefix(); a > p.b.avail {
		p.b.avail = a
		f.broadcast()
	}
}

// hashBlob runs a fetched blob's digest as its prefix completes, and at
// its end commits it to the store, or refuses it: the verdict its reader
// returns in place of io.EOF.
func (f *fetcher) hashBlob(b *blob) {
	var hashed int64
	for {
		f.mu.Lock()
		for b.avail == hashed && hashed < b.size {
			if !f.waitLocked() {
				f.mu.Unlock()
				return
			}
		}
		avail := b.avail
		f.mu.Unlock()
		if err := b.w.HashTo(avail); err != nil {
			f.fail(&Error{Layer: b.what, Err: err})
			return
		}
		hashed = avail
		if hashed < b.size {
			continue
		}
		err := b.w.Commit(b.size, b.d)
		var de *blobstore.DigestError
		if errors.As(err, &de) {
			err = fmt.Errorf("%w: the registry sent bytes whose sha256 is %s, its manifest says %s (tampered with or corrupt); not cached", ErrDigest, de.Got.Hex(), b.h)
		}
		if err != nil {
			err = &Error{Layer: b.what, Err: err}
		}
		f.mu.Lock()
		b.state, b.verdict = stateDone, err
		f.broadcast()
		f.mu.Unlock()
		if err != nil {
			f.fail(err)
		}
		return
	}
}

// checkCached hashes the cached blobs, in layer order, before they are
// read.
func (f *fetcher) checkCached() {
	for _, b := range f.blobs {
		f.mu.Lock()
		st := b.state
		f.mu.Unlock()
		if st == stateChecking && !f.checkOne(b) {
			return
		}
	}
}

// checkOne hashes a cached blob. A good one becomes readable; a corrupt
// one is removed from the cache, said, and fetched again (PullNever: an
// error). It returns false when the fetcher stops meanwhile.
func (f *fetcher) checkOne(b *blob) bool {
	h := sha256.New()
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := *bp
	var off int64
	var rerr error
	for off < b.size {
		if f.ctx.Err() != nil {
			return false
		}
		k, err := b.cached.ReadAt(buf[:min(int64(len(buf)), b.size-off)], off)
		h.Write(buf[:k])
		off += int64(k)
		if err != nil && off < b.size {
			rerr = err
			break
		}
	}
	got := hex.EncodeToString(h.Sum(nil))
	if rerr == nil && got == b.h.Hex {
		f.mu.Lock()
		b.state, b.avail = stateDone, b.size
		f.broadcast()
		f.mu.Unlock()
		return true
	}
	why := fmt.Sprintf("its sha256 is %s, not %s", got, b.h.Hex)
	if rerr != nil {
		why = fmt.Sprintf("reading it at byte %d: %v", off, rerr)
	}
	path := f.store.Path(b.d)
	f.mu.Lock()
	c := b.cached
	b.cached = nil
	f.mu.Unlock()
	c.Close()
	f.store.Delete(b.d)
	if f.o.Pull == PullNever {
		f.fail(&Error{Layer: b.what, Err: fmt.Errorf("%w: the cached blob %s is corrupt (%s), and the pull policy never asks the registry for it; removed from the cache", ErrDigest, path, why)})
		return false
	}
	f.warnf("%s: the cached blob %s is corrupt (%s): removed, fetching it again", b.what, path, why)
	f.total.Add(b.size)
	f.acquire(b)
	return true
}

// blobReader reads a layer's blob in order, as its bytes become
// readable, and ends with the blob's verdict: io.EOF once it is verified,
// else the error. Any failure of the image's downloads is returned at
// once: the build cannot finish.
type blobReader struct {
	f   *fetcher
	b   *blob
	ctx context.Context
	off int64
}

func (r *blobReader) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	f, b := r.f, r.b
	f.mu.Lock()
	for {
		switch {
		case f.err != nil:
			err := f.err
			f.mu.Unlock()
			return 0, err
		case r.off < b.avail:
			src, n := b.source(), min(int64(len(p)), b.avail-r.off)
			f.mu.Unlock()
			k, err := src.ReadAt(p[:n], r.off)
			r.off += int64(k)
			if k == 0 && err != nil {
				return 0, &Error{Layer: b.what, Err: fmt.Errorf("reading the downloaded blob: %w", err)}
			}
			return k, nil
		case b.state == stateDone && r.off >= b.size:
			v := b.verdict
			f.mu.Unlock()
			if v != nil {
				return 0, v
			}
			return 0, io.EOF
		case f.closed:
			f.mu.Unlock()
			return 0, &Error{Layer: b.what, Err: errClosed}
		}
		ch := f.changed
		f.mu.Unlock()
		select {
		case <-ch:
		case <-r.ctx.Done():
			return 0, r.ctx.Err()
		case <-f.ctx.Done():
			if err := context.Cause(f.ctx); err != nil && !errors.Is(err, errClosed) {
				f.mu.Lock()
				if f.err == nil {
					f.mu.Unlock()
					return 0, err // the context given to Open was cancelled
				}
				continue
			}
		}
		f.mu.Lock()
	}
}

func (r *blobReader) Close() error { return nil }
