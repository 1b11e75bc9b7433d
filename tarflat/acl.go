package tarflat

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ext4pack/ext4pack/ext4w"
)

// parseACLText reads the text form of a POSIX ACL that GNU tar and star
// store in SCHILY.acl.access and SCHILY.acl.default records: entries
// "tag:qualifier:perms" separated by newlines or commas, where star may
// add the numeric id as a fourth field ("user:joe:r--:1000"). A user or
// group named only by name cannot be resolved here, so it is an error.
func parseACLText(s string) ([]ext4w.ACLEntry, error) {
	var out []ext4w.ACLEntry
	for _, raw := range strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == ',' }) {
		if i := strings.IndexByte(raw, '#'); i >= 0 {
			raw = raw[:i] // acl_to_text's "#effective:" comments
		}
		raw = strings.TrimSpace(raw)
		if raw == "" {
			continue
		}
		f := strings.Split(raw, ":")
		if len(f) < 3 || len(f) > 4 {
			return nil, fmt.Errorf("ACL entry %q is not tag:qualifier:perms", raw)
		}
		perm, err := aclPerm(f[2])
		if err != nil {
			return nil, fmt.Errorf("ACL entry %q: %v", raw, err)
		}
		e := ext4w.ACLEntry{Perm: perm}
		named := f[1] != ""
		switch f[0] {
		case "user", "u":
			e.Tag = 0x01
			if named {
				e.Tag = 0x02
			}
		case "group", "g":
			e.Tag = 0x04
			if named {
				e.Tag = 0x08
			}
		case "mask", "m":
			e.Tag = 0x10
		case "other", "o":
			e.Tag = 0x20
		default:
			return nil, fmt.Errorf("ACL entry %q: unknown tag %q", raw, f[0])
		}
		if named {
			idText := f[1]
			if len(f) == 4 {
				idText = f[3]
			}
			id, err := strconv.ParseUint(idText, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("ACL entry %q names %q, not a numeric id (write the tar with --numeric-owner)", raw, f[1])
			}
			e.ID = uint32(id)
		}
		out = append(out, e)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty ACL %q", s)
	}
	return out, nil
}

func aclPerm(s string) (uint16, error) {
	if len(s) != 3 {
		return 0, fmt.Errorf("permissions %q are not rwx", s)
	}
	var p uint16
	for i, c := range s {
		bit := uint16(4 >> i)
		switch {
		case c == rune("rwx"[i]):
			p |= bit
		case c == '-':
		default:
			return 0, fmt.Errorf("permissions %q are not rwx", s)
		}
	}
	return p, nil
}
