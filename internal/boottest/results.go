package boottest

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The checks the guest's checker (./checker) runs, by name, and the ones
// the host adds from the console log. The host insists on every one: a
// checker that stopped early or skipped a check cannot pass.
var guestChecks = []string{
	"root-ext4", "root-rw", "setuid-kept", "owner-kept",
	"first-boot-marker", "machine-id",
	"network-address", "network-hostname", "network-resolv",
	"agent-version", "agent-healthz", "agent-ports", "agent-unprivileged",
}

// wantChecks returns the checks g must report.
func wantChecks(g guest) []string {
	want := slices.Clone(guestChecks)
	if g.user == "" || g.user == "root" {
		want = append(want, "agent-restart")
	}
	if g.start == startWorkload {
		want = append(want, "workload-identity", "workload-logged", "clean-poweroff")
	}
	return append(want, "first-boot-once", "no-kernel-panic")
}

// growChecks are the checks of a boot whose disk was made larger than the
// image (issue 19): the guest's (/ spans the device, a file larger than the
// image fits) and the host's (the console and the image after the boot).
var growChecks = []string{"root-grown", "grow-once"}

// grewLine is in the one line the guest prints when it grew /, under every
// init: ext4pack-init grow's "grew / on /dev/nvme0n1 from ... to ...".
const grewLine = "grew / on /dev/"

// kernelResize are the kernel's lines about an online resize
// (fs/ext4/resize.c, ext4_resize_fs and ext4_convert_meta_bg): the kernel
// prints them for every resize it is asked for, even one that changes
// nothing.
var kernelResize = []string{"resizing filesystem from", "resized filesystem to", "resized to ", "Converting file system to meta_bg"}

// growCheck adds the host's growth check to r: on a boot that must grow /
// (grows), the console shows the guest's line once and the image's
// superblock counts wantBlocks after it; on one that must not (the reboot
// of a grown image), neither the guest nor the kernel says anything about
// a resize, and the block count stays wantBlocks.
func growCheck(r *report, console string, blocks, wantBlocks uint64, grows bool) {
	lines, kernel := 0, 0
	for _, l := range strings.Split(console, "\n") {
		if strings.Contains(l, grewLine) {
			lines++
		}
		for _, k := range kernelResize {
			if strings.Contains(l, "EXT4-fs") && strings.Contains(l, k) {
				kernel++
				break
			}
		}
	}
	ok := blocks == wantBlocks
	if grows {
		ok = ok && lines == 1 && kernel > 0
	} else {
		ok = ok && lines == 0 && kernel == 0
	}
	r.add("grow-once", ok, "the console shows %d growth lines and %d kernel resize lines (this boot grows: %v); the image has %d blocks, want %d",
		lines, kernel, grows, blocks, wantBlocks)
}

// firstBootDone are the lines a first boot that ran to its end prints on
// the console: the script's, or ext4pack-init's own steps'.
var firstBootDone = []string{"banger-first-boot: done", "ext4pack-init: first-boot: done"}

// hostChecks judges what only the console shows, and adds the results to
// r: the first-boot set-up ran firstBoots times (1 on the first boot, 0 on
// the reboot); the kernel never panicked; under ext4pack-init, the workload's
// output and its end were logged, and the guest powered off cleanly.
func hostChecks(r *report, g guest, console string, firstBoots int, poweredOff, noConsole bool) {
	n := 0
	for _, l := range strings.Split(console, "\n") {
		for _, d := range firstBootDone {
			if strings.Contains(l, d) {
				n++
			}
		}
	}
	r.add("first-boot-once", n == firstBoots, "the console shows %d first-boot runs, want %d", n, firstBoots)
	panicked := strings.Contains(console, "Kernel panic") || strings.Contains(console, "Attempted to kill init")
	r.add("no-kernel-panic", !panicked, "kernel panic on the console: %v", panicked)
	if g.start != startWorkload {
		return
	}
	ended := regexp.MustCompile(`ext4pack-init: workload: (exited with status \d+|killed by signal \w+)`).FindString(console)
	// Without a console the workload's output goes nowhere; ext4pack-init's
	// lines reach the kernel's log.
	marked := strings.Contains(console, workloadMarker) || noConsole
	r.add("workload-logged", marked && ended != "",
		"marker on the console: %v; end logged: %q", strings.Contains(console, workloadMarker), ended)
	off := strings.Contains(console, "ext4pack-init: powering off")
	r.add("clean-poweroff", poweredOff && off && !panicked, "qemu exited: %v; \"powering off\" logged: %v", poweredOff, off)
}

// check is one `BOOTTEST CHECK <name> <ok|fail> <detail>` line.
type check struct {
	name, result, detail string
}

// report is what the checker printed on the results port.
type report struct {
	checks  []check
	verdict string   // "PASS", "FAIL", or "" if the checker never got to it
	other   []string // BOOTTEST lines of no known form
}

// add adds a check the host judged; a failed one fails a report that
// passed.
func (r *report) add(name string, ok bool, format string, args ...any) {
	res := "ok"
	if !ok {
		res = "fail"
		if r.verdict == "PASS" {
			r.verdict = "FAIL"
		}
	}
	r.checks = append(r.checks, check{name: name, result: res, detail: fmt.Sprintf(format, args...)})
}

