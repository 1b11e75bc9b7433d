package ext4pack_test

import (
	"testing"

	"github.com/ext4pack/ext4pack/internal/ocitest"
)

// TestMain keeps the tests' pulls out of the user's blob cache.
func TestMain(m *testing.M) { ocitest.MainWithOwnCache(m) }
