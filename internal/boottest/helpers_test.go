package boottest

import (
	"os"
	"testing"
)

// skipOrFail skips t with reason on a developer machine and fails it in CI
// (CI set), where a missing prerequisite means the boot test did not run.
// It is the oracle package's rule, for the same reason.
func skipOrFail(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(envCI) == "" {
		t.Skipf("%s (CI is unset, so this skips; with CI set it fails)", reason)
	}
	t.Fatalf("%s (CI is set, so a boot test that cannot run is a failure)", reason)
}
