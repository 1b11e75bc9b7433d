package agents

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const firstBootScript = "banger-first-boot.sh"

func TestFirstBoot(t *testing.T) {
	const (
		uuid = "0f8fad5b-d9cb-469f-a165-70867728950e"
		id   = "0f8fad5bd9cb469fa16570867728950e\n"
		kept = "4c4c4544003957108052b4c04f384e32\n"
	)
	tests := []struct {
		name      string
		machineID *string  // nil: no /etc/machine-id
		stubs     []string // stub programs in PATH
		uuid      string
		fail      string // STUB_FAIL
		code      int
		calls     []string
		wantID    string // /etc/machine-id afterwards
		idMode    os.FileMode
		keysGone  bool
		stderr    string
	}{
		{
			name: "empty machine-id, no systemd, no sshd", machineID: ptr(""), uuid: uuid,
			wantID: id, idMode: 0o444, stderr: "machine-id set from a random UUID",
		},
		{
			name: "no machine-id file", uuid: uuid + "\n",
			wantID: id, idMode: 0o444,
		},
		{
			name: "systemd's uninitialized", machineID: ptr("uninitialized\n"), uuid: uuid,
			wantID: id, idMode: 0o444,
		},
		{
			name: "machine-id already set", machineID: ptr(kept), uuid: uuid,
			stubs:  []string{"systemd-machine-id-setup"},
			wantID: kept, idMode: 0o644,
		},
		{
			name: "systemd-machine-id-setup", machineID: ptr(""), uuid: uuid,
			stubs:  []string{"systemd-machine-id-setup"},
			calls:  []string{"systemd-machine-id-setup --root=ROOT"},
			wantID: "", idMode: 0o644, // the stub tool leaves the file as it was
			stderr: "machine-id set by systemd-machine-id-setup",
		},
		{
			name: "sshd present", machineID: ptr(kept), uuid: uuid,
			stubs:  []string{"sshd", "ssh-keygen"},
			calls:  []string{"ssh-keygen -A -f ROOT"},
			wantID: kept, idMode: 0o644, keysGone: true,
			stderr: "new SSH host keys",
		},
		{
			name: "everything", machineID: ptr(""), uuid: uuid,
			stubs:  []string{"sshd", "ssh-keygen", "systemd-machine-id-setup"},
			calls:  []string{"systemd-machine-id-setup --root=ROOT", "ssh-keygen -A -f ROOT"},
			wantID: "", idMode: 0o644, keysGone: true,
		},
		{
			name: "ssh-keygen fails", machineID: ptr(kept), uuid: uuid,
			stubs: []string{"sshd", "ssh-keygen"}, fail: "ssh-keygen",
			code:   1,
			calls:  []string{"ssh-keygen -A -f ROOT"},
			wantID: kept, idMode: 0o644, keysGone: true,
			stderr: "ssh-keygen -A failed",
		},
		{
			name: "systemd-machine-id-setup fails", machineID: ptr(""), uuid: uuid,
			stubs: []string{"systemd-machine-id-setup", "sshd", "ssh-keygen"}, fail: "systemd-machine-id-setup",
			code:   1,
			calls:  []string{"systemd-machine-id-setup --root=ROOT"},
			wantID: "", idMode: 0o644,
			stderr: "systemd-machine-id-setup failed",
		},
		{
			name: "bad kernel UUID", machineID: ptr(""), uuid: "not-a-uuid",
			code: 1, wantID: "", idMode: 0o644, stderr: "unexpected character",
		},
		{
			name: "short kernel UUID", machineID: ptr(""), uuid: "0f8fad5b-d9cb",
			code: 1, wantID: "", idMode: 0o644, stderr: "does not give 32 hex digits",
		},
	}
	for _, sh := range shells(t) {
		for _, tc := range tests {
			t.Run(sh.name+"/"+tc.name, func(t *testing.T) {
				g := newGuestEnv(t)
				marker := g.root + firstBootMarker
				mustWrite(t, marker, "")
				mustWrite(t, g.proc+"/sys/kernel/random/uuid", tc.uuid)
				idFile := g.root + "/etc/machine-id"
				if tc.machineID != nil {
					mustWrite(t, idFile, *tc.machineID)
				}
				oldKeys := []string{
					g.root + "/etc/ssh/ssh_host_ed25519_key",
					g.root + "/etc/ssh/ssh_host_ed25519_key.pub",
					g.root + "/etc/ssh/ssh_host_rsa_key",
				}
				for _, k := range oldKeys {
					mustWrite(t, k, "baked into the image")
				}
				config := g.root + "/etc/ssh/sshd_config"
				mustWrite(t, config, "PermitRootLogin no\n")
				for _, s := range tc.stubs {
					g.stub(t, s, stubLogger)
				}

				code, calls, stderr := g.run(t, sh, firstBootScript, "STUB_FAIL="+tc.fail)
				if code != tc.code {
					t.Errorf("exit %d, want %d; stderr:\n%s", code, tc.code, stderr)
				}
				for i := range calls {
					calls[i] = strings.ReplaceAll(calls[i], g.root, "ROOT")
				}
				if !slices.Equal(calls, tc.calls) {
					t.Errorf("calls %q, want %q", calls, tc.calls)
				}
				if !strings.Contains(stderr, tc.stderr) {
					t.Errorf("stderr %q does not contain %q", stderr, tc.stderr)
				}

				_, err := os.Stat(marker)
				if markerLeft := err == nil; markerLeft != (tc.code != 0) {
					t.Errorf("marker left = %v after exit %d; want it removed only on success", markerLeft, code)
				}

				if fi, err := os.Stat(idFile); err != nil {
					t.Errorf("machine-id: %v", err)
				} else if fi.Mode().Perm() != tc.idMode {
					t.Errorf("machine-id mode %v, want %v", fi.Mode().Perm(), tc.idMode)
				} else if got := readFile(t, idFile); got != tc.wantID {
					t.Errorf("machine-id %q, want %q", got, tc.wantID)
				}

				for _, k := range oldKeys {
					if _, err := os.Stat(k); (err != nil) != tc.keysGone {
						t.Errorf("%s: removed = %v, want %v", filepath.Base(k), err != nil, tc.keysGone)
					}
				}
				if _, err := os.Stat(config); err != nil {
					t.Errorf("sshd_config: %v", err)
				}
				left, err := filepath.Glob(g.root + "/etc/*.banger-tmp")
				if err != nil || len(left) > 0 {
					t.Errorf("temporary files left: %v %v", left, err)
				}
			})
		}
	}
}

func ptr[T any](v T) *T { return &v }
