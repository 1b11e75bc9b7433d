package main

import (
	"slices"
	"strings"
	"testing"
)

const (
	testPasswd = "root:x:0:0:root:/root:/bin/sh\n# a comment\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n" +
		"nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\nshort:x:1\napp:x:1000:1001::/srv/app:/bin/sh\n"
	testGroup = "root:x:0:\nnogroup:x:65534:\nnonroot:x:65532:\nappgrp:x:1001:\nwheel:x:10:app,other\nvideo:x:44:app\n"
)

// execs stands for the image's executables.
func execs(paths ...string) func(string) bool {
	return func(p string) bool { return slices.Contains(paths, p) }
}

func TestParseImageConfig(t *testing.T) {
	for _, tc := range []struct {
		name, json string
		want       imageConfig
		err        bool
	}{
		{"docker", `{"User":"app","Env":["PATH=/bin","A=1"],"Entrypoint":["/entry"],"Cmd":["run","-v"],"WorkingDir":"/srv",` +
			`"ExposedPorts":{"80/tcp":{}},"Labels":{"x":"y"},"StopSignal":"SIGQUIT"}`,
			imageConfig{User: "app", Env: []string{"PATH=/bin", "A=1"}, Entrypoint: []string{"/entry"}, Cmd: []string{"run", "-v"}, WorkingDir: "/srv"}, false},
		{"lower case keys", `{"user":"1","cmd":["x"]}`, imageConfig{User: "1", Cmd: []string{"x"}}, false},
		{"nulls", `{"Entrypoint":null,"Cmd":null,"Env":null}`, imageConfig{}, false},
		{"null", `null`, imageConfig{}, false},
		{"empty object", `{}`, imageConfig{}, false},
		{"not JSON", `{"Cmd":`, imageConfig{}, true},
		{"two values", `{} {}`, imageConfig{}, true},
		{"wrong type", `{"Cmd":"sh -c x"}`, imageConfig{}, true},
		{"empty file", ``, imageConfig{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseImageConfig([]byte(tc.json))
			if (err != nil) != tc.err {
				t.Fatalf("err %v, want error %v", err, tc.err)
			}
			if err == nil && !equalConfig(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func equalConfig(a, b imageConfig) bool {
	return a.User == b.User && a.WorkingDir == b.WorkingDir && slices.Equal(a.Env, b.Env) &&
		slices.Equal(a.Entrypoint, b.Entrypoint) && slices.Equal(a.Cmd, b.Cmd)
}

func TestPlanWorkload(t *testing.T) {
	bins := execs("/bin/sh", "/usr/bin/app", "/srv/app/run", "/opt/tool")
	for _, tc := range []struct {
		name       string
		c          imageConfig
		path       string
		uid, gid   uint32
		groups     []uint32
		dir        string
		envHas     []string
		err        string
		noWorkload bool
	}{
		{"entrypoint and cmd", imageConfig{Entrypoint: []string{"app"}, Cmd: []string{"--serve"}},
			"/usr/bin/app", 0, 0, nil, "/", []string{"PATH=" + defaultPath, "HOME=/"}, "", false},
		{"cmd only, absolute", imageConfig{Cmd: []string{"/bin/sh", "-c", "echo hi"}}, "/bin/sh", 0, 0, nil, "/", nil, "", false},
		{"user by name", imageConfig{User: "app", Cmd: []string{"app"}}, "/usr/bin/app", 1000, 1001, []uint32{10, 44}, "/",
			[]string{"HOME=/srv/app"}, "", false},
		{"root by name", imageConfig{User: "root", Cmd: []string{"app"}}, "/usr/bin/app", 0, 0, nil, "/", []string{"HOME=/root"}, "", false},
		{"uid only, listed", imageConfig{User: "65532", Cmd: []string{"app"}}, "/usr/bin/app", 65532, 65532, nil, "/",
			[]string{"HOME=/home/nonroot"}, "", false},
		{"uid only, not listed", imageConfig{User: "4242", Cmd: []string{"app"}}, "/usr/bin/app", 4242, 0, nil, "/", []string{"HOME=/"}, "", false},
		{"uid:gid", imageConfig{User: "4242:4343", Cmd: []string{"app"}}, "/usr/bin/app", 4242, 4343, nil, "/", nil, "", false},
		{"user:group", imageConfig{User: "nobody:nogroup", Cmd: []string{"app"}}, "/usr/bin/app", 65534, 65534, nil, "/", nil, "", false},
		{"uid:group", imageConfig{User: "5:video", Cmd: []string{"app"}}, "/usr/bin/app", 5, 44, nil, "/", nil, "", false},
		{"user:gid", imageConfig{User: "app:7", Cmd: []string{"app"}}, "/usr/bin/app", 1000, 7, []uint32{10, 44}, "/", nil, "", false},
		{"working dir and relative path", imageConfig{WorkingDir: "/srv/app", Entrypoint: []string{"./run"}}, "/srv/app/run", 0, 0, nil,
			"/srv/app", nil, "", false},
		{"relative working dir", imageConfig{WorkingDir: "srv/app/", Cmd: []string{"./run"}}, "/srv/app/run", 0, 0, nil, "/srv/app", nil, "", false},
		{"PATH from Env", imageConfig{Env: []string{"PATH=/opt", "HOME=/h", "JUNK", "=x"}, Cmd: []string{"tool"}}, "/opt/tool", 0, 0, nil, "/",
			[]string{"PATH=/opt", "HOME=/h"}, "", false},
		{"not in PATH", imageConfig{Env: []string{"PATH=/nowhere"}, Cmd: []string{"app"}}, "", 0, 0, nil, "", nil, "not in PATH", false},
		{"missing file", imageConfig{Cmd: []string{"/usr/bin/missing"}}, "", 0, 0, nil, "", nil, "not an executable", false},
		{"unknown user", imageConfig{User: "ghost", Cmd: []string{"app"}}, "", 0, 0, nil, "", nil, "no such user", false},
		{"unknown group", imageConfig{User: "app:ghosts", Cmd: []string{"app"}}, "", 0, 0, nil, "", nil, "no such group", false},
		{"group without user", imageConfig{User: ":44", Cmd: []string{"app"}}, "", 0, 0, nil, "", nil, "no user", false},
		{"uid -1", imageConfig{User: "4294967295", Cmd: []string{"app"}}, "", 0, 0, nil, "", nil, "no such user", false},
		{"nothing to run", imageConfig{Env: []string{"A=1"}}, "", 0, 0, nil, "", nil, "", true},
		{"empty argv0", imageConfig{Cmd: []string{""}}, "", 0, 0, nil, "", nil, "", true},
		{"NUL", imageConfig{Cmd: []string{"app\x00x"}}, "", 0, 0, nil, "", nil, "NUL", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w, err := planWorkload(tc.c, []byte(testPasswd), []byte(testGroup), bins)
			switch {
			case tc.noWorkload:
				if err != errNoWorkload {
					t.Fatalf("err %v, want errNoWorkload", err)
				}
				return
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err %v, want one mentioning %q", err, tc.err)
				}
				return
			case err != nil:
				t.Fatal(err)
			}
			if w.path != tc.path || w.uid != tc.uid || w.gid != tc.gid || !slices.Equal(w.groups, tc.groups) || w.dir != tc.dir {
				t.Errorf("got %+v", w)
			}
			if want := append(append([]string(nil), tc.c.Entrypoint...), tc.c.Cmd...); !slices.Equal(w.argv, want) {
				t.Errorf("argv %q, want %q", w.argv, want)
			}
			for _, kv := range tc.envHas {
				if !slices.Contains(w.env, kv) {
					t.Errorf("env %q lacks %q", w.env, kv)
				}
			}
			for _, kv := range w.env {
				if k, _, ok := strings.Cut(kv, "="); !ok || k == "" {
					t.Errorf("env holds %q", kv)
				}
			}
		})
	}
}

// FuzzImageConfig: any image-config.json, passwd and group either plans a
// workload that can be started (an absolute executable path, a non-empty
// argv, an absolute directory, env entries with names and a PATH, no
// (uid_t)-1) or fails with an error; nothing panics.
func FuzzImageConfig(f *testing.F) {
	f.Add([]byte(`{"User":"app","Env":["PATH=/bin"],"Entrypoint":["/entry"],"Cmd":["x"],"WorkingDir":"/srv"}`), []byte(testPasswd), []byte(testGroup))
	f.Add([]byte(`{"User":"1:2","Cmd":["app"]}`), []byte(""), []byte(""))
	f.Add([]byte(`{"User":"nobody:nogroup","Cmd":["./x"],"WorkingDir":"a/../b"}`), []byte(testPasswd), []byte(testGroup))
	f.Add([]byte(`null`), []byte("a:b:c:d:e:f:g"), []byte("g:x:1:a,b,c"))
	f.Fuzz(func(t *testing.T, cfg, passwd, group []byte) {
		c, err := parseImageConfig(cfg)
		if err != nil {
			return
		}
		w, err := planWorkload(c, passwd, group, func(p string) bool { return strings.HasPrefix(p, "/") })
		if err != nil {
			return
		}
		if len(w.argv) == 0 || w.argv[0] == "" || !strings.HasPrefix(w.path, "/") || !strings.HasPrefix(w.dir, "/") {
			t.Fatalf("unstartable: %+v", w)
		}
		if w.uid == 1<<32-1 || w.gid == 1<<32-1 {
			t.Fatalf("(uid_t)-1: %+v", w)
		}
		if envValue(w.env, "PATH") == "" && !slices.ContainsFunc(w.env, func(kv string) bool { return strings.HasPrefix(kv, "PATH=") }) {
			t.Fatalf("no PATH: %q", w.env)
		}
		for _, kv := range append(append(append([]string(nil), w.env...), w.argv...), w.dir) {
			if strings.IndexByte(kv, 0) >= 0 {
				t.Fatalf("NUL in %q", kv)
			}
		}
	})
}
