// Package oracle holds the judges that ext4pack's tests use, written
// independently of the ext4 writer and of tarflat so that a shared
// misreading of the SPEC cannot make both the code and its judge agree.
//
// The judges are:
//
//   - Fsck and FsckOutput: e2fsck -fn must exit 0 and print no problem.
//   - Mkfs and Dumpe2fsHeader: a reference image made by mkfs.ext4, pinned
//     to SPEC's feature set, and its superblock fields for field-by-field
//     comparison.
//   - CompareMount, MountDiff and DirDiff: the Linux kernel mounts the image
//     read-only and every entry must read back identical to the tar, as
//     SPEC's tar rules (re-implemented here) say it should.
//   - NewTar and EveryTypeTar: deterministic test tars.
//
// The package is imported only by tests. Judges that need a missing tool,
// root or Linux skip the test when the CI environment variable is unset and
// fail it when CI is set, so a CI machine cannot silently skip a judge.
package oracle

import (
	"os"
	"testing"
)

// skipOrFail skips t with reason on a developer machine and fails it in CI
// (env CI set), where a missing prerequisite means the judge did not run.
func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv("CI") == "" {
		t.Skipf("%s (CI is unset, so this skips; with CI set it fails)", reason)
	}
	t.Fatalf("%s (CI is set, so a judge that cannot run is a failure)", reason)
}

// RequireTool skips or fails t, as the judges do, when the program name
// is found neither on PATH nor in sbin; aptPackage says where to get it.
func RequireTool(t testing.TB, name, aptPackage string) {
	t.Helper()
	requireTool(t, name, aptPackage)
}

// RequireRoot skips or fails t, as the judges do, when not running as
// root; why says what needs it.
func RequireRoot(t testing.TB, why string) {
	t.Helper()
	if os.Geteuid() != 0 {
		skipOrFail(t, why+" needs root")
	}
}
