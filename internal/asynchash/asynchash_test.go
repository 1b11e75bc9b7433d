package asynchash

import (
	"bytes"
	"crypto/sha256"
	"testing"
)

// TestSameSum: whatever the sizes of the writes, the sum is the hash's.
func TestSameSum(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 600000) // 9.6 MB: several chunks
	want := sha256.Sum256(data)
	for _, step := range []int{1 << 30, chunkSize, chunkSize - 1, 7777, 1} {
		if step == 1 {
			data = data[:100000]
			want = sha256.Sum256(data)
		}
		a := New(sha256.New())
		for p := data; len(p) > 0; {
			k := min(step, len(p))
			a.Write(p[:k])
			p = p[k:]
		}
		if got := a.Sum(nil); !bytes.Equal(got, want[:]) {
			t.Errorf("writes of %d: sum %x, want %x", step, got, want)
		}
	}
	if got := New(sha256.New()).Sum(nil); !bytes.Equal(got, func() []byte { s := sha256.Sum256(nil); return s[:] }()) {
		t.Errorf("empty: %x", got)
	}
}
