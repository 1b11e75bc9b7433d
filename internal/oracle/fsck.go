package oracle

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// fsckPasses are the only Pass lines a clean `e2fsck -fn` prints, in order.
// Any other pass (1B-1D for shared blocks, 3A for rehashing) means trouble.
var fsckPasses = []string{
	"Pass 1: Checking inodes, blocks, and sizes",
	"Pass 2: Checking directory structure",
	"Pass 3: Checking directory connectivity",
	"Pass 4: Checking reference counts",
	"Pass 5: Checking group summary information",
}

var (
	// fsckBanner matches the version line e2fsck prints on stderr.
	fsckBanner = regexp.MustCompile(`^e2fsck \d+\.\d+(\.\d+)? \(.*\)$`)
	// fsckSummary matches the last line. The name before the colon is the
	// image path, or the volume label when the filesystem has one.
	fsckSummary = regexp.MustCompile(`^.+: \d+/\d+ files \(\d+\.\d% non-contiguous\), \d+/\d+ blocks$`)
)

// FsckResult is what one `e2fsck -fn` run said about an image.
type FsckResult struct {
	Output   string   // combined stdout and stderr
	ExitCode int      // e2fsck's exit status
	Problems []string // lines a clean check does not print, plus missing expected lines
}

// Clean reports whether e2fsck exited 0 and printed nothing but its banner,
// the five passes and the summary.
func (r FsckResult) Clean() bool { return r.ExitCode == 0 && len(r.Problems) == 0 }

// RunFsck runs `e2fsck -fn image` and classifies its output. The error is
// non-nil only when e2fsck could not be run at all; a problem in the image
// is reported through the result.
func RunFsck(image string) (FsckResult, error) {
	cmd := command("e2fsck", "-fn", image)
	out, err := cmd.CombinedOutput()
	res := FsckResult{Output: string(out)}
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		res.ExitCode = exit.ExitCode()
	case err != nil:
		return res, fmt.Errorf("oracle: running e2fsck: %w", err)
	}
	res.Problems = fsckProblems(string(out))
	if res.ExitCode != 0 {
		res.Problems = append(res.Problems, fmt.Sprintf("exit status %d", res.ExitCode))
	}
	return res, nil
}

// fsckProblems returns every line of out that a clean check does not print,
// and notes any expected line that is missing (a check that stopped early).
func fsckProblems(out string) []string {
	var problems []string
	pass, summaries := 0, 0
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), " \r")
		switch {
		case line == "":
			// Blank lines carry no message.
		case fsckBanner.MatchString(line):
		case pass < len(fsckPasses) && line == fsckPasses[pass] && summaries == 0:
			pass++
		case fsckSummary.MatchString(line) && pass == len(fsckPasses) && summaries == 0:
			summaries++
		default:
			problems = append(problems, "unexpected line: "+line)
		}
	}
	if pass < len(fsckPasses) {
		problems = append(problems, "missing line: "+fsckPasses[pass])
	}
	if summaries == 0 {
		problems = append(problems, "missing the summary line (IMAGE: N/N files ..., N/N blocks)")
	}
	return problems
}

// FsckOutput runs `e2fsck -fn image` for callers without a testing.TB.
// out is e2fsck's combined output; clean is true only if it exited 0 and
// printed no problem. err is non-nil only if e2fsck could not be run.
func FsckOutput(image string) (out string, clean bool, err error) {
	res, err := RunFsck(image)
	return res.Output, res.Clean(), err
}

// Fsck fails t unless `e2fsck -fn image` exits 0 and prints no problem.
// The failure message holds e2fsck's full output.
func Fsck(t testing.TB, image string) {
	t.Helper()
	requireTool(t, "e2fsck", "e2fsprogs")
	res, err := RunFsck(image)
	if err != nil {
		t.Fatalf("fsck %s: %v", image, err)
	}
	if !res.Clean() {
		t.Fatalf("e2fsck -fn %s is not clean:\n  %s\nfull output:\n%s",
			image, strings.Join(res.Problems, "\n  "), res.Output)
	}
}

// sbinDirs are searched after PATH: e2fsprogs and losetup live in sbin,
// which a non-root user's PATH on Debian lacks, yet e2fsck -n, dumpe2fs
// and mkfs.ext4 on a plain file work without root.
var sbinDirs = []string{"/usr/sbin", "/sbin"}

// tool returns the path of the program name: from PATH, else from sbinDirs,
// else name itself, so that running it fails with exec's usual error.
func tool(name string) string {
	if p, err := exec.LookPath(name); err == nil {
		return p
	}
	for _, d := range sbinDirs {
		p := filepath.Join(d, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p
		}
	}
	return name
}

// command is exec.Command with name looked up by tool, a C locale, so that
// messages are the English ones the judges parse, and TZ=UTC, so that the
// times dumpe2fs prints do not depend on the host.
func command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(tool(name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C", "TZ=UTC")
	return cmd
}

// requireTool skips or fails t (see skipOrFail) when name is found neither
// on PATH nor in sbin.
func requireTool(t testing.TB, name, aptPackage string) {
	t.Helper()
	if tool(name) == name {
		skipOrFail(t, fmt.Sprintf("%s not found on PATH, /usr/sbin or /sbin (apt-get install %s)", name, aptPackage))
	}
}

// Dumpe2fsHeader returns the superblock fields `dumpe2fs -h image` prints,
// keyed by the text before the first colon ("Inode count", "Filesystem
// features", ...), values trimmed. Journal fields are included.
func Dumpe2fsHeader(t testing.TB, image string) map[string]string {
	t.Helper()
	requireTool(t, "dumpe2fs", "e2fsprogs")
	cmd := command("dumpe2fs", "-h", image)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dumpe2fs -h %s: %v\n%s%s", image, err, stderr.Bytes(), out)
	}
	return parseDumpe2fs(string(out))
}

