package tarflat

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/oracle"
	"github.com/ext4pack/ext4pack/internal/tartest"
)

// TestLayers applies layers through Layers: whiteouts act on the lower
// layers without a warning, the opaque marker too, wherever it stands,
// aufs metadata is dropped, and a hardlink may name a lower file. The
// kernel's overlayfs judges the whole of it elsewhere (the image sources'
// tests); this checks the plumbing.
func TestLayers(t *testing.T) {
	layers := [][]tartest.Entry{
		{tartest.Dir("etc", 0o755), tartest.File("etc/a", 0o644, "a"), tartest.File("etc/b", 0o644, "b"),
			tartest.Dir("opq", 0o755), tartest.File("opq/low", 0o644, "low"), tartest.File("gone", 0o644, "gone")},
		{tartest.File("opq/mine", 0o644, "mine"), tartest.Whiteout("opq/.wh..wh..opq"), tartest.Whiteout(".wh.gone"),
			tartest.Whiteout(".wh..wh.plnk"), tartest.Hardlink("etc/link", "etc/a"), tartest.Whiteout("etc/.wh.nothing")},
	}
	var warns []string
	w := newImage(t)
	l := NewLayers(w)
	for i, es := range layers {
		in := tartest.Bytes(t, es...)
		if i == 1 {
			in = oracle.Zstd(t, in)
		}
		r := NewReader(bytes.NewReader(in), WithWarn(func(m string) { warns = append(warns, m) }))
		if err := l.Add(r); err != nil {
			t.Fatalf("layer %d: %v", i, err)
		}
		r.Close()
	}
	for name, want := range map[string]bool{
		"etc/a": true, "etc/b": true, "etc/link": true, "opq": true, "opq/mine": true,
		"opq/low": false, "gone": false, ".wh.gone": false, ".wh..wh.plnk": false, "opq/.wh..wh..opq": false,
		"etc/nothing": false,
	} {
		if got := w.Exists(name); got != want {
			t.Errorf("%s exists: %v, want %v", name, got, want)
		}
	}
	a, _ := w.Lstat("etc/a")
	link, _ := w.Lstat("etc/link")
	if a.ID != link.ID {
		t.Errorf("etc/link is not a hardlink of the lower etc/a")
	}
	if len(warns) > 0 {
		t.Errorf("warnings for a layer's whiteouts: %q", warns)
	}
	if info := l.Info(); info.Entries != 11 {
		t.Errorf("Info.Entries %d, want 11 (the aufs metadata is dropped, not counted)", info.Entries)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestLayerErrors: a hardlink to a name a lower layer's whiteout removed
// is an error naming the entry, not a dangling link; and a Reader that
// has started cannot be a layer.
func TestLayerErrors(t *testing.T) {
	w := newImage(t)
	l := NewLayers(w)
	for _, es := range [][]tartest.Entry{
		{tartest.File("a", 0o644, "a")},
		{tartest.Whiteout(".wh.a")},
	} {
		in := tartest.Bytes(t, es...)
		if err := l.Add(NewReader(bytes.NewReader(in))); err != nil {
			t.Fatal(err)
		}
	}
	in := tartest.Bytes(t, tartest.Hardlink("b", "a"))
	err := l.Add(NewReader(bytes.NewReader(in)))
	var ee *EntryError
	if !errors.As(err, &ee) || ee.Name != "b" || !strings.Contains(err.Error(), "or a whiteout removed") {
		t.Errorf("hardlink to a whited-out file: %v", err)
	}

	r := NewReader(bytes.NewReader(in))
	r.Next()
	if err := NewLayers(newImage(t)).Add(r); err == nil {
		t.Errorf("Add took a Reader that had started")
	}
}

// TestDigest: WithDigest sees the uncompressed stream, every byte of it,
// trailing zeros included, whatever the compression; a stream that goes
// on too long after the end marker cannot be hashed whole.
func TestDigest(t *testing.T) {
	plain := tartest.Bytes(t, tartest.File("a", 0o644, bytes.Repeat([]byte("x"), 5000)))
	plain = append(plain, make([]byte, 9000)...) // a record's padding
	want := sha256.Sum256(plain)
	for name, in := range map[string][]byte{"plain": plain, "gzip": oracle.Gzip(t, plain), "zstd": oracle.Zstd(t, plain)} {
		t.Run(name, func(t *testing.T) {
			h := sha256.New()
			r := NewReader(bytes.NewReader(in), WithDigest(h))
			if _, err := Copy(newImage(t), r); err != nil {
				t.Fatal(err)
			}
			if got := h.Sum(nil); !slices.Equal(got, want[:]) {
				t.Errorf("digest %x, want %x", got, want)
			}
		})
	}
	t.Run("endless trailer", func(t *testing.T) {
		in := io.MultiReader(bytes.NewReader(plain), zeros{})
		r := NewReader(in, WithDigest(sha256.New()))
		if _, err := Copy(newImage(t, ext4w.WithSize(64<<20)), r); err == nil || !strings.Contains(err.Error(), "digest") {
			t.Errorf("got %v, want an error about the digest", err)
		}
	})
}

// zeros is an endless stream of zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}
