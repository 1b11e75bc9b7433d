package inflate

import (
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	kflate "github.com/klauspost/compress/flate"
	kgzip "github.com/klauspost/compress/gzip"
)

// needTool skips (outside CI) or fails (in CI) a test whose tool is
// missing.
func needTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not installed (CI is set; .ci/run installs it)", name)
		}
		t.Skipf("%s is not installed: %v", name, err)
	}
	return p
}

// TestCorpora decodes every gzip file and raw DEFLATE stream of the test
// corpora at hand, and judges each against compress/gzip or
// compress/flate: Go's and klauspost/compress's test data (golden
// streams of their writers, fuzz crashers, issue 6550's gzip file) and
// the gzip files of /usr/share/doc (Debian's changelogs, gzip -9).
func TestCorpora(t *testing.T) {
	goroot := runtime.GOROOT()
	if goroot == "" {
		t.Fatal("no GOROOT")
	}
	var gz, raw []string
	filepath.WalkDir(filepath.Join(goroot, "src"), func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasSuffix(p, ".gz") {
			gz = append(gz, p)
		}
		return nil
	})
	for _, dir := range []string{filepath.Join(goroot, "src/compress/flate/testdata"), klauspostDir(t, "flate/testdata")} {
		ms, _ := filepath.Glob(filepath.Join(dir, "*.golden"))
		raw = append(raw, ms...)
		ms, _ = filepath.Glob(filepath.Join(dir, "*.expect*"))
		raw = append(raw, ms...)
	}
	ms, _ := filepath.Glob(filepath.Join(klauspostDir(t, "gzip/testdata"), "*"))
	gz = append(gz, ms...)
	if len(gz) < 4 || len(raw) < 20 {
		t.Fatalf("only %d gzip files and %d DEFLATE streams found: the corpora moved?", len(gz), len(raw))
	}
	filepath.WalkDir("/usr/share/doc", func(p string, e os.DirEntry, err error) error {
		if err == nil && e.Type().IsRegular() && strings.HasSuffix(p, ".gz") {
			gz = append(gz, p)
		}
		return nil
	})
	for _, p := range gz {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		checkGzip(t, p, data)
	}
	for _, p := range raw {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		checkRaw(t, p, data)
	}
	// issue 6550: a gzip file that once made compress/gzip loop.
	b64, err := os.ReadFile(filepath.Join(goroot, "src/compress/gzip/testdata/issue6550.gz.base64"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := base64.StdEncoding.DecodeString(string(b64))
	if err != nil {
		t.Fatal(err)
	}
	checkGzip(t, "issue6550", data)
	t.Logf("%d gzip files and %d DEFLATE streams agree with the standard library", len(gz)+1, len(raw))
}

// klauspostDir is a directory of klauspost/compress's module, the
// version go.mod requires.
func klauspostDir(t *testing.T, sub string) string {
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/klauspost/compress").Output()
	if err != nil {
		t.Fatalf("go list klauspost/compress: %v", err)
	}
	return filepath.Join(strings.TrimSpace(string(out)), sub)
}

// samples are the inputs the writers compress: empty, tiny, text-like,
// binary-like and both mixed, big enough for many blocks.
func samples() map[string][]byte {
	text := sampleText(1<<20, 1)
	bin := sampleBinary(1<<20, 2)
	return map[string][]byte{
		"empty":  {},
		"byte":   {'x'},
		"short":  []byte("hello, hello, hello, ext4pack"),
		"zeros":  make([]byte, 1<<20),
		"text":   text,
		"binary": bin,
		"mixed":  append(append(append([]byte{}, bin[:300000]...), text[:500000]...), bin[600000:]...),
	}
}

// TestWriters judges streams of the writers layers come from: gzip(1) at
// levels 1 to 9, pigz (one member, and -i's independent blocks), Go's
// writer and klauspost's at all their levels.
func TestWriters(t *testing.T) {
	gzipBin := needTool(t, "gzip")
	pigz := needTool(t, "pigz")
	for name, in := range samples() {
		for level := 1; level <= 9; level++ {
			out := run(t, in, gzipBin, "-c", "-n", "-"+string(rune('0'+level)))
			checkGzip(t, name+" gzip -"+string(rune('0'+level)), out)
		}
		for _, args := range [][]string{{"-6"}, {"-1"}, {"-9"}, {"-9", "-i"}, {"-6", "-b", "128"}} {
			out := run(t, in, pigz, append([]string{"-c", "-n", "-p", "2"}, args...)...)
			checkGzip(t, name+" pigz "+strings.Join(args, " "), out)
		}
		for level := gzip.HuffmanOnly; level <= gzip.BestCompression; level++ {
			var b bytes.Buffer
			zw, err := gzip.NewWriterLevel(&b, level)
			if err != nil {
				t.Fatal(err)
			}
			zw.Write(in)
			zw.Close()
			checkGzip(t, name+" compress/gzip level "+itoa(level), b.Bytes())
		}
		for level := kgzip.StatelessCompression; level <= kgzip.BestCompression; level++ {
			var b bytes.Buffer
			zw, err := kgzip.NewWriterLevel(&b, level)
			if err != nil {
				t.Fatal(err)
			}
			zw.Write(in)
			zw.Close()
			checkGzip(t, name+" klauspost gzip level "+itoa(level), b.Bytes())
		}
		// Raw DEFLATE with sync flushes in the middle (empty stored
		// blocks), as a streaming writer makes them.
		var b bytes.Buffer
		fw, _ := kflate.NewWriter(&b, 5)
		for i := 0; i < len(in); i += 100000 {
			fw.Write(in[i:min(i+100000, len(in))])
			fw.Flush()
		}
		fw.Close()
		checkRaw(t, name+" klauspost flate, flushed", b.Bytes())
	}
}

func itoa(i int) string {
	if i < 0 {
		return "-" + string(rune('0'-i))
	}
	return string(rune('0' + i))
}

func run(t *testing.T, in []byte, prog string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %v: %v", prog, args, err)
	}
	return out
}

