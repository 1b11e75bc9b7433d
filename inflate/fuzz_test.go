package inflate

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"testing"
)

// fuzzSeeds are small streams of every block kind, for both targets.
func fuzzSeeds() [][]byte {
	var seeds [][]byte
	for _, in := range [][]byte{nil, []byte("a"), []byte("abcabcabcabcabcabc"), sampleText(3000, 7), sampleBinary(3000, 8)} {
		for _, level := range []int{flate.NoCompression, flate.HuffmanOnly, flate.BestSpeed, flate.BestCompression} {
			var b bytes.Buffer
			fw, _ := flate.NewWriter(&b, level)
			fw.Write(in)
			fw.Close()
			seeds = append(seeds, b.Bytes())
		}
	}
	return seeds
}

// FuzzInflate: on any input, inflate decodes what compress/flate decodes,
// or fails where it fails, having given no other bytes, and never panics.
func FuzzInflate(f *testing.F) {
	for _, s := range fuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		want, wantErr := flateDecode(raw)
		got, gotErr := ourDecode(raw)
		agree(t, "fuzz", want, wantErr, got, gotErr)
	})
}

// FuzzGunzip is FuzzInflate for gzip files, judged by compress/gzip.
func FuzzGunzip(f *testing.F) {
	for i, s := range fuzzSeeds() {
		var b bytes.Buffer
		zw := gzip.NewWriter(&b)
		if i%2 == 0 {
			zw.Header = gzip.Header{Name: "n", Comment: "c", Extra: []byte("xy\x00\x00")}
		}
		zw.Close()
		// The seed's DEFLATE stream in a gzip frame: header, stream,
		// then a trailer that is right only for the empty input.
		h := b.Bytes()[:len(b.Bytes())-10]
		f.Add(append(append(append([]byte{}, h...), s...), make([]byte, 8)...))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		want, wantErr := gzipDecode(data)
		got, gotErr := ourGunzip(data)
		agree(t, "fuzz", want, wantErr, got, gotErr)
	})
}
