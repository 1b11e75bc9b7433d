package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ext4pack/ext4pack/ext4w"
	"github.com/ext4pack/ext4pack/internal/oracle"
)

// TestACLs writes POSIX ACLs as tars carry them (the binary xattr GNU tar
// and bsdtar store) and checks that the kernel reads them back: the raw
// xattr through CompareMount, and getfacl's view of the mount.
func TestACLs(t *testing.T) {
	getfacl := requireTool(t, "getfacl", "acl")
	access := ext4w.EncodeACLXattr([]ext4w.ACLEntry{
		{Tag: 0x01, Perm: 6}, {Tag: 0x02, Perm: 5, ID: 1000}, {Tag: 0x04, Perm: 4},
		{Tag: 0x08, Perm: 6, ID: 2000}, {Tag: 0x10, Perm: 7}, {Tag: 0x20, Perm: 4},
	})
	def := ext4w.EncodeACLXattr([]ext4w.ACLEntry{
		{Tag: 0x01, Perm: 7}, {Tag: 0x02, Perm: 7, ID: 1000}, {Tag: 0x04, Perm: 5},
		{Tag: 0x10, Perm: 7}, {Tag: 0x20, Perm: 5},
	})
	b := oracle.NewTar(t)
	b.Dir("shared", 0o755).Xattr("system.posix_acl_default", string(def)).Xattr("system.posix_acl_access", string(access))
	b.File("shared/file", 0o664, []byte("acl\n")).Xattr("system.posix_acl_access", string(access))
	in := b.Write()
	img := filepath.Join(t.TempDir(), "acl.ext4")
	if code, _, stderr := runCLI(t, "image", "--rootfs-tar", in, "--out", img); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	judgeImage(t, in, img)

	// getfacl on the mounted image, as a user would look.
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-o", "ro,loop,noload", img, mnt).CombinedOutput(); err != nil {
		skipOrFail(t, "mount: "+string(out))
	}
	defer exec.Command("umount", mnt).Run()
	out, err := exec.Command(getfacl, "-n", "-p", mnt+"/shared/file", mnt+"/shared").CombinedOutput()
	if err != nil {
		t.Fatalf("getfacl: %v\n%s", err, out)
	}
	for _, want := range []string{"user:1000:r-x", "group:2000:rw-", "mask::rwx", "default:user:1000:rwx", "default:mask::rwx"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("getfacl lacks %q:\n%s", want, out)
		}
	}
}
