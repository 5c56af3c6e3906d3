package shim

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/containerd/errdefs"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
)

// nodePolicy is a parsed, cross-checked node policy and the profile set it
// was checked against.
type nodePolicy struct {
	pol *policy.Policy
	set *profiles.Set
	// source names the policy in reports and errors.
	source string
}

// policyCache keeps parsed policies so that the Creates of a pod (one shim
// process) do not parse the same file again. An entry is reused while the
// policy file's identity (device, inode, size, mtime) and the profiles
// directory's listing (names, sizes, mtimes of its *.toml files) stay the
// same; inline policies are keyed by their content.
type policyCache struct {
	mu      sync.Mutex
	entries map[string]*policyEntry
}

type policyEntry struct {
	stamp    string // the policy file's identity ("" for inline/default)
	dirStamp string // the profiles directory's listing
	np       *nodePolicy
}

// defaultPolicies is the process-wide cache.
var defaultPolicies = newPolicyCache()

func newPolicyCache() *policyCache {
	return &policyCache{entries: make(map[string]*policyEntry)}
}

// get returns the policy of src, parsing it (and loading its profiles)
// only when it changed. Errors wrap errdefs.ErrInvalidArgument: a policy
// that does not load refuses every container, in either mode.
func (c *policyCache) get(src policySource) (*nodePolicy, error) {
	var key, stamp string
	switch {
	case src.Path != "":
		if !filepath.IsAbs(src.Path) {
			return nil, fmt.Errorf("policy path %q is not absolute: %w", src.Path, errdefs.ErrInvalidArgument)
		}
		st, err := fileStamp(src.Path)
		if err != nil {
			return nil, fmt.Errorf("failed to read the node policy: %v: %w", err, errdefs.ErrInvalidArgument)
		}
		key, stamp = "file:"+src.Path, st
	case len(src.Body) > 0:
		sum := sha256.Sum256(src.Body)
		key = fmt.Sprintf("body:%x", sum)
	default:
		key = "default"
	}

	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e != nil && e.stamp == stamp {
		if ds := dirStamp(e.np.pol.ProfilesDir); ds == e.dirStamp {
			return e.np, nil
		}
	}
	np, ds, err := loadPolicy(src)
	if err != nil {
		delete(c.entries, key)
		return nil, err
	}
	c.entries[key] = &policyEntry{stamp: stamp, dirStamp: ds, np: np}
	return np, nil
}

func loadPolicy(src policySource) (*nodePolicy, string, error) {
	var (
		pol *policy.Policy
		err error
	)
	switch {
	case src.Path != "":
		pol, err = policy.Load(src.Path)
	case len(src.Body) > 0:
		pol, err = policy.Parse(src.Body, src.String())
	default:
		pol = policy.Default()
	}
	if err != nil {
		return nil, "", fmt.Errorf("invalid node policy: %v: %w", err, errdefs.ErrInvalidArgument)
	}
	// Stamp the directory before reading it: a change during the load
	// makes the next get reload.
	ds := dirStamp(pol.ProfilesDir)
	set, err := hardening.LoadProfiles(pol.ProfilesDir)
	if err != nil {
		return nil, "", fmt.Errorf("failed to load the profiles of policy %s: %v: %w", src, err, errdefs.ErrInvalidArgument)
	}
	if err := pol.Check(set); err != nil {
		return nil, "", fmt.Errorf("invalid node policy %s: %v: %w", src, err, errdefs.ErrInvalidArgument)
	}
	return &nodePolicy{pol: pol, set: set, source: src.String()}, ds, nil
}

func fileStamp(path string) (string, error) {
	st, err := os.Stat(path)
	if err != nil {
		return "", err
	}
	var dev, ino uint64
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		dev, ino = uint64(sys.Dev), sys.Ino
	}
	return fmt.Sprintf("%d:%d:%d:%d", dev, ino, st.Size(), st.ModTime().UnixNano()), nil
}

// dirStamp describes the *.toml files of a profiles directory.
func dirStamp(dir string) string {
	if dir == "" {
		return "none"
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "unreadable: " + err.Error()
	}
	var parts []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".toml") {
			continue
		}
		// Stat through symlinks, as the loader reads through them.
		st, err := os.Stat(filepath.Join(dir, e.Name()))
		if err != nil {
			parts = append(parts, e.Name()+":?")
			continue
		}
		parts = append(parts, fmt.Sprintf("%s:%d:%d", e.Name(), st.Size(), st.ModTime().UnixNano()))
	}
	sort.Strings(parts)
	return strings.Join(parts, "|")
}