// bitWriter writes hand-made DEFLATE streams: fields least significant
// bit first, Huffman codes most significant bit first (RFC 1951 3.1.1).
type bitWriter struct {
	b     []byte
	acc   uint64
	nbits uint
}

func (w *bitWriter) bits(v uint64, n uint) *bitWriter {
	w.acc |= v << w.nbits
	w.nbits += n
	for w.nbits >= 8 {
		w.b = append(w.b, byte(w.acc))
		w.acc >>= 8
		w.nbits -= 8
	}
	return w
}

func (w *bitWriter) code(c uint64, n uint) *bitWriter {
	for i := int(n) - 1; i >= 0; i-- {
		w.bits(c>>uint(i)&1, 1)
	}
	return w
}

func (w *bitWriter) bytes() []byte {
	if w.nbits > 0 {
		return append(w.b, byte(w.acc))
	}
	return w.b
}

// fixedLitCode writes literal/length symbol s in the fixed code (RFC 1951
// 3.2.6).
func (w *bitWriter) fixedLit(s int) *bitWriter {
	switch {
	case s < 144:
		return w.code(uint64(0x30+s), 8)
	case s < 256:
		return w.code(uint64(0x190+s-144), 9)
	case s < 280:
		return w.code(uint64(s-256), 7)
	}
	return w.code(uint64(0xc0+s-280), 8)
}

