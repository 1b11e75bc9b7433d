package agents

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// busyboxDefaultInittab is what busybox's init does when there is no
// /etc/inittab (its init.c, parse_inittab, and the comment at the top of
// its examples/inittab), for a serial console: the guest's is ttyS0, where
// busybox adds no getty lines for tty2-4. Written out so that the lines
// added after it keep the image booting as it did.
const busyboxDefaultInittab = `# Written by ext4pack: busybox init's built-in defaults, which applied while
# the image had no /etc/inittab, followed by the banger guest services.
::sysinit:/etc/init.d/rcS
::askfirst:/bin/sh
::ctrlaltdel:/sbin/reboot
::shutdown:/sbin/swapoff -a
::shutdown:/bin/umount -a -r
::restart:/sbin/init
`

// The comment line above each line EditInittab adds; with the process
// paths it tells our lines from the image's on a second run.
const (
	sysinitComment = "# Added by ext4pack: the banger guest set-up (mounts where missing, network from ip=, first boot)."
	agentComment   = "# Added by ext4pack: the banger vsock agent, as nobody, restarted when it dies."
	stopComment    = "# Added by ext4pack: / read-only before busybox powers off, so that the journal is clean."
)

// agentUser is who the agent runs as where the init has no way of its own
// to drop privileges: nobody, by number, which needs no /etc/passwd.
const agentUser = "65534:65534"

// EditInittab returns /etc/inittab with the banger guest services added,
// for busybox's init or (sysvinit true) sysvinit's: a sysinit line that runs
// banger-sysinit (network and first boot), after the last sysinit line
// already there, a respawn line for the agent at the end, and for busybox a
// shutdown line that remounts / read-only. Every line of
// old is kept, in order, except lines an earlier EditInittab added, which
// are replaced: editing twice gives what editing once gives. Without an
// inittab (exists false), busybox's built-in defaults are written first,
// since a file that holds only our lines would stop busybox from using
// them; sysvinit has no such defaults and needs one.
func EditInittab(old []byte, exists, sysvinit bool, port uint32) ([]byte, error) {
	if !exists {
		if sysvinit {
			return nil, fmt.Errorf("agents: sysvinit without an /etc/inittab cannot boot; ext4pack does not write one")
		}
		old = []byte(busyboxDefaultInittab)
	}
	text := strings.ReplaceAll(string(old), "\r\n", "\n")
	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if text == "" {
		lines = nil
	}

	kept := lines[:0:0]
	for _, l := range lines {
		if !isOurInittabLine(l) {
			kept = append(kept, l)
		}
	}

	sysinit, respawn := "::sysinit:"+sysinitPath, "::respawn:"+agentPath+" --port="+strconv.FormatUint(uint64(port), 10)+" --user="+agentUser
	if sysvinit {
		// sysvinit wants a unique id of up to four characters; busybox
		// reads the first field as the tty to run on, so it stays empty
		// there.
		sysinit, respawn = "bsi"+sysinit, "bva:2345"+strings.TrimPrefix(respawn, ":")
	}

	last := -1
	for i, l := range kept {
		if inittabAction(l) == "sysinit" {
			last = i
		}
	}
	var out []string
	if last < 0 {
		out = append(out, kept...)
		out = append(out, sysinitComment, sysinit)
	} else {
		out = append(out, kept[:last+1]...)
		out = append(out, sysinitComment, sysinit)
		out = append(out, kept[last+1:]...)
	}
	out = append(out, agentComment, respawn)
	if !sysvinit {
		// sysvinit's rc 0 unmounts; busybox runs its shutdown lines in
		// order and then only kills and powers off.
		out = append(out, stopComment, "::shutdown:"+sysinitPath+" stop")
	}
	var b bytes.Buffer
	for _, l := range out {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}

// inittabAction returns the action field of an inittab entry
// (id:runlevels:action:process), "" for comments and other lines.
func inittabAction(line string) string {
	if strings.HasPrefix(strings.TrimSpace(line), "#") {
		return ""
	}
	f := strings.SplitN(line, ":", 4)
	if len(f) < 4 {
		return ""
	}
	return strings.TrimSpace(f[2])
}

// isOurInittabLine reports whether line is one EditInittab adds: its
// comments, or an entry whose process is banger-sysinit or the agent.
func isOurInittabLine(line string) bool {
	if line == sysinitComment || line == agentComment || line == stopComment {
		return true
	}
	if inittabAction(line) == "" {
		return false
	}
	proc := strings.TrimSpace(strings.SplitN(line, ":", 4)[3])
	for _, p := range []string{sysinitPath, agentPath} {
		if proc == p || strings.HasPrefix(proc, p+" ") {
			return true
		}
	}
	return false
}
