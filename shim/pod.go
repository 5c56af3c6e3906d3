package shim

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"

	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/profiles"
)

// readSandbox reads the runtime a pod's sandbox runs on from the
// sandbox's report, and its cgroups path from its (hardened) spec, in the
// sibling bundle directory (containerd keeps a namespace's bundles side by
// side).
func readSandbox(bundle, sandboxID string) (runtime profiles.Runtime, cgroupsPath string, err error) {
	dir := filepath.Join(filepath.Dir(bundle), sandboxID)
	path := filepath.Join(dir, reportFile)
	var r decide.Report
	if err := readJSON(path, &r); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("pod sandbox %s has no hardening record (%s): was it started by another runtime?", sandboxID, path)
		}
		return "", "", fmt.Errorf("failed to read the record of pod sandbox %s: %w", sandboxID, err)
	}
	if r.Runtime == "" {
		return "", "", fmt.Errorf("the record of pod sandbox %s names no runtime", sandboxID)
	}
	// Only the one field: a spec is large, and this is on every Create.
	var spec struct {
		Linux *struct {
			CgroupsPath string `json:"cgroupsPath"`
		} `json:"linux"`
	}
	if err := readJSON(filepath.Join(dir, configFile), &spec); err != nil {
		return "", "", fmt.Errorf("failed to read the spec of pod sandbox %s: %w", sandboxID, err)
	}
	if spec.Linux != nil {
		cgroupsPath = spec.Linux.CgroupsPath
	}
	return r.Runtime, cgroupsPath, nil
}
