package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
)

// imageConfigPath is where make-bundle writes an image's config (SPEC "Image
// sources"): the OCI image config's `config` object, verbatim.
const imageConfigPath = "/etc/banger/image-config.json"

// maxImageConfig bounds what is read of it: real ones are a few KiB.
const maxImageConfig = 1 << 20

// imageConfig is the part of an OCI image config's `config` object
// (image-spec config.md, "Properties") that says what to run. Field names
// match case-insensitively, as encoding/json does, so docker's and OCI's
// spellings both work.
type imageConfig struct {
	User       string   `json:"User"`
	Env        []string `json:"Env"`
	Entrypoint []string `json:"Entrypoint"`
	Cmd        []string `json:"Cmd"`
	WorkingDir string   `json:"WorkingDir"`
}

// parseImageConfig reads image-config.json. JSON null is an empty config.
func parseImageConfig(b []byte) (imageConfig, error) {
	var c imageConfig
	if len(b) > maxImageConfig {
		return c, fmt.Errorf("%s is %d bytes, more than %d", imageConfigPath, len(b), maxImageConfig)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&c); err != nil {
		return imageConfig{}, fmt.Errorf("%s: %w", imageConfigPath, err)
	}
	if dec.More() {
		return imageConfig{}, fmt.Errorf("%s: more than one JSON value", imageConfigPath)
	}
	return c, nil
}

// workload is a planned process: what to execute, as whom, where.
type workload struct {
	argv   []string // argv[0] as the config gives it
	path   string   // the executable argv[0] resolved to
	env    []string
	dir    string
	uid    uint32
	gid    uint32
	groups []uint32 // supplementary groups
}

// defaultPath is the PATH a workload gets when its Env has none: docker's.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// errNoWorkload says that the config names nothing to run.
var errNoWorkload = errors.New("the image config has no Entrypoint or Cmd")

// planWorkload turns a config into a process, as docker runs a container's
// command: argv is Entrypoint then Cmd; Env as given, plus PATH and HOME
// where missing; WorkingDir, else /; User resolved through the image's
// passwd and group files (their contents; nil when missing). isExec says
// whether a path in the image is an executable file, for the PATH search.
func planWorkload(c imageConfig, passwd, group []byte, isExec func(string) bool) (workload, error) {
	w := workload{argv: append(append([]string(nil), c.Entrypoint...), c.Cmd...)}
	if len(w.argv) == 0 || w.argv[0] == "" {
		return workload{}, errNoWorkload
	}
	for _, s := range append([]string{c.WorkingDir}, w.argv...) {
		if strings.IndexByte(s, 0) >= 0 {
			return workload{}, errors.New("the image config holds a NUL byte in WorkingDir, Entrypoint or Cmd")
		}
	}
	w.dir = "/"
	if c.WorkingDir != "" {
		w.dir = path.Join("/", c.WorkingDir)
	}
	u, err := resolveUser(c.User, passwd, group)
	if err != nil {
		return workload{}, err
	}
	w.uid, w.gid, w.groups = u.uid, u.gid, u.groups

	hasPath, hasHome := false, false
	for _, kv := range c.Env {
		k, _, ok := strings.Cut(kv, "=")
		if !ok || k == "" || strings.IndexByte(kv, 0) >= 0 {
			// execve takes any string, but one without a name is no
			// variable, and a NUL cannot be passed at all.
			continue
		}
		hasPath = hasPath || k == "PATH"
		hasHome = hasHome || k == "HOME"
		w.env = append(w.env, kv)
	}
	if !hasPath {
		w.env = append(w.env, "PATH="+defaultPath)
	}
	if !hasHome {
		w.env = append(w.env, "HOME="+u.home)
	}

	w.path, err = lookPath(w.argv[0], w.dir, envValue(w.env, "PATH"), isExec)
	if err != nil {
		return workload{}, err
	}
	return w, nil
}

