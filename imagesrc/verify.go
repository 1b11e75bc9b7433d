package imagesrc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"io"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// verifier passes a blob through and checks it against the size and
// digest the manifest gives: more bytes than the size is an error at
// once, and at the end of the stream a short blob or another digest is
// an error instead of io.EOF. Every source gets the same check: a
// registry's blob, a layout's file, an archive's member.
type verifier struct {
	rc   io.ReadCloser
	what string
	size int64 // -1: unknown
	want v1.Hash
	h    hash.Hash
	n    int64
	err  error // sticky
}

func newVerifier(rc io.ReadCloser, what string, size int64, want v1.Hash) *verifier {
	v := &verifier{rc: rc, what: what, size: size, want: want}
	if want.Hex != "" {
		v.h = sha256.New()
	}
	return v
}

func (v *verifier) Read(p []byte) (int, error) {
	if v.err != nil {
		return 0, v.err
	}
	if v.size >= 0 && int64(len(p)) > v.size-v.n+1 {
		// Never read far past the size: one byte tells that there is more.
		p = p[:v.size-v.n+1]
	}
	n, err := v.rc.Read(p)
	v.n += int64(n)
	if v.h != nil {
		v.h.Write(p[:n])
	}
	switch {
	case v.size >= 0 && v.n > v.size:
		v.err = &Error{Layer: v.what, Err: fmt.Errorf("%w: the blob is longer than the %d bytes its manifest says", ErrDigest, v.size)}
		return n, v.err
	case err == io.EOF:
		v.err = v.check()
		if v.err == nil {
			v.err = io.EOF
		}
		return n, v.err
	case err != nil:
		v.err = &Error{Layer: v.what, Err: fmt.Errorf("reading the blob: %w", err)}
		return n, v.err
	}
	return n, nil
}

// check compares what was read with the manifest, at the end of the blob.
func (v *verifier) check() error {
	if v.size >= 0 && v.n != v.size {
		return &Error{Layer: v.what, Err: fmt.Errorf("%w: the blob ends after %d bytes, its manifest says %d (truncated?)", ErrDigest, v.n, v.size)}
	}
	if v.h == nil {
		return nil
	}
	got := v.h.Sum(nil)
	want, err := hex.DecodeString(v.want.Hex)
	if err != nil || !bytes.Equal(got, want) {
		return &Error{Layer: v.what, Err: fmt.Errorf("%w: its sha256 is %x, its manifest says %s (tampered with or corrupt)", ErrDigest, got, v.want)}
	}
	return nil
}

func (v *verifier) Close() error { return v.rc.Close() }

// Finish completes the check of a blob that Layer.Open returned: it reads
// the rest of it and returns nil only if its size and digest are the
// manifest's.
//
// Reading to the end matters: tar ignores what follows its end-of-archive
// marker, so the decoder may stop short of it, and the verifier's verdict
// comes at the end of the blob, in place of io.EOF.
func Finish(rc io.ReadCloser) error {
	_, err := io.Copy(io.Discard, rc)
	return err
}

// readBlob reads a small blob (a manifest, a config, an index) whole,
// checking it against its descriptor. max bounds what a hostile source
// can make us hold.
func readBlob(rc io.ReadCloser, what string, size int64, want v1.Hash) ([]byte, error) {
	defer rc.Close()
	const max = 16 << 20
	if size > max {
		return nil, &Error{Layer: what, Err: fmt.Errorf("%d bytes, more than the %d MiB a %s may have", size, max>>20, what)}
	}
	v := newVerifier(rc, what, size, want)
	b, err := io.ReadAll(io.LimitReader(v, max+1))
	if err != nil {
		return nil, err
	}
	if len(b) > max {
		return nil, &Error{Layer: what, Err: fmt.Errorf("more than the %d MiB a %s may have", max>>20, what)}
	}
	return b, nil
}
