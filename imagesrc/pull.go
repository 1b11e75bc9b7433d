package imagesrc

import "fmt"

// PullPolicy says when a registry is asked, in podman's words.
type PullPolicy int

const (
	// PullMissing, the default: a tag may resolve to the manifest cached
	// for it, and only the blobs the cache lacks are fetched.
	PullMissing PullPolicy = iota
	// PullAlways resolves a tag at the registry every time. Blobs the
	// cache holds are still not fetched again: a digest names one content.
	PullAlways
	// PullNever asks no registry: the image must be in the cache, and
	// Open names the first blob that is not.
	PullNever
)

// ParsePullPolicy reads "always", "missing" or "never".
func ParsePullPolicy(s string) (PullPolicy, error) {
	switch s {
	case "missing":
		return PullMissing, nil
	case "always":
		return PullAlways, nil
	case "never":
		return PullNever, nil
	}
	return 0, fmt.Errorf("pull policy %q: use always, missing or never", s)
}

func (p PullPolicy) String() string {
	switch p {
	case PullMissing:
		return "missing"
	case PullAlways:
		return "always"
	case PullNever:
		return "never"
	}
	return fmt.Sprintf("PullPolicy(%d)", int(p))
}
