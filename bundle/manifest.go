package bundle

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Manifest is manifest.json, the first member of a bundle (SPEC, "Bundle").
// Distro, KernelRef and Description are optional and left out of the JSON
// when empty.
type Manifest struct {
	Name        string `json:"name"`
	Distro      string `json:"distro,omitempty"`
	Arch        string `json:"arch"`
	KernelRef   string `json:"kernel_ref,omitempty"`
	Description string `json:"description,omitempty"`

	// Rootfs is the name of the image member, always RootfsName.
	Rootfs string `json:"rootfs"`
	// RootfsSizeBytes is the image's size, holes included.
	RootfsSizeBytes int64 `json:"rootfs_size_bytes"`
	// RootfsSHA256 is the lowercase hex SHA-256 of the image's content,
	// holes read as zeros.
	RootfsSHA256 string `json:"rootfs_sha256"`

	// GuestInit is the init system the guest files were installed for
	// (SPEC "Guest init systems"): systemd, openrc, runit, busybox,
	// sysvinit or ext4pack-init; empty without guest files.
	GuestInit string `json:"guest_init,omitempty"`
	// RootfsGrows is true when the guest grows its root filesystem to its
	// whole disk at boot (SPEC "Growing to the disk"); left out when false.
	RootfsGrows bool `json:"rootfs_grows,omitempty"`
	// Source is where the rootfs came from, for a container image.
	Source *Source `json:"source,omitempty"`

	// CreatedBy is "ext4pack VERSION".
	CreatedBy string `json:"created_by"`
}

// Source records the container image a bundle was made from.
type Source struct {
	// Image is the reference as the user gave it.
	Image string `json:"image"`
	// Digest is the image manifest's digest ("sha256:..."), omitted where
	// the source has no manifest (a legacy docker save archive).
	Digest string `json:"digest,omitempty"`
}

// Architectures a manifest may name (SPEC, "CLI": --arch).
const (
	ArchX86_64  = "x86_64"
	ArchAarch64 = "aarch64"
)

// MaxRootfsSize is the largest image a bundle holds: 16 TiB, the largest
// ext4pack writes (package ext4pack's tests hold it equal to ext4w's
// MaxSize). A manifest that claims more is refused, so that a reader never
// sets out to hash terabytes of holes.
const MaxRootfsSize = 16 << 40

// maxManifestSize bounds manifest.json when reading a bundle, so that a
// corrupt header cannot make the reader allocate gigabytes.
const maxManifestSize = 1 << 20

// Validate reports the first way m breaks SPEC: a name that is not 1-64
// characters of [a-z0-9._-] starting with a letter or digit, an
// architecture other than x86_64 or aarch64, an empty CreatedBy, a Rootfs
// other than RootfsName, a negative size or a RootfsSHA256 that is not 64
// lowercase hex digits, or a size over MaxRootfsSize.
func (m *Manifest) Validate() error {
	if err := m.validateCaller(); err != nil {
		return err
	}
	switch {
	case m.Rootfs != RootfsName:
		return fmt.Errorf("bundle: manifest rootfs %q is not %q", m.Rootfs, RootfsName)
	case m.RootfsSizeBytes < 0:
		return fmt.Errorf("bundle: manifest rootfs_size_bytes %d is negative", m.RootfsSizeBytes)
	case m.RootfsSizeBytes > MaxRootfsSize:
		return fmt.Errorf("bundle: manifest rootfs_size_bytes %d is over 16 TiB (%d), the largest image ext4pack writes", m.RootfsSizeBytes, int64(MaxRootfsSize))
	case !isSHA256Hex(m.RootfsSHA256):
		return fmt.Errorf("bundle: manifest rootfs_sha256 %q is not 64 lowercase hex digits", m.RootfsSHA256)
	}
	return nil
}

// validateCaller checks the fields Write takes from its caller as they are.
func (m *Manifest) validateCaller() error {
	if err := ValidateName(m.Name); err != nil {
		return err
	}
	switch {
	case m.Arch != ArchX86_64 && m.Arch != ArchAarch64:
		return fmt.Errorf("bundle: manifest arch %q is neither %s nor %s", m.Arch, ArchX86_64, ArchAarch64)
	case m.CreatedBy == "":
		return fmt.Errorf("bundle: manifest created_by is empty")
	case m.Rootfs != "" && m.Rootfs != RootfsName:
		return fmt.Errorf("bundle: manifest rootfs %q is not %q", m.Rootfs, RootfsName)
	}
	return nil
}

// ValidateName reports whether name is a valid bundle name (SPEC, "CLI":
// --name): 1-64 characters of [a-z0-9._-], starting with a letter or digit.
func ValidateName(name string) error {
	if len(name) < 1 || len(name) > 64 {
		return fmt.Errorf("bundle: name %q is not 1-64 characters long", name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("bundle: name %q must be [a-z0-9._-] and start with a letter or digit", name)
		}
	}
	return nil
}

func isSHA256Hex(s string) bool {
	if len(s) != hex.EncodedLen(32) {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// complete returns m with the rootfs fields set from the image, checked.
// Fields the caller already set must agree with the image.
func (m Manifest) complete(size int64, sum string) (Manifest, error) {
	switch {
	case m.RootfsSizeBytes != 0 && m.RootfsSizeBytes != size:
		return m, fmt.Errorf("bundle: manifest rootfs_size_bytes %d differs from the image's %d", m.RootfsSizeBytes, size)
	case m.RootfsSHA256 != "" && m.RootfsSHA256 != sum:
		return m, fmt.Errorf("bundle: manifest rootfs_sha256 %s differs from the image's %s", m.RootfsSHA256, sum)
	}
	m.Rootfs = RootfsName
	m.RootfsSizeBytes = size
	m.RootfsSHA256 = sum
	return m, m.Validate()
}

// marshal returns the manifest.json bytes: indented by two spaces, fields in
// the order of SPEC, HTML characters left as they are, and a final newline.
func (m *Manifest) marshal() ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("bundle: encoding manifest: %w", err)
	}
	return b.Bytes(), nil
}
