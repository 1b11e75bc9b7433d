package tarflat

import (
	"bufio"
	"bytes"
	"path"
	"strings"

	"github.com/ext4pack/ext4pack/ext4w"
)

// Init system names, as InitSystem.Name gives them (SPEC "Guest init
// systems"). The manifest's guest_init uses the same words.
const (
	InitNone         = ""              // no /sbin/init: a container image
	InitSystemd      = "systemd"       // /sbin/init -> .../systemd
	InitOpenRC       = "openrc"        // see InitSystem.Name for its three shapes
	InitRunit        = "runit"         // /sbin/init -> .../runit-init
	InitBusybox      = "busybox"       // /sbin/init is busybox, with no OpenRC behind it
	InitSysvinit     = "sysvinit"      // sysvinit's /sbin/init with its /etc/inittab
	InitExt4packInit = "ext4pack-init" // ext4pack's own, from an earlier make-bundle
	InitUnknown      = "unknown"       // an /sbin/init of none of these kinds
)

// Runit flavours, as InitSystem.Flavor gives them.
const (
	RunitVoid   = "void"   // stage 1 sources /etc/runit/core-services/*.sh
	RunitDebian = "debian" // stage 1 runs the sysv-rc scripts of /etc/rcS.d
)

// OpenRCNoBoot is InitSystem.Flavor for an OpenRC that never enters the
// boot runlevel: Debian's, whose /etc/init.d/rcS runs `openrc sysinit` and
// whose rc runs `openrc default`, where Alpine's inittab and openrc-init
// also run `openrc boot`. Its set-up services belong in sysinit.
const OpenRCNoBoot = "no-boot-runlevel"

// InitSystem is what /sbin/init turned out to be, found by following it
// through symlinks (a usr-merged /sbin included) once the whole tar is read.
type InitSystem struct {
	// Name is one of the Init* constants. InitOpenRC has three shapes:
	// busybox's init with an /etc/inittab that runs an existing
	// /sbin/openrc (Alpine); openrc-init as /sbin/init; and sysvinit's init
	// whose inittab or /etc/init.d/rcS runs an existing openrc (Debian).
	Name string
	// Path is the absolute path /sbin/init resolves to, such as
	// "/usr/lib/systemd/systemd"; "" when there is no /sbin/init.
	Path string
	// Inittab is /etc/inittab's content, through symlinks, and HasInittab
	// whether there is one (it may be empty). Only busybox's and sysvinit's
	// inits read it.
	Inittab    []byte
	HasInittab bool
	// Flavor is RunitVoid or RunitDebian for InitRunit, "" or
	// OpenRCNoBoot for InitOpenRC, "" otherwise.
	Flavor string
	// Why says in a few words how Name was told, for make-bundle's message:
	// "/etc/inittab runs /sbin/openrc".
	Why string
}

// initSystem classifies the image's /sbin/init (SPEC "Guest init systems").
func (c *copier) initSystem() InitSystem {
	in := InitSystem{}
	in.Inittab, in.HasInittab = c.content("etc/inittab")
	p, st, err := c.w.Resolve("sbin/init")
	if err != nil {
		// Missing, dangling or looping: the kernel finds no init there.
		in.Name, in.Why = InitNone, "no /sbin/init"
		return in
	}
	in.Path = "/" + p
	if st.Type != ext4w.TypeRegular {
		in.Name, in.Why = InitUnknown, "/sbin/init is not a regular file"
		return in
	}
	base := path.Base(p)
	switch {
	case base == "systemd":
		in.Name = InitSystemd
	case base == "ext4pack-init":
		in.Name = InitExt4packInit
	case base == "openrc-init":
		in.Name, in.Why = InitOpenRC, "openrc-init"
	case base == "runit-init":
		in.Name, in.Flavor = InitRunit, RunitDebian
		if _, st, err := c.w.Resolve("etc/runit/core-services"); err == nil && st.Type == ext4w.TypeDir {
			in.Flavor = RunitVoid
		}
		in.Why = in.Flavor + "'s stage 1"
	case c.isBusybox(base, st.ID):
		in.Name, in.Why = InitBusybox, "no OpenRC in /etc/inittab"
		if !in.HasInittab {
			in.Why = "no /etc/inittab"
		}
		if op := c.runsOpenRC(in.Inittab, true); op != "" {
			in.Name, in.Why = InitOpenRC, "/etc/inittab runs "+op
		}
	case (base == "init" || base == "sysvinit") && in.HasInittab:
		// sysvinit's init has no name of its own: it is told by being a
		// plain "init" with an inittab to read.
		in.Name = InitSysvinit
		rcS, _ := c.content("etc/init.d/rcS")
		if op := c.runsOpenRC(in.Inittab, true); op != "" {
			in.Name, in.Why = InitOpenRC, "sysvinit, /etc/inittab runs "+op
		} else if op := c.runsOpenRC(rcS, false); op != "" {
			in.Name, in.Why = InitOpenRC, "sysvinit, /etc/init.d/rcS runs "+op
		}
		if in.Name == InitOpenRC && !runsBootLevel(in.Inittab) && !runsBootLevel(rcS) {
			in.Flavor = OpenRCNoBoot
		}
	default:
		in.Name = InitUnknown
	}
	return in
}

// isBusybox reports whether the init binary, named base with identity id,
// is busybox: by name (busybox, busybox.static), or as a hardlink of
// /bin/busybox, as some images install its applets.
func (c *copier) isBusybox(base string, id uint32) bool {
	if strings.HasPrefix(base, "busybox") {
		return true
	}
	for _, cand := range []string{"bin/busybox", "usr/bin/busybox"} {
		if _, st, err := c.w.Resolve(cand); err == nil && st.ID == id {
			return true
		}
	}
	return false
}

// runsBootLevel reports whether a script runs `openrc boot`: any line, not
// a comment, with the words openrc and boot one after the other.
func runsBootLevel(script []byte) bool {
	for _, line := range strings.Split(string(script), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		w := strings.Fields(line)
		for i := 0; i+1 < len(w); i++ {
			if path.Base(w[i]) == "openrc" && w[i+1] == "boot" {
				return true
			}
		}
	}
	return false
}

// runsOpenRC returns the absolute path of the openrc executable that
// script runs, if it runs one that exists in the image: in an inittab
// (inittab true), the first word of an entry's process field; in a shell
// script such as Debian's /etc/init.d/rcS, any word of a command line.
func (c *copier) runsOpenRC(script []byte, inittab bool) string {
	sc := bufio.NewScanner(bytes.NewReader(script))
	sc.Buffer(nil, maxKept+1)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		var words []string
		if inittab {
			// id:runlevels:action:process (inittab(5); busybox's is alike).
			f := strings.SplitN(line, ":", 4)
			if len(f) < 4 {
				continue
			}
			words = strings.Fields(f[3])
			if len(words) > 1 && words[0] == "exec" {
				words = words[1:]
			}
			words = words[:min(len(words), 1)]
		} else {
			words = strings.Fields(line)
		}
		for _, w := range words {
			if path.Base(w) != "openrc" || !strings.HasPrefix(w, "/") {
				continue
			}
			if _, st, err := c.w.Resolve(strings.TrimPrefix(w, "/")); err == nil && st.Type == ext4w.TypeRegular {
				return w
			}
		}
	}
	return ""
}
