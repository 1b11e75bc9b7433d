package ext4w_test

import (
	"os"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// TestReadSuperblock reads back what ext4w wrote and agrees with dumpe2fs.
func TestReadSuperblock(t *testing.T) {
	img := build(t, func(w *ext4w.Writer) error { return nil }, ext4w.WithLabel("root"))
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sb, err := ext4w.ReadSuperblock(f)
	if err != nil {
		t.Fatal(err)
	}
	h := oracle.Dumpe2fsHeader(t, img)
	if got, want := strings.Join(sb.Features(), " "), h["Filesystem features"]; got != want {
		t.Errorf("features %q, dumpe2fs %q", got, want)
	}
	if sb.BlockSize() != 4096 || sb.BlocksCount() != 16384 {
		t.Errorf("block size %d, count %d", sb.BlockSize(), sb.BlocksCount())
	}
	if _, err := ext4w.ReadSuperblock(strings.NewReader(strings.Repeat("x", 4096))); err == nil {
		t.Error("garbage read as a superblock")
	}
}
