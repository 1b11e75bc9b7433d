package bundle

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
)

// memLimit is a memory limit of the machine that may lower the budget.
type memLimit struct {
	bytes int64
	from  string // for messages: "GOMEMLIMIT", "cgroup v2 memory.max of DIR"
}

// systemLimits returns this process's memory limits: GOMEMLIMIT when set,
// and on Linux the cgroup limits of its cgroup and every ancestor.
func systemLimits() ([]memLimit, error) {
	var ls []memLimit
	// SetMemoryLimit with a negative value only reads the limit.
	if n := debug.SetMemoryLimit(-1); n != math.MaxInt64 {
		ls = append(ls, memLimit{n, "GOMEMLIMIT (the Go runtime's soft memory limit)"})
	}
	if runtime.GOOS == "linux" {
		cg, err := cgroupLimits("/")
		if err != nil {
			return nil, err
		}
		ls = append(ls, cg...)
	}
	return ls, nil
}

// cgroupLimits returns the memory limits of this process's cgroups, as
// seen under root ("/" but in tests): for cgroup v2 memory.max, and for
// the v1 memory controller memory.limit_in_bytes, of the process's cgroup
// and of each ancestor up to the root of the mount it is seen through. A
// limit set higher up binds as much as one set on the cgroup itself.
//
// /proc/self/cgroup names the cgroup in each hierarchy ("0::/PATH" for
// v2, "N:memory:/PATH" for v1's memory controller), and
// /proc/self/mountinfo says where each hierarchy is mounted and which of
// its cgroups is the mount's root (not "/" inside a container with a
// cgroup namespace of its own, or with a bind mount of one cgroup). A
// cgroup outside every mount, a missing file (the controller is not
// enabled at that level, or there is no /proc) and "max" or v1's
// "unlimited" (PAGE_COUNTER_MAX pages, near 2^63) mean no limit; a file
// that is there but unreadable or not a number is an error, since the
// budget would otherwise be made up.
func cgroupLimits(root string) ([]memLimit, error) {
	self, err := os.ReadFile(filepath.Join(root, "proc/self/cgroup"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bundle: reading the cgroup memory limit: %w", err)
	}
	var v2, v1 string // cgroup paths; "" when the process has none there
	for line := range strings.Lines(string(self)) {
		id, rest, ok1 := strings.Cut(strings.TrimSuffix(line, "\n"), ":")
		ctrls, p, ok2 := strings.Cut(rest, ":")
		switch {
		case !ok1 || !ok2:
			continue
		case id == "0" && ctrls == "":
			v2 = p
		case hasWord(ctrls, ",", "memory"):
			v1 = p
		}
	}
	mounts, err := os.ReadFile(filepath.Join(root, "proc/self/mountinfo"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bundle: reading the cgroup memory limit: %w", err)
	}
	var limits []memLimit
	for line := range strings.Lines(string(mounts)) {
		// "ID PARENT MAJ:MIN ROOT MOUNTPOINT OPTIONS [OPTIONAL...] - FSTYPE SOURCE SUPEROPTIONS"
		pre, post, ok := strings.Cut(strings.TrimSuffix(line, "\n"), " - ")
		f, g := strings.Fields(pre), strings.Fields(post)
		if !ok || len(f) < 5 || len(g) < 3 {
			continue
		}
		var cgPath, file, version string
		switch {
		case g[0] == "cgroup2" && v2 != "":
			cgPath, file, version = v2, "memory.max", "v2"
		case g[0] == "cgroup" && v1 != "" && hasWord(g[2], ",", "memory"):
			cgPath, file, version = v1, "memory.limit_in_bytes", "v1"
		default:
			continue
		}
		rel, ok := below(cgPath, unescapeMount(f[3]))
		if !ok {
			continue
		}
		mnt := unescapeMount(f[4])
		for dir := rel; ; dir = path.Dir(dir) {
			shown := path.Join(mnt, dir)
			n, ok, err := readLimit(filepath.Join(root, shown, file))
			if err != nil {
				return nil, err
			}
			if ok {
				limits = append(limits, memLimit{n, fmt.Sprintf("the cgroup %s %s of %s", version, file, shown)})
			}
			if dir == "/" {
				break
			}
		}
	}
	return limits, nil
}

// readLimit reads a cgroup memory limit file: ok is false when it is not
// there or says there is no limit.
func readLimit(name string) (n int64, ok bool, err error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("bundle: reading the cgroup memory limit: %w", err)
	}
	s := string(bytes.TrimSpace(b))
	if s == "max" {
		return 0, false, nil
	}
	n, err = strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, false, fmt.Errorf("bundle: cgroup memory limit %s holds %q, not a number of bytes", name, s)
	}
	// cgroup v1 writes "no limit" as PAGE_COUNTER_MAX pages, which is
	// near 2^63 whatever the page size; no machine has 2^62 bytes.
	if n >= 1<<62 {
		return 0, false, nil
	}
	return n, true, nil
}

// below returns p relative to the mount root r, as an absolute path ("/"
// for r itself), and whether p is r or under it.
func below(p, r string) (string, bool) {
	p, r = path.Clean(p), path.Clean(r)
	switch {
	case r == "/":
		return p, strings.HasPrefix(p, "/")
	case p == r:
		return "/", true
	case strings.HasPrefix(p, r+"/"):
		return p[len(r):], true
	}
	return "", false
}

// hasWord reports whether list, split at sep, holds w.
func hasWord(list, sep, w string) bool {
	for s := range strings.SplitSeq(list, sep) {
		if s == w {
			return true
		}
	}
	return false
}

// unescapeMount undoes mountinfo's octal escapes (\040 for a space, \011,
// \012, \134) in a path.
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