// TestBlocks judges each kind of block, alone and mixed: stored (empty,
// short, 64 KiB, many), fixed and dynamic, and hand-made streams of the
// rarer forms: a match that overlaps itself by one byte, a match 32 KiB
// back, the longest match (length 258 by code 285 and by 284+31),
// multi-member gzip files and empty members.
func TestBlocks(t *testing.T) {
	text := sampleText(200000, 3)
	cases := map[string][]byte{}
	for _, level := range []int{flate.NoCompression, flate.HuffmanOnly, flate.BestSpeed, flate.DefaultCompression} {
		var b bytes.Buffer
		fw, _ := flate.NewWriter(&b, level)
		fw.Write(text)
		fw.Close()
		cases["compress/flate level "+itoa(level)] = b.Bytes()
	}
	// Short inputs: Go writes them as fixed blocks.
	for _, s := range []string{"a", "abcabcabcabcabc", strings.Repeat("xy", 300)} {
		var b bytes.Buffer
		fw, _ := flate.NewWriter(&b, flate.BestSpeed)
		fw.Write([]byte(s))
		fw.Close()
		cases["fixed "+s[:1]] = b.Bytes()
	}
	// Stored: one empty final block; then 65535 bytes and an empty one.
	cases["stored empty"] = []byte{1, 0, 0, 0xff, 0xff}
	big := append([]byte{0, 0xff, 0xff, 0, 0}, text[:65535]...)
	cases["stored full"] = append(big, 1, 0, 0, 0xff, 0xff)
	// Fixed: 'a', then a match of length 258 at distance 1 (code 285),
	// then length 258 again by code 284 with 31 extra bits (as zlib reads it).
	w := new(bitWriter).bits(1, 1).bits(1, 2).fixedLit('a')
	w.fixedLit(285).code(0, 5)
	w.fixedLit(284).bits(31, 5).code(0, 5)
	w.fixedLit(256)
	cases["fixed 258"] = w.bytes()
	// A fixed block after a stored one, with a match reaching into the
	// stored bytes 32768 back.
	stored := append([]byte{0, 0, 0x80, 0xff, 0x7f}, text[:32768]...)
	w = &bitWriter{b: stored}
	w.bits(1, 1).bits(1, 2)
	w.fixedLit(273).bits(0, 3)   // length 35
	w.code(29, 5).bits(8191, 13) // distance 24577+8191 = 32768
	w.fixedLit(256)
	cases["fixed 32K back"] = w.bytes()
	for name, raw := range cases {
		t.Run(name, func(t *testing.T) {
			want, err := flateDecode(raw)
			if err != nil {
				t.Fatalf("the judge fails on a good stream: %v", err)
			}
			got, err := ourDecode(raw)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("inflate: %d bytes, %v; want %d bytes", len(got), err, len(want))
			}
			checkRaw(t, name, raw)
		})
	}
	if got, _ := ourDecode(cases["fixed 258"]); len(got) != 1+258+258 {
		t.Fatalf("fixed 258: %d bytes, want 517", len(got))
	}

	t.Run("multi-member", func(t *testing.T) {
		var b bytes.Buffer
		for i, part := range [][]byte{text[:1000], {}, text[1000:150000], {}, text[150000:]} {
			zw, _ := gzip.NewWriterLevel(&b, i%3+1)
			zw.Write(part)
			zw.Close()
		}
		got, err := ourGunzip(b.Bytes())
		if err != nil || !bytes.Equal(got, text) {
			t.Fatalf("five members: %d bytes, %v; want the %d bytes written", len(got), err, len(text))
		}
		zr, _ := NewGzipReader(bytes.NewReader(b.Bytes()))
		io.Copy(io.Discard, zr)
		if zr.Members() != 5 {
			t.Fatalf("Members() = %d, want 5", zr.Members())
		}
		checkGzip(t, "five members", b.Bytes())
	})
	t.Run("empty input", func(t *testing.T) {
		if _, err := NewGzipReader(bytes.NewReader(nil)); err != io.EOF {
			t.Fatalf("NewGzipReader of nothing: %v, want io.EOF as compress/gzip says", err)
		}
	})
}

// gzipOf is data gzipped by compress/gzip with the header fields of h.
func gzipOf(data []byte, h gzip.Header) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Header = h
	zw.Write(data)
	zw.Close()
	return b.Bytes()
}

// TestGzipHeader reads headers with FEXTRA, FNAME, FCOMMENT and FHCRC
// (which compress/gzip does not write: it is set here by hand), and
// refuses bad ones as compress/gzip does.
func TestGzipHeader(t *testing.T) {
	text := sampleText(5000, 4)
	full := gzipOf(text, gzip.Header{Name: "rootfs.tar", Comment: "a comment", Extra: []byte("AB\x02\x00hi")})
	// Insert FHCRC: set the flag, then the header's CRC-16 after the
	// comment's NUL.
	hlen := bytes.Index(full, []byte("a comment\x00")) + len("a comment\x00")
	withCRC := append([]byte{}, full[:hlen]...)
	withCRC[3] |= flagHdrCrc
	crc := crc32.ChecksumIEEE(withCRC)
	withCRC = binary.LittleEndian.AppendUint16(withCRC, uint16(crc))
	withCRC = append(withCRC, full[hlen:]...)
	badCRC := append([]byte{}, withCRC...)
	badCRC[hlen] ^= 1

	longName := gzipOf(text, gzip.Header{Name: strings.Repeat("n", 600)})
	cases := []struct {
		name string
		data []byte
		want error // nil: decodes to text
	}{
		{"FEXTRA FNAME FCOMMENT", full, nil},
		{"FHCRC", withCRC, nil},
		{"bad FHCRC", badCRC, ErrHeader},
		{"FNAME over 511 bytes", longName, ErrHeader},
		{"not gzip", []byte("\x1f\x8c\x08\x00\x00\x00\x00\x00\x00\xff"), ErrHeader},
		{"method 7", append([]byte("\x1f\x8b\x07"), full[3:]...), ErrHeader},
		{"header cut", full[:12], io.ErrUnexpectedEOF},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := ourGunzip(c.data)
			if c.want == nil {
				if err != nil || !bytes.Equal(got, text) {
					t.Fatalf("%d bytes, %v; want the %d bytes written", len(got), err, len(text))
				}
			} else if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			checkGzip(t, c.name, c.data)
		})
	}
}

