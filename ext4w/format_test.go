package ext4w

import (
	"encoding/binary"
	"testing"
	"time"
)

// TestRecordSizes pins every on-disk record to its size in the kernel's
// Documentation/filesystems/ext4/, so a stray field cannot shift the rest.
func TestRecordSizes(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    any
		want int
	}{
		{"superblock", Superblock{}, 1024},
		{"group descriptor", GroupDesc{}, 64},
		{"inode (to i_projid)", Inode{}, 0x80 + extraIsize},
		{"extent header", ExtentHeader{}, 12},
		{"extent", Extent{}, 12},
		{"extent index", ExtentIdx{}, 12},
		{"extent tail", ExtentTail{}, 4},
		{"dir entry header", DirEntry{}, 8},
		{"dir tail", DirTail{}, 12},
		{"dx root", DxRoot{}, 0x28},
		{"dx node", DxNode{}, 0x10},
		{"dx tail", DxTail{}, 8},
		{"xattr block header", XattrBlockHeader{}, 32},
		{"xattr entry", XattrEntry{}, 16},
		{"journal superblock (one user)", JournalSuperblock{}, 0x110},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := binary.Size(tc.v); got != tc.want {
				t.Errorf("size %d, want %d", got, tc.want)
			}
		})
	}
	if inodeSize != 256 || inlineXattrStart+inlineXattrSpace != inodeSize {
		t.Errorf("inode geometry: start %d + space %d != %d", inlineXattrStart, inlineXattrSpace, inodeSize)
	}
	if extentTailOffset+4 > blockSize || extentsPerBlock != 340 {
		t.Errorf("extent block: %d entries, tail at %d", extentsPerBlock, extentTailOffset)
	}
	if dxRootLimit != 507 || dxNodeLimit != 510 {
		t.Errorf("dx limits %d/%d, want 507/510 (metadata_csum leaves room for dx_tail)", dxRootLimit, dxNodeLimit)
	}
}

func TestEncodeTime(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sec       int64
		lo, epoch uint32
	}{
		{"epoch", 0, 0, 0},
		{"2020", 1577934245, 1577934245, 0},
		{"1960 (pre-1970, epoch bits 0)", -315619200, 0xED300880, 0},
		{"1901 (the lowest)", minTime, 0x80000000, 0},
		{"2040 (past 2038)", 2208988800, 2208988800, 1},
		{"2310 (the end of epoch 2)", suspectFrom - 1, 0x7FFFFFFF, 2},
		{"2446 (the highest)", maxTime, 0x7FFFFFFF, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lo, extra := encodeTime(timestamp{sec: tc.sec, nsec: 999999999})
			if lo != tc.lo || extra&3 != tc.epoch || extra>>2 != 999999999 {
				t.Errorf("got lo %#x extra %#x, want lo %#x epoch %d", lo, extra, tc.lo, tc.epoch)
			}
			// Decode as the kernel's ext4_decode_extra_time does.
			back := int64(int32(lo)) + int64(extra&3)<<32
			if back != tc.sec {
				t.Errorf("decodes to %d, want %d", back, tc.sec)
			}
		})
	}
}

func TestEncodeDev(t *testing.T) {
	for _, tc := range []struct {
		major, minor uint32
		old, new     uint32
	}{
		{1, 3, 0x0103, 0},
		{8, 0, 0x0800, 0},
		{255, 255, 0xFFFF, 0},
		{300, 70000, 0, 70000&0xff | 300<<8 | (70000&^0xff)<<12},
		{4095, 1<<20 - 1, 0, 0xff | 4095<<8 | (0xFFF00)<<12},
	} {
		old, nw := encodeDev(tc.major, tc.minor)
		if old != tc.old || nw != tc.new {
			t.Errorf("%d:%d: got %#x/%#x, want %#x/%#x", tc.major, tc.minor, old, nw, tc.old, tc.new)
		}
	}
}

func TestBackupGroups(t *testing.T) {
	got := backupGroups(250)
	want := []uint64{0, 1, 3, 5, 7, 9, 25, 27, 49, 81, 125, 243}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// TestReservedGDT checks calc_reserved_gdt_blocks against values mke2fs
// printed (dumpe2fs "Reserved GDT blocks").
func TestReservedGDT(t *testing.T) {
	for _, tc := range []struct{ blocks, want uint64 }{
		{16384, 7},      // 64 MiB
		{76800, 37},     // 300 MiB
		{262144, 127},   // 1 GiB
		{1 << 22, 1024}, // 16 GiB: capped
	} {
		if got := reservedGDTBlocks(tc.blocks); got != tc.want {
			t.Errorf("%d blocks: %d reserved GDT blocks, want %d", tc.blocks, got, tc.want)
		}
	}
}

func TestClampTime(t *testing.T) {
	for _, tc := range []struct {
		in   time.Time
		want int64
		ok   bool
	}{
		{time.Date(1960, 1, 1, 0, 0, 0, 0, time.UTC), -315619200, true},
		{time.Date(1800, 1, 1, 0, 0, 0, 0, time.UTC), minTime, false},
		{time.Date(2309, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2309, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), true},
		{time.Date(2350, 1, 1, 0, 0, 0, 0, time.UTC), suspectFrom - 1, false},
		{time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2400, 1, 1, 0, 0, 0, 0, time.UTC).Unix(), true},
		{time.Date(2500, 1, 1, 0, 0, 0, 0, time.UTC), maxTime, false},
	} {
		ts, ok := clampTime(tc.in)
		if ts.sec != tc.want || ok != tc.ok {
			t.Errorf("%v: got %d %v, want %d %v", tc.in, ts.sec, ok, tc.want, tc.ok)
		}
		// Nothing the writer stores may look like a pre-1970 time to e2fsck.
		lo, extra := encodeTime(ts)
		if lo&(1<<31) != 0 && extra&3 == 3 {
			t.Errorf("%v is stored with epoch 3 and the sign bit", tc.in)
		}
	}
}
