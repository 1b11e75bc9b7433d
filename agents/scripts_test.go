package agents

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The guest scripts run under whatever /bin/sh the distro has: dash on
// Debian, bash on Fedora, busybox ash on Alpine. The tests run them under
// each of those found here, and always under /bin/sh.
type shell struct {
	name string
	argv []string
}

func shells(t *testing.T) []shell {
	t.Helper()
	found := []shell{{"sh", []string{"/bin/sh"}}}
	for _, s := range []shell{
		{"dash", []string{"dash"}},
		{"bash", []string{"bash", "--posix"}},
		{"busybox", []string{"busybox", "sh"}},
	} {
		p, err := exec.LookPath(s.argv[0])
		if err != nil {
			// CI installs all three (dash is Debian's /bin/sh; .ci/run
			// installs busybox): a shell missing there is a failure.
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is not installed, and CI is set: the scripts must be run by every shell a guest may have", s.argv[0])
			}
			t.Logf("%s is not installed: the scripts are not run by it here (CI runs them)", s.argv[0])
			continue
		}
		found = append(found, shell{s.name, append([]string{p}, s.argv[1:]...)})
	}
	return found
}

// skipOrFail skips t with reason on a developer machine and fails it in
// CI (CI set), where a missing tool or kernel feature means the test's
// judge did not run.
func skipOrFail(t *testing.T, reason string) {
	t.Helper()
	if os.Getenv("CI") == "" {
		t.Skipf("%s (CI is unset, so this skips; with CI set it fails)", reason)
	}
	t.Fatalf("%s (CI is set, so a judge that cannot run is a failure)", reason)
}

// stubIP logs its arguments and prints $STUB_ADDRS for "addr show", as a
// guest's ip would print the addresses already there. $STUB_FAIL names a
// subcommand that fails.
const stubIP = `#!/bin/sh
printf '%s\n' "ip $*" >>"$STUB_LOG"
case "$*" in
"${STUB_FAIL:-no failure}"*) echo "RTNETLINK answers: Operation not permitted" >&2; exit 2 ;;
"addr show"*) printf '%s\n' "$STUB_ADDRS" ;;
esac
exit 0
`

// stubBusybox does the same for busybox; --list prints $STUB_APPLETS.
const stubBusybox = `#!/bin/sh
printf '%s\n' "busybox $*" >>"$STUB_LOG"
case "$*" in
--list) for a in $STUB_APPLETS; do printf '%s\n' "$a"; done ;;
"ip addr show"*) printf '%s\n' "$STUB_ADDRS" ;;
"route -n") printf '%s\n' "$STUB_ROUTES" ;;
esac
exit 0
`

// stubInit stands for ext4pack-init: it logs its arguments, with the
// test's own paths replaced by CMDLINE and SYS, and fails if $STUB_FAIL
// names it.
const stubInit = `#!/bin/sh
out=
for a; do
	case $a in
	"$STUB_CMDLINE") a=CMDLINE ;;
	"$STUB_SYS") a=SYS ;;
	esac
	out="$out $a"
done
printf 'ext4pack-init%s\n' "$out" >>"$STUB_LOG"
[ "${STUB_FAIL:-}" != ext4pack-init ]
`

// stubLogger logs its name and arguments; it stands for ssh-keygen,
// systemd-machine-id-setup and sshd. $STUB_FAIL names one that fails.
const stubLogger = `#!/bin/sh
name=${0##*/}
printf '%s\n' "$name $*" >>"$STUB_LOG"
[ "$name" != "$STUB_FAIL" ]
`

// guestEnv is a fake guest for one script run: a root for /etc and /var, a
// /proc, a /sys, and a PATH holding only stubs and the few real tools the
// scripts use, so that the host's own ip or busybox cannot leak in.
type guestEnv struct {
	dir, root, proc, sys, bin, log string
	env                            []string
}

