package ext4w_test

import (
	"bytes"
	"os"
	"testing"

	"github.com/ext4pack/ext4pack/ext4w"
)

// TestFreedDataGone is SPEC "Output files": the data of a replaced or
// removed file does not survive in the image. Its blocks are punched out
// where the system can (Linux, Windows) and overwritten with zeros
// elsewhere, which make test runs on Linux too (ext4pack_portable).
func TestFreedDataGone(t *testing.T) {
	marker := func(s string) []byte { return bytes.Repeat([]byte(s), 3*4096/len(s)+1) }
	img := build(t, func(w *ext4w.Writer) error {
		for _, f := range []struct {
			name string
			data []byte
		}{
			{"replaced", marker("REPLACED-MARKER-")},
			{"replaced", []byte("small")},
			{"removed", marker("REMOVED-MARKER--")},
			{"kept", marker("KEPT-MARKER-----")},
		} {
			if err := create(w, f.name, reg(0o644, len(f.data)), f.data); err != nil {
				return err
			}
		}
		return w.Remove("removed")
	})
	raw, err := os.ReadFile(img)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"REPLACED-MARKER-", "REMOVED-MARKER--"} {
		if bytes.Contains(raw, []byte(m)) {
			t.Errorf("%s survives in the image", m)
		}
	}
	if !bytes.Contains(raw, []byte("KEPT-MARKER-----")) {
		t.Error("the data of a file kept is gone")
	}
}
