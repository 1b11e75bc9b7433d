// Package ext4w writes ext4 filesystem images in one streaming pass, in
// pure Go, for root disks built from tar archives.
//
// A Writer takes entries the way archive/tar.Writer does: Create names an
// entry and its metadata, Write streams a regular file's data, Link adds a
// hardlink and Remove applies a whiteout. File data goes straight to its
// final blocks as it arrives (all-zero blocks become holes); everything
// else — directories (hashed once longer than a block), inode tables,
// bitmaps, group descriptors, superblock backups, the journal, the resize
// inode and lost+found — is laid out at Close, once the counts are known.
// That is what lets the image be sized from its content, even when the
// content comes from a pipe: without WithSize the image is 1.5 times what
// the content needs.
//
// The image has Debian bookworm's mke2fs feature set (has_journal,
// ext_attr, resize_inode, dir_index, filetype, extent, 64bit, flex_bg,
// sparse_super, large_file, huge_file, dir_nlink, extra_isize,
// metadata_csum) with 4 KiB blocks and 256-byte inodes, and the same
// geometry mkfs.ext4 gives an empty filesystem of the same size. The format
// reference is the Linux kernel's Documentation/filesystems/ext4/; where it
// is silent, e2fsprogs' behaviour is followed and cited.
//
// Output is reproducible: no clock, randomness or map order reaches the
// bytes. The UUID and directory hash seed default to a hash of everything
// written and of the options.
package ext4w