func newGuestEnv(t *testing.T) *guestEnv {
	t.Helper()
	dir := t.TempDir()
	g := &guestEnv{
		dir:  dir,
		root: filepath.Join(dir, "root"),
		proc: filepath.Join(dir, "proc"),
		sys:  filepath.Join(dir, "sys"),
		bin:  filepath.Join(dir, "bin"),
		log:  filepath.Join(dir, "calls.log"),
	}
	for _, d := range []string{
		g.root + "/etc", g.root + "/var/lib/banger",
		g.proc + "/sys/kernel/random", g.sys + "/class/net", g.bin,
	} {
		mustMkdir(t, d)
	}
	mustWrite(t, g.proc+"/sys/kernel/hostname", "localhost")
	for _, tool := range []string{"mv", "rm", "chmod", "sleep"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Fatalf("the script tests need %s: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(g.bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	g.env = []string{
		"PATH=" + g.bin,
		"LC_ALL=C",
		"STUB_LOG=" + g.log,
		"BANGER_ROOT=" + g.root,
		"BANGER_PROC=" + g.proc,
		"BANGER_SYS=" + g.sys,
		"BANGER_IFACE_WAIT=0",
	}
	return g
}

func mustMkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, name, data string) {
	t.Helper()
	mustMkdir(t, filepath.Dir(name))
	if err := os.WriteFile(name, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (g *guestEnv) stub(t *testing.T, name, script string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(g.bin, name), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
}

// iface makes /sys/class/net/NAME, with a device link if real.
func (g *guestEnv) iface(t *testing.T, name string, real bool) {
	t.Helper()
	mustMkdir(t, filepath.Join(g.sys, "class/net", name))
	if real {
		mustMkdir(t, filepath.Join(g.sys, "class/net", name, "device"))
	}
}

// run runs the embedded script name under sh with the environment and
// returns its exit code, the stub calls it made and its stderr.
func (g *guestEnv) run(t *testing.T, sh shell, name string, extraEnv ...string) (int, []string, string) {
	t.Helper()
	script := filepath.Join(g.dir, name)
	if err := os.WriteFile(script, asset(name), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(g.log); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	cmd := exec.Command(sh.argv[0], append(sh.argv[1:], script)...)
	cmd.Env = append(slices.Clone(g.env), extraEnv...)
	var stderr bytes.Buffer
	cmd.Stdout = &stderr // the scripts print nothing on stdout; show it if they do
	cmd.Stderr = &stderr
	err := cmd.Run()
	code := 0
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		code = exit.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	var calls []string
	if data, err := os.ReadFile(g.log); err == nil {
		calls = strings.Split(strings.TrimSuffix(string(data), "\n"), "\n")
	}
	return code, calls, stderr.String()
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return string(data)
}

// guestScripts are the shell scripts among the guest files, each run by
// /bin/sh (openrc-run reads its scripts with the shell too, and a runit
// core-service is sourced by /etc/runit/1).
var guestScripts = []string{
	"banger-network-bootstrap.sh", "banger-first-boot.sh", "banger-sysinit.sh",
	"openrc/banger-network", "openrc/banger-first-boot", "openrc/banger-vsock-agent", "openrc/banger-grow-root",
	"runit/banger-vsock-agent.run", "runit/97-banger.sh", "runit/banger-sysinit.initd",
}

func TestScriptsParse(t *testing.T) {
	for _, sh := range shells(t) {
		for _, s := range guestScripts {
			t.Run(sh.name+"/"+s, func(t *testing.T) {
				script := filepath.Join(t.TempDir(), filepath.Base(s))
				if err := os.WriteFile(script, asset(s), 0o644); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(sh.argv[0], append(sh.argv[1:], "-n", script)...).CombinedOutput()
				if err != nil {
					t.Errorf("%s -n: %v\n%s", sh.name, err, out)
				}
				want := "#!/bin/sh\n"
				switch {
				case strings.HasPrefix(s, "openrc/"):
					want = "#!/sbin/openrc-run\n"
				case strings.HasSuffix(s, "97-banger.sh"):
					want = "# " // sourced, not executed
				}
				if !bytes.HasPrefix(asset(s), []byte(want)) {
					t.Errorf("%s does not start with %q", s, want)
				}
			})
		}
	}
}

// TestShellcheck lints the scripts as POSIX sh. CI installs shellcheck
// (apt-get install -y shellcheck); elsewhere its absence only skips.
func TestShellcheck(t *testing.T) {
	sc, err := exec.LookPath("shellcheck")
	if err != nil {
		skipOrFail(t, "shellcheck is not installed (apt-get install -y shellcheck)")
	}
	for _, s := range guestScripts {
		t.Run(s, func(t *testing.T) {
			script := filepath.Join(t.TempDir(), filepath.Base(s))
			if err := os.WriteFile(script, asset(s), 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(sc, "--shell=sh", "--severity=style", script).CombinedOutput()
			if err != nil {
				t.Errorf("shellcheck: %v\n%s", err, out)
			}
		})
	}
}

// TestSysinitGrows runs banger-sysinit's growth step (busybox, sysvinit and
// runit run / grow through it): the helper runs while the switch exists, a
// failed or missing helper is reported, and the script goes on to the end.
func TestSysinitGrows(t *testing.T) {
	for _, sh := range shells(t) {
		for _, tc := range []struct {
			name       string
			sw, helper bool
			fail       string
			called     bool
			stderrHas  string
		}{
			{name: "grows", sw: true, helper: true, called: true},
			{name: "helper fails", sw: true, helper: true, fail: "ext4pack-init", called: true, stderrHas: "banger-sysinit: growing / to its device failed"},
			{name: "helper missing", sw: true, stderrHas: "/usr/local/sbin/ext4pack-init is missing"},
			{name: "switch removed", helper: true},
		} {
			t.Run(sh.name+"/"+tc.name, func(t *testing.T) {
				g := newGuestEnv(t)
				if tc.sw {
					mustWrite(t, g.root+"/etc/banger/grow-root", string(asset("grow-root")))
				}
				if tc.helper {
					mustMkdir(t, g.root+"/usr/local/sbin")
					if err := os.WriteFile(g.root+"/usr/local/sbin/ext4pack-init", []byte(stubInit), 0o755); err != nil {
						t.Fatal(err)
					}
				}
				code, calls, stderr := g.run(t, sh, "banger-sysinit.sh", "STUB_FAIL="+tc.fail)
				if code != 0 {
					t.Errorf("exit %d, want 0: boot goes on\n%s", code, stderr)
				}
				if got := slices.Contains(calls, "ext4pack-init grow"); got != tc.called {
					t.Errorf("helper called: %v, want %v (calls %q)", got, tc.called, calls)
				}
				if tc.stderrHas != "" && !strings.Contains(stderr, tc.stderrHas) {
					t.Errorf("stderr %q lacks %q", stderr, tc.stderrHas)
				}
				if tc.stderrHas == "" && strings.Contains(stderr, "banger-sysinit: grow") {
					t.Errorf("stderr %q reports a growth failure", stderr)
				}
				// The step after it still ran.
				if !strings.Contains(stderr, "the network set-up failed") {
					t.Errorf("the network step did not run after the growth: %q", stderr)
				}
			})
		}
	}
}