// parseReport reads the checker's lines from a serial log. Lines without
// the BOOTTEST prefix are ignored: the port carries nothing else, but a
// line the guest wrote before its tty was set up may hold stray bytes.
func parseReport(log string) report {
	var r report
	for _, line := range strings.Split(log, "\n") {
		i := strings.Index(line, "BOOTTEST ")
		if i < 0 {
			continue
		}
		line = strings.TrimSpace(line[i:])
		fields := strings.SplitN(line, " ", 5)
		switch {
		case len(fields) == 2 && (fields[1] == "PASS" || fields[1] == "FAIL"):
			r.verdict = fields[1]
		case len(fields) >= 4 && fields[1] == "CHECK":
			c := check{name: fields[2], result: fields[3]}
			if len(fields) == 5 {
				c.detail = fields[4]
			}
			r.checks = append(r.checks, c)
		default:
			r.other = append(r.other, line)
		}
	}
	return r
}

// failed returns the names of the checks that did not report ok.
func (r report) failed() []string {
	var names []string
	for _, c := range r.checks {
		if c.result != "ok" {
			names = append(names, c.name)
		}
	}
	return names
}

// lines returns the checks as the guest printed them, for the test's log.
func (r report) lines() string {
	var b strings.Builder
	for _, c := range r.checks {
		fmt.Fprintf(&b, "BOOTTEST CHECK %s %s %s\n", c.name, c.result, c.detail)
	}
	for _, l := range r.other {
		fmt.Fprintln(&b, l)
	}
	if r.verdict != "" {
		fmt.Fprintf(&b, "BOOTTEST %s\n", r.verdict)
	}
	return b.String()
}

// judge compares a report with what the boot should give: every check in
// want reported exactly once and nothing else, exactly the checks in
// wantFail failed, and the verdict that follows. A negative control passes
// only when the guest failed for the reason it was built to fail for, not
// because the boot broke elsewhere.
func judge(r report, want, wantFail []string) error {
	var problems []string
	seen := map[string]int{}
	for _, c := range r.checks {
		seen[c.name]++
		if !slices.Contains(want, c.name) {
			problems = append(problems, "unexpected check "+c.name)
		}
		if c.result != "ok" && c.result != "fail" {
			problems = append(problems, fmt.Sprintf("check %s: result %q is neither ok nor fail", c.name, c.result))
		}
	}
	for _, name := range want {
		switch seen[name] {
		case 0:
			problems = append(problems, "missing check "+name)
		case 1:
		default:
			problems = append(problems, fmt.Sprintf("check %s reported %d times", name, seen[name]))
		}
	}
	for _, l := range r.other {
		problems = append(problems, "unrecognised line "+l)
	}
	failed := r.failed()
	gotFail, expFail := slices.Sorted(slices.Values(failed)), slices.Sorted(slices.Values(wantFail))
	if !slices.Equal(gotFail, expFail) {
		problems = append(problems, fmt.Sprintf("failed checks %v, want %v", gotFail, expFail))
	}
	wantVerdict := "PASS"
	if len(wantFail) > 0 {
		wantVerdict = "FAIL"
	}
	switch {
	case r.verdict == "":
		problems = append(problems, "no BOOTTEST PASS or FAIL line: the checker did not finish")
	case r.verdict != wantVerdict:
		problems = append(problems, fmt.Sprintf("verdict %s, want %s", r.verdict, wantVerdict))
	case r.verdict == "PASS" && len(failed) > 0, r.verdict == "FAIL" && len(failed) == 0:
		problems = append(problems, fmt.Sprintf("verdict %s does not agree with the failed checks %v", r.verdict, failed))
	}
	if len(problems) > 0 {
		return fmt.Errorf("%s", strings.Join(problems, "\n"))
	}
	return nil
}

// ext4Lines returns the kernel's EXT4-fs lines from the console log.
func ext4Lines(console string) []string {
	var lines []string
	for _, l := range strings.Split(console, "\n") {
		if strings.Contains(l, "EXT4-fs") {
			lines = append(lines, strings.TrimSpace(l))
		}
	}
	return lines
}

// stalledBeforeRoot says whether a boot that failed never reached the
// image: the kernel started (its banner is on the console) and printed no
// EXT4-fs line, so it never mounted the root, nor tried to. Under TCG with
// two vCPUs on a busy two-core host the kernel now and then stalls before
// that (a soft lockup in its own crypto self-tests, seen in CI), which
// says nothing of the image; a boot that reached the image is never
// retried.
func stalledBeforeRoot(console string) bool {
	return strings.Contains(console, "Linux version") && len(ext4Lines(console)) == 0
}

// benignExt4 are the EXT4-fs messages a clean mount, remount and unmount
// print. Any other EXT4-fs line (an error, a warning, a journal recovery, a
// checksum complaint) fails the boot: a fresh image that booted once must
// give the kernel nothing to say but these.
var benignExt4 = append([]string{
	"mounted filesystem",    // "mounted filesystem <uuid> r/w with ordered data mode. Quota mode: none."
	"re-mounted",            // systemd-remount-fs, and / going read-only at shutdown
	"unmounting filesystem", // a clean unmount (newer kernels)
}, kernelResize...) // a growth, which growCheck judges

// suspiciousExt4 returns the EXT4-fs lines not in benignExt4.
func suspiciousExt4(lines []string) []string {
	var bad []string
	for _, l := range lines {
		ok := false
		for _, b := range benignExt4 {
			if strings.Contains(l, b) {
				ok = true
				break
			}
		}
		if !ok {
			bad = append(bad, l)
		}
	}
	return bad
}
