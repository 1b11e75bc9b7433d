package tarflat

import (
	"archive/tar"
	"encoding/base64"
	"fmt"
	"strings"

	"github.com/ext4pack/ext4pack/ext4w"
)

// xattrs decodes PAX xattr records: SCHILY.xattr.NAME holds the raw value
// (GNU tar, star), LIBARCHIVE.xattr.NAME a base64 value under a
// %-encoded name (bsdtar), RHT.security.selinux an SELinux label (Red
// Hat's tar). bsdtar writes both for one xattr; the
// LIBARCHIVE one wins, since base64 carries any byte, and a fixed order
// keeps the result independent of map iteration.
func xattrs(h *tar.Header) (map[string][]byte, error) {
	var out map[string][]byte
	set := func(k string, v []byte) {
		if out == nil {
			out = map[string][]byte{}
		}
		out[k] = v
	}
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			set(name, []byte(v))
		}
	}
	for k, v := range h.PAXRecords {
		enc, ok := strings.CutPrefix(k, "LIBARCHIVE.xattr.")
		if !ok {
			continue
		}
		name, err := unescapeURL(enc)
		if err != nil {
			return nil, fmt.Errorf("PAX record %q: %v", k, err)
		}
		// libarchive pads its base64; accept it unpadded too.
		val, err := base64.RawStdEncoding.DecodeString(strings.TrimRight(v, "="))
		if err != nil {
			return nil, fmt.Errorf("PAX record %q: the value is not base64: %v", k, err)
		}
		set(name, val)
	}
	// Red Hat's tar (and busybox) keep the SELinux label in a record of
	// its own, the context without the NUL that the xattr ends in.
	if v, ok := h.PAXRecords["RHT.security.selinux"]; ok && out["security.selinux"] == nil && v != "" {
		if !strings.HasSuffix(v, "\x00") {
			v += "\x00"
		}
		set("security.selinux", []byte(v))
	}
	for name := range out {
		if name == "" {
			return nil, fmt.Errorf("an xattr with an empty name")
		}
	}
	// GNU tar writes ACLs twice: as text that names users by name, and as
	// the binary xattr. The binary one wins; the text (star writes ids in
	// it) is used only when it is alone.
	for _, kind := range []string{"access", "default"} {
		text, ok := h.PAXRecords["SCHILY.acl."+kind]
		name := "system.posix_acl_" + kind
		if _, have := out[name]; !ok || have {
			continue
		}
		es, err := parseACLText(text)
		if err != nil {
			return nil, fmt.Errorf("PAX record %q: %v", "SCHILY.acl."+kind, err)
		}
		if len(es) > 3 || kind == "default" {
			// An access ACL of just owner, group and other is the mode
			// itself; the kernel stores none for it, and neither do we.
			set(name, ext4w.EncodeACLXattr(es))
		}
	}
	return out, nil
}

// unescapeURL undoes libarchive's %XX escaping of xattr names.
func unescapeURL(s string) (string, error) {
	if !strings.Contains(s, "%") {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			b.WriteByte(s[i])
			continue
		}
		if i+2 >= len(s) {
			return "", fmt.Errorf("bad escape in %q", s)
		}
		var v byte
		for _, c := range []byte(s[i+1 : i+3]) {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= c - '0'
			case c >= 'a' && c <= 'f':
				v |= c - 'a' + 10
			case c >= 'A' && c <= 'F':
				v |= c - 'A' + 10
			default:
				return "", fmt.Errorf("bad escape in %q", s)
			}
		}
		b.WriteByte(v)
		i += 2
	}
	return b.String(), nil
}
