package shim

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
)

// CRI annotations the shim reads (the same ones containerd's manager and
// runsc group a pod by).
const (
	annContainerType = "io.kubernetes.cri.container-type"
	annSandboxID     = "io.kubernetes.cri.sandbox-id"

	containerTypeSandbox   = "sandbox"
	containerTypeContainer = "container"
)

// identifierRE is containerd's identifier syntax; a sandbox id that does
// not match it is not used as a path component.
var identifierRE = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`)

// podMember returns the sandbox id when the container joins a CRI pod's
// sandbox, "" when it decides its own backend (a pod sandbox, or a
// standalone container).
func podMember(id string, annotations map[string]string) (string, error) {
	sandboxID := annotations[annSandboxID]
	if sandboxID == "" || sandboxID == id || annotations[annContainerType] == containerTypeSandbox {
		return "", nil
	}
	if !identifierRE.MatchString(sandboxID) || len(sandboxID) > 76 {
		return "", fmt.Errorf("invalid %s annotation %q", annSandboxID, sandboxID)
	}
	return sandboxID, nil
}

// readSandbox reads the backend a pod's sandbox runs on from the
// sandbox's report, and its cgroups path from its (hardened) spec, in the
// sibling bundle directory (containerd keeps a namespace's bundles side by
// side).
func readSandbox(bundle, sandboxID string) (backend, cgroupsPath string, err error) {
	dir := filepath.Join(filepath.Dir(bundle), sandboxID)
	path := filepath.Join(dir, reportFile)
	var r Report
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

// criIdentityProblem compares what the spec's annotations say of the
// container's pod (which NRI plugins and CDI specs can change, and which
// containerd's manager and runsc group a pod by) with what containerd's CRI
// recorded (which they cannot), and returns the first disagreement, or "".
// An app container that claims another pod's sandbox would be put into
// that pod's shim and, on gVisor, into its sandbox; one that claims to be a
// sandbox would choose its own backend, leaving its pod's gVisor.
func criIdentityProblem(id string, ann map[string]string, rec criRecord) string {
	switch rec.Kind {
	case "":
		return "" // not a CRI container: nothing recorded to compare with
	case containerTypeSandbox:
		if t := ann[annContainerType]; t != containerTypeSandbox {
			return fmt.Sprintf("containerd's CRI recorded a pod sandbox, and annotation %s says %q", annContainerType, t)
		}
		if sb := ann[annSandboxID]; sb != id {
			return fmt.Sprintf("containerd's CRI recorded pod sandbox %s, and annotation %s says %q", id, annSandboxID, sb)
		}
	case containerTypeContainer:
		if t := ann[annContainerType]; t != containerTypeContainer {
			return fmt.Sprintf("containerd's CRI recorded an app container, and annotation %s says %q", annContainerType, t)
		}
		if sb := ann[annSandboxID]; rec.SandboxID == "" || sb != rec.SandboxID {
			return fmt.Sprintf("containerd's CRI recorded the container in pod sandbox %q, and annotation %s says %q", rec.SandboxID, annSandboxID, sb)
		}
	default:
		return fmt.Sprintf("containerd's CRI recorded an unknown kind %q", rec.Kind)
	}
	return ""
}
