package decide

import (
	"fmt"
	"regexp"
)

// CRI annotations the decision reads (the same ones containerd's manager
// and runsc group a pod by).
const (
	AnnContainerType = "io.kubernetes.cri.container-type"
	AnnSandboxID     = "io.kubernetes.cri.sandbox-id"

	ContainerTypeSandbox   = "sandbox"
	ContainerTypeContainer = "container"
)

// IdentifierRE is containerd's identifier syntax; a namespace, container
// or sandbox id that does not match it is never used as a path component.
var IdentifierRE = regexp.MustCompile(`^[A-Za-z0-9]+(?:[._-](?:[A-Za-z0-9]+))*$`)

// PodMember returns the sandbox id when the container joins a CRI pod's
// sandbox, "" when it decides its own runtime (a pod sandbox, or a
// standalone container).
func PodMember(id string, annotations map[string]string) (string, error) {
	sandboxID := annotations[AnnSandboxID]
	if sandboxID == "" || sandboxID == id || annotations[AnnContainerType] == ContainerTypeSandbox {
		return "", nil
	}
	if !IdentifierRE.MatchString(sandboxID) || len(sandboxID) > 76 {
		return "", fmt.Errorf("invalid %s annotation %q", AnnSandboxID, sandboxID)
	}
	return sandboxID, nil
}

// CRIRecord is what containerd's CRI keeps in a container's record (its
// kind label and metadata extension). Unlike the spec's annotations, NRI
// plugins and CDI specs cannot change it.
type CRIRecord struct {
	// Kind is "sandbox" or "container" (label io.cri-containerd.kind); ""
	// for a container CRI did not create.
	Kind string
	// SandboxID is the pod sandbox an app container belongs to.
	SandboxID string
}

// criIdentityProblem compares what the spec's annotations say of the
// container's pod (which NRI plugins and CDI specs can change, and which
// containerd's manager and runsc group a pod by) with what containerd's CRI
// recorded (which they cannot), and returns the first disagreement, or "".
// An app container that claims another pod's sandbox would be put into
// that pod's shim and, on gVisor, into its sandbox; one that claims to be a
// sandbox would choose its own runtime, leaving its pod's gVisor.
func criIdentityProblem(id string, ann map[string]string, rec CRIRecord) string {
	switch rec.Kind {
	case "":
		return "" // not a CRI container: nothing recorded to compare with
	case ContainerTypeSandbox:
		if t := ann[AnnContainerType]; t != ContainerTypeSandbox {
			return fmt.Sprintf("containerd's CRI recorded a pod sandbox, and annotation %s says %q", AnnContainerType, t)
		}
		if sb := ann[AnnSandboxID]; sb != id {
			return fmt.Sprintf("containerd's CRI recorded pod sandbox %s, and annotation %s says %q", id, AnnSandboxID, sb)
		}
	case ContainerTypeContainer:
		if t := ann[AnnContainerType]; t != ContainerTypeContainer {
			return fmt.Sprintf("containerd's CRI recorded an app container, and annotation %s says %q", AnnContainerType, t)
		}
		if sb := ann[AnnSandboxID]; rec.SandboxID == "" || sb != rec.SandboxID {
			return fmt.Sprintf("containerd's CRI recorded the container in pod sandbox %q, and annotation %s says %q", rec.SandboxID, AnnSandboxID, sb)
		}
	default:
		return fmt.Sprintf("containerd's CRI recorded an unknown kind %q", rec.Kind)
	}
	return ""
}
