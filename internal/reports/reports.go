// Package reports keeps containers' hardening reports after their bundles
// are gone, for `hardenctl report`.
package reports

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/internal/atomicfile"
	"github.com/hardened-dev/hardened/internal/decide"
)

// A container's hardening-report.json goes with its bundle;
// a copy is kept under a node directory, Dir()/<namespace>/<id>.json,
// for `hardenctl report` after the container is gone: the last
// Count of each namespace, none older than Age.
const (
	// DefaultDir is the node directory of kept reports.
	DefaultDir = "/var/lib/hardened/reports"
	// DirEnv overrides it (containerd's environment, which its shims
	// inherit; the tests' private containerds set it).
	DirEnv = "HARDENED_REPORTS_DIR"
	// Count and Age bound what is kept per namespace.
	Count = 1000
	Age   = 7 * 24 * time.Hour
)

// Dir is where reports are kept.
func Dir() string {
	if d := os.Getenv(DirEnv); d != "" {
		return d
	}
	return DefaultDir
}

// Path is the kept report of container id in namespace ns.
func Path(dir, ns, id string) (string, error) {
	if !decide.IdentifierRE.MatchString(ns) || !decide.IdentifierRE.MatchString(id) {
		return "", fmt.Errorf("namespace %q or container id %q cannot name a report file", ns, id)
	}
	return filepath.Join(dir, ns, id+".json"), nil
}

// Keep writes a copy of a container's report (a refused one's
// included) and prunes the namespace's directory to Count files no
// older than Age.
func Keep(dir, ns string, r *decide.Report) error {
	p, err := Path(dir, ns, r.ContainerID)
	if err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return err
	}
	if err := atomicfile.Write(p, append(data, '\n'), 0o644); err != nil {
		return err
	}
	return prune(filepath.Dir(p), Count, Age, time.Now())
}

func prune(dir string, keep int, age time.Duration, now time.Time) error {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	type kept struct {
		name string
		mod  time.Time
	}
	var files []kept
	for _, e := range ents {
		if !e.Type().IsRegular() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		if fi, err := e.Info(); err == nil {
			files = append(files, kept{e.Name(), fi.ModTime()})
		}
	}
	slices.SortFunc(files, func(a, b kept) int { return b.mod.Compare(a.mod) })
	for i, f := range files {
		if i >= keep || now.Sub(f.mod) > age {
			_ = os.Remove(filepath.Join(dir, f.name))
		}
	}
	return nil
}

// LearnedSubdir holds, under a namespace's directory, the seccomp profiles
// learn mode wrote (seccomp_notify = "learn"), one per container.
const LearnedSubdir = "seccomp"

// LearnedPath is the learned seccomp profile of container id in ns.
func LearnedPath(dir, ns, id string) (string, error) {
	p, err := Path(dir, ns, id)
	if err != nil {
		return "", err
	}
	return filepath.Join(filepath.Dir(p), LearnedSubdir, id+".json"), nil
}

// KeepLearned writes container id's learned seccomp profile (OCI format,
// what a Kubernetes Localhost profile file holds) and prunes the learned
// profiles as the reports are; it returns the file's path.
func KeepLearned(dir, ns, id string, sc *specs.LinuxSeccomp) (string, error) {
	p, err := LearnedPath(dir, ns, id)
	if err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(sc, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", err
	}
	if err := atomicfile.Write(p, append(data, '\n'), 0o644); err != nil {
		return "", err
	}
	return p, prune(filepath.Dir(p), Count, Age, time.Now())
}

// Read reads a kept report.
func Read(dir, ns, id string) (*decide.Report, error) {
	p, err := Path(dir, ns, id)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	var r decide.Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return &r, nil
}