// TestCorrupt: bad input is an error, never a panic, never bytes the
// judge does not give. Each named case breaks one thing; then every
// truncation of a good file, and bit flips throughout one.
func TestCorrupt(t *testing.T) {
	text := sampleText(100000, 5)
	good := gzipOf(text, gzip.Header{})
	n := len(good)
	flip := func(i int, mask byte) []byte {
		b := append([]byte{}, good...)
		b[i] ^= mask
		return b
	}
	// A fixed block whose first symbol is a match: nothing to copy.
	tooFar := new(bitWriter).bits(1, 1).bits(1, 2).fixedLit('a').fixedLit(257).code(1, 5).fixedLit(256).bytes()
	// Literal/length code 286 and distance code 30 of the fixed code.
	badLit := new(bitWriter).bits(1, 1).bits(1, 2).fixedLit('a').fixedLit(286).fixedLit(256).bytes()
	badDist := new(bitWriter).bits(1, 1).bits(1, 2).fixedLit('a').fixedLit(257).code(30, 5).fixedLit(256).bytes()
	cases := []struct {
		name string
		data []byte
		gzip bool
		want error
	}{
		{"bad CRC", flip(n-8, 1), true, ErrChecksum},
		{"bad ISIZE", flip(n-4, 1), true, ErrChecksum},
		{"trailer cut", good[:n-3], true, io.ErrUnexpectedEOF},
		{"distance too far back", tooFar, false, ErrCorrupt},
		{"invalid literal/length code", badLit, false, ErrCorrupt},
		{"invalid distance code", badDist, false, ErrCorrupt},
		{"block type 3", []byte{0x07, 0, 0}, false, ErrCorrupt},
		{"stored NLEN", []byte{1, 5, 0, 0xfa, 0xfe, 'a', 'b', 'c', 'd', 'e'}, false, ErrCorrupt},
		{"stored cut", []byte{1, 5, 0, 0xfa, 0xff, 'a', 'b'}, false, io.ErrUnexpectedEOF},
		{"empty", nil, false, io.ErrUnexpectedEOF},
		{"trailing garbage", append(append([]byte{}, good...), "junk after the member"...), true, ErrTrailingData},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var got []byte
			var err error
			if c.gzip {
				got, err = ourGunzip(c.data)
				checkGzip(t, c.name, c.data)
			} else {
				got, err = ourDecode(c.data)
				checkRaw(t, c.name, c.data)
			}
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if c.gzip && !bytes.HasPrefix(text, got) {
				t.Fatalf("%d bytes that are not what was written", len(got))
			}
		})
	}
	t.Run("every truncation", func(t *testing.T) {
		small := gzipOf(text[:3000], gzip.Header{Name: "x"})
		for i := range len(small) {
			got, err := ourGunzip(small[:i])
			if err == nil {
				t.Fatalf("cut at %d of %d: no error", i, len(small))
			}
			if !bytes.HasPrefix(text, got) {
				t.Fatalf("cut at %d: wrong bytes", i)
			}
		}
		for i := 0; i < len(good); i += 997 {
			if _, err := ourGunzip(good[:i]); err == nil {
				t.Fatalf("cut at %d of %d: no error", i, len(good))
			}
		}
	})
	t.Run("bit flips", func(t *testing.T) {
		for i := 10; i < len(good)-8; i += 211 {
			for _, m := range []byte{1, 0x10, 0x80} {
				want, wantErr := gzipDecode(flip(i, m))
				got, gotErr := ourGunzip(flip(i, m))
				agree(t, "flip", want, wantErr, got, gotErr)
				// The bare DEFLATE stream too: without the CRC, only
				// compress/flate's own checks judge it.
				raw := flip(i, m)[10 : n-8]
				want, wantErr = flateDecode(raw)
				got, gotErr = ourDecode(raw)
				agree(t, "flip raw", want, wantErr, got, gotErr)
			}
		}
	})
}

// TestReadError: the input's own error comes back as it is, not as
// corrupt data.
func TestReadError(t *testing.T) {
	data := gzipOf(sampleText(100000, 6), gzip.Header{})
	boom := errors.New("boom")
	r := io.MultiReader(bytes.NewReader(data[:len(data)/2]), iotest.ErrReader(boom))
	if _, err := readAllGzip(r); !errors.Is(err, boom) {
		t.Fatalf("error %v, want the reader's", err)
	}
}