// parseDumpe2fs parses "Key:   value" lines; lines without a colon (none in
// a 1.47 header) are skipped. A repeated key keeps its first value.
func parseDumpe2fs(out string) map[string]string {
	fields := make(map[string]string)
	for line := range strings.Lines(out) {
		key, value, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		key = strings.TrimSpace(key)
		if _, dup := fields[key]; dup || key == "" {
			continue
		}
		fields[key] = strings.TrimSpace(value)
	}
	return fields
}

// specFeatures is SPEC's feature set ("The ext4 image"), in the order
// dumpe2fs 1.47 prints them.
var specFeatures = []string{
	"has_journal", "ext_attr", "resize_inode", "dir_index", "filetype",
	"extent", "64bit", "flex_bg", "sparse_super", "large_file", "huge_file",
	"dir_nlink", "extra_isize", "metadata_csum",
}

// SpecFeatures returns SPEC's ext4 feature set, in dumpe2fs order, so a test
// can compare it with the "Filesystem features" field of Dumpe2fsHeader.
func SpecFeatures() []string { return slices.Clone(specFeatures) }

// mke2fsConf is Debian bookworm's /etc/mke2fs.conf reduced to what matters
// for a 4 KiB-block ext4, plus a "default" usage type so `-T default`
// neither warns nor picks up a host's small/floppy/big/huge tuning. With it
// the host's own mke2fs.conf (an upstream 1.47 one adds orphan_file and
// metadata_csum_seed) has no say.
const mke2fsConf = `[defaults]
	base_features = sparse_super,large_file,filetype,resize_inode,dir_index,ext_attr
	blocksize = 4096
	inode_size = 256
	inode_ratio = 16384

[fs_types]
	ext4 = {
		features = has_journal,extent,huge_file,flex_bg,metadata_csum,64bit,dir_nlink,extra_isize
	}
	default = {
	}
`

// Mkfs makes a reference ext4 image at image, sizeBytes long, the way a
// Debian bookworm mkfs.ext4 does by default, with SPEC's exact feature set
// and fully initialised inode tables and journal (so every group has
// ITABLE_ZEROED, as SPEC requires of ext4pack). extraArgs go before the
// image name (for example "-d", dir, "-U", uuid, "-L", label, "-N",
// inodes); "-E" values are merged with Mkfs's own. mkfs.ext4 1.47.0 takes
// its superblock times from E2FSPROGS_FAKE_TIME when set (t.Setenv it);
// it ignores SOURCE_DATE_EPOCH. Mkfs fails t if the features dumpe2fs
// reports differ from SpecFeatures, so extraArgs cannot change them.
func Mkfs(t testing.TB, image string, sizeBytes int64, extraArgs ...string) {
	t.Helper()
	requireTool(t, "mkfs.ext4", "e2fsprogs")
	if sizeBytes <= 0 {
		t.Fatalf("Mkfs %s: size %d is not positive", image, sizeBytes)
	}
	conf := filepath.Join(t.TempDir(), "mke2fs.conf")
	if err := os.WriteFile(conf, []byte(mke2fsConf), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(image)
	if err != nil {
		t.Fatal(err)
	}
	// Truncate, not write: the file stays sparse like ext4pack's output.
	err = errors.Join(f.Truncate(sizeBytes), f.Close())
	if err != nil {
		t.Fatal(err)
	}
	// mke2fs keeps only the last -E it is given, so the caller's extended
	// options are merged into ours rather than passed as a second -E.
	extended := []string{"lazy_itable_init=0", "lazy_journal_init=0"}
	var rest []string
	for i := 0; i < len(extraArgs); i++ {
		switch a := extraArgs[i]; {
		case a == "-E" && i+1 < len(extraArgs):
			extended = append(extended, extraArgs[i+1])
			i++
		case strings.HasPrefix(a, "-E") && len(a) > 2:
			extended = append(extended, a[2:])
		default:
			rest = append(rest, a)
		}
	}
	args := []string{
		"-q", "-F", "-T", "default", "-b", "4096", "-I", "256",
		// 1.47.0 knows both ^-features; naming the SPEC set explicitly
		// keeps the result independent of the config's feature lists.
		"-O", "^metadata_csum_seed,^orphan_file," + strings.Join(specFeatures, ","),
		"-E", strings.Join(extended, ","),
	}
	args = append(args, rest...)
	args = append(args, image)
	cmd := command("mkfs.ext4", args...)
	cmd.Env = append(cmd.Env, "MKE2FS_CONFIG="+conf)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	got := strings.Fields(Dumpe2fsHeader(t, image)["Filesystem features"])
	if !slices.Equal(got, specFeatures) {
		t.Fatalf("Mkfs %s: features %v, want SPEC's %v", image, got, specFeatures)
	}
}
