package boottest

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// aptSourceFile is one apt sources file: its path, for messages, and its text.
type aptSourceFile struct {
	path, text string
}

// readAptSources returns apt's source files in the order apt reads them:
// sources.list, then sources.list.d's *.list and *.sources by name. Files
// with any other suffix (such as *.disabled) are ignored, as apt ignores them.
func readAptSources(etcApt string) ([]aptSourceFile, error) {
	var files []aptSourceFile
	main := filepath.Join(etcApt, "sources.list")
	if b, err := os.ReadFile(main); err == nil {
		files = append(files, aptSourceFile{main, string(b)})
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	entries, err := os.ReadDir(filepath.Join(etcApt, "sources.list.d"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || !(strings.HasSuffix(name, ".list") || strings.HasSuffix(name, ".sources")) {
			continue
		}
		p := filepath.Join(etcApt, "sources.list.d", name)
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		files = append(files, aptSourceFile{p, string(b)})
	}
	return files, nil
}

// debianMirror returns the first enabled `deb` source that serves suite,
// so that debootstrap downloads from the mirror this machine already uses
// (and is allowed to reach) rather than from a host written into the test.
// Only schemes debootstrap fetches from are taken: http, https and file.
func debianMirror(files []aptSourceFile, suite string) (string, error) {
	for _, f := range files {
		var srcs []aptSource
		if strings.HasSuffix(f.path, ".sources") {
			srcs = parseDeb822Sources(f.text)
		} else {
			srcs = parseOneLineSources(f.text)
		}
		for _, s := range srcs {
			if !slices.Contains(s.types, "deb") || !slices.Contains(s.suites, suite) {
				continue
			}
			for _, u := range s.uris {
				if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "file:/") {
					return strings.TrimSuffix(u, "/"), nil
				}
			}
		}
	}
	var paths []string
	for _, f := range files {
		paths = append(paths, f.path)
	}
	return "", fmt.Errorf("no enabled deb source for %q with an http, https or file URI in %v", suite, paths)
}

// aptSource is one source entry, in either format.
type aptSource struct {
	types, uris, suites []string
}

// parseOneLineSources reads the one-line format of sources.list(5):
// `deb [opt=val ...] URI suite [component...]`.
func parseOneLineSources(text string) []aptSource {
	var srcs []aptSource
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fields := strings.Fields(line)
		if len(fields) < 3 {
			continue
		}
		typ := fields[0]
		rest := fields[1:]
		if strings.HasPrefix(rest[0], "[") {
			// Options run to the first word that ends with "]".
			i := slices.IndexFunc(rest, func(w string) bool { return strings.HasSuffix(w, "]") })
			if i < 0 {
				continue
			}
			rest = rest[i+1:]
		}
		if len(rest) < 2 {
			continue
		}
		srcs = append(srcs, aptSource{types: []string{typ}, uris: []string{rest[0]}, suites: []string{rest[1]}})
	}
	return srcs
}

// parseDeb822Sources reads the deb822 format of sources.list(5): stanzas
// separated by blank lines, `Field: value` lines, indented continuation
// lines, and `Enabled: no` to turn a stanza off.
func parseDeb822Sources(text string) []aptSource {
	var srcs []aptSource
	fields := map[string]string{}
	last := ""
	flush := func() {
		if len(fields) > 0 && !strings.EqualFold(strings.TrimSpace(fields["enabled"]), "no") {
			srcs = append(srcs, aptSource{
				types:  strings.Fields(fields["types"]),
				uris:   strings.Fields(fields["uris"]),
				suites: strings.Fields(fields["suites"]),
			})
		}
		fields = map[string]string{}
		last = ""
	}
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "#"):
			continue
		case strings.TrimSpace(line) == "":
			flush()
		case line[0] == ' ' || line[0] == '\t':
			if last != "" {
				fields[last] += " " + strings.TrimSpace(line)
			}
		default:
			k, v, ok := strings.Cut(line, ":")
			if !ok {
				continue
			}
			last = strings.ToLower(strings.TrimSpace(k))
			fields[last] = strings.TrimSpace(v)
		}
	}
	flush()
	return srcs
}

// parseAptDepends returns the first real package that `apt-cache depends
// META` lists under Depends and whose name starts with prefix. Virtual
// packages, which apt-cache prints in angle brackets, are skipped.
func parseAptDepends(out, prefix string) (string, error) {
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimPrefix(strings.TrimSpace(line), "|")
		dep, ok := strings.CutPrefix(line, "Depends:")
		if !ok {
			continue
		}
		dep = strings.TrimSpace(dep)
		if strings.HasPrefix(dep, prefix) {
			return dep, nil
		}
	}
	return "", fmt.Errorf("apt-cache depends lists no %s* package:\n%s", prefix, out)
}
