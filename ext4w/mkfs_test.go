package ext4w_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// TestEmptyMatchesMkfs compares an empty ext4w image, field by field
// (dumpe2fs -h), with what mkfs.ext4 makes at the same size: the same
// geometry, reserved GDT, journal, inode table and free counts.
func TestEmptyMatchesMkfs(t *testing.T) {
	const uuid = "0637bf68-f42f-45ba-8b6d-2774eb7f8732"
	fields := []string{
		"Filesystem features", "Filesystem flags", "Default mount options", "Filesystem state",
		"Errors behavior", "Filesystem OS type", "Inode count", "Block count", "Reserved block count",
		"Overhead clusters", "Free blocks", "Free inodes", "First block", "Block size", "Fragment size",
		"Group descriptor size", "Reserved GDT blocks", "Blocks per group", "Fragments per group",
		"Inodes per group", "Inode blocks per group", "Flex block group size", "Mount count",
		"Maximum mount count", "Check interval", "Reserved blocks uid", "Reserved blocks gid",
		"First inode", "Inode size", "Required extra isize", "Desired extra isize", "Journal inode",
		"Default directory hash", "Journal backup", "Checksum type", "Journal features",
		"Total journal size", "Total journal blocks", "Max transaction length", "Fast commit length",
		"Journal sequence", "Journal start", "Filesystem UUID",
	}
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"64MiB", 64 << 20},
		{"300MiB", 300 << 20},
		{"1GiB", 1 << 30},
		{"5GiB", 5 << 30},
		{"20GiB", 20 << 30},
		{"short last group", 129<<20 + 8<<10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ref := filepath.Join(dir, "mkfs.img")
			oracle.Mkfs(t, ref, tc.size, "-U", uuid)
			img := filepath.Join(dir, "ext4w.img")
			f, err := os.Create(img)
			if err != nil {
				t.Fatal(err)
			}
			u, _ := parseUUID(uuid)
			w, err := ext4w.NewWriter(f, ext4w.WithSize(tc.size), ext4w.WithUUID(u))
			if err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			f.Close()
			oracle.Fsck(t, img)
			want := oracle.Dumpe2fsHeader(t, ref)
			got := oracle.Dumpe2fsHeader(t, img)
			for _, k := range fields {
				if got[k] != want[k] {
					t.Errorf("%s: ext4w %q, mkfs.ext4 %q", k, got[k], want[k])
				}
			}
		})
	}
}

func parseUUID(s string) ([16]byte, error) {
	var u [16]byte
	j := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '-' {
			continue
		}
		var v byte
		switch c := s[i]; {
		case c >= '0' && c <= '9':
			v = c - '0'
		case c >= 'a' && c <= 'f':
			v = c - 'a' + 10
		}
		if j%2 == 0 {
			u[j/2] = v << 4
		} else {
			u[j/2] |= v
		}
		j++
	}
	return u, nil
}