// envValue returns the last value of key in env, as getenv finds it.
func envValue(env []string, key string) string {
	v := ""
	for _, kv := range env {
		if k, val, ok := strings.Cut(kv, "="); ok && k == key {
			v = val
		}
	}
	return v
}

// lookPath finds the executable for name: as given when it holds a slash
// (relative to dir), else the first executable in the PATH list.
func lookPath(name, dir, pathList string, isExec func(string) bool) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !path.IsAbs(p) {
			p = path.Join(dir, p)
		}
		if !isExec(p) {
			return "", fmt.Errorf("%s is not an executable file", p)
		}
		return p, nil
	}
	for _, d := range strings.Split(pathList, ":") {
		if d == "" {
			d = "."
		}
		if !path.IsAbs(d) {
			d = path.Join(dir, d)
		}
		if p := path.Join(d, name); isExec(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%q is not in PATH (%s)", name, pathList)
}

// user is who a workload runs as.
type user struct {
	uid, gid uint32
	groups   []uint32
	home     string
}

// resolveUser reads an OCI config's User: "", "user", "uid", "user:group",
// "uid:gid", "uid:group" or "user:gid" (image-spec config.md). Names come
// from the image's passwd and group files. A numeric uid that passwd does
// not list runs with gid 0, as docker runs it. Supplementary groups are the
// group file's groups that list the user's name.
func resolveUser(spec string, passwd, group []byte) (user, error) {
	u := user{home: "/"}
	name, grp, hasGroup := strings.Cut(spec, ":")
	if name == "" && hasGroup {
		return u, fmt.Errorf("User %q names a group but no user", spec)
	}
	users := parseDB(passwd, 7)
	var pwName string
	if name != "" {
		if id, ok := parseID(name); ok {
			u.uid = id
			for _, e := range users {
				if e[2] == name {
					pwName = e[0]
					break
				}
			}
		} else {
			pwName = name
			found := false
			for _, e := range users {
				if e[0] == name {
					found = true
					break
				}
			}
			if !found {
				return u, fmt.Errorf("User %q: no such user in /etc/passwd", spec)
			}
		}
		for _, e := range users {
			if e[0] != pwName || pwName == "" {
				continue
			}
			uid, ok1 := parseID(e[2])
			gid, ok2 := parseID(e[3])
			if !ok1 || !ok2 {
				return u, fmt.Errorf("User %q: bad /etc/passwd entry for %s", spec, pwName)
			}
			u.uid, u.gid = uid, gid
			if e[5] != "" {
				u.home = e[5]
			}
			break
		}
	}
	groups := parseDB(group, 4)
	if hasGroup {
		if id, ok := parseID(grp); ok {
			u.gid = id
		} else {
			found := false
			for _, e := range groups {
				if e[0] == grp {
					if u.gid, found = parseID(e[2]); !found {
						return u, fmt.Errorf("User %q: bad /etc/group entry for %s", spec, grp)
					}
					break
				}
			}
			if !found {
				return u, fmt.Errorf("User %q: no such group in /etc/group", spec)
			}
		}
	}
	if pwName != "" {
		for _, e := range groups {
			for _, m := range strings.Split(e[3], ",") {
				if m == pwName {
					if gid, ok := parseID(e[2]); ok && !containsID(u.groups, gid) {
						u.groups = append(u.groups, gid)
					}
				}
			}
		}
	}
	return u, nil
}

// maxID is the highest id a process can have: (uid_t)-1 means "no change"
// to setresuid and is no user.
const maxID = 1<<32 - 2

func parseID(s string) (uint32, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n > maxID {
		return 0, false
	}
	return uint32(n), true
}

func containsID(ids []uint32, id uint32) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// parseDB reads a colon-separated database (passwd(5), group(5)): every
// line with at least n fields, comments and short lines skipped, each cut
// to n fields.
func parseDB(b []byte, n int) [][]string {
	var out [][]string
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < n {
			continue
		}
		out = append(out, f[:n])
	}
	return out
}
