package hardening

import (
	"fmt"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// SELinux labels. runc hands process.selinuxLabel to the kernel as the
// container process's exec label (setexeccon, then execve) and
// linux.mountLabel to its mounts (context= options), as root and before the
// process runs: the spec picks the MAC domain the workload runs in. On a
// host that enforces SELinux, spc_t ("super privileged container") and
// unconfined_t are not confined at all, and a type outside the container
// policy (a daemon's, the runtime's own container_runtime_t) gives the
// workload whatever that domain may do. So a label's type must be one the
// profile lists (selinux.process_types, selinux.mount_types: the container
// types), and spc_t and unconfined_t are refused under every profile. The
// level (MCS categories) is left alone: CRI assigns it per pod. On a host
// without SELinux runc ignores both fields.

// unconfinedSELinuxTypes are refused whatever the profile lists.
var unconfinedSELinuxTypes = []string{"spc_t", "unconfined_t"}

// selinuxType returns the type of a "user:role:type[:level]" label.
func selinuxType(label string) (string, bool) {
	parts := strings.SplitN(label, ":", 4)
	if len(parts) < 3 || parts[2] == "" {
		return "", false
	}
	return parts[2], true
}

// selinuxTypeProblem returns why label may not be used (its type outside
// allowed, the profile key naming it), or "". An empty label is the
// runtime's default.
func selinuxTypeProblem(label string, allowed []string, key, profile string) string {
	if label == "" {
		return ""
	}
	typ, ok := selinuxType(label)
	switch {
	case !ok:
		return fmt.Sprintf("%q, which is not a label of the form user:role:type[:level]", label)
	case slices.Contains(unconfinedSELinuxTypes, typ):
		return fmt.Sprintf("%q with type %s, which SELinux does not confine", label, typ)
	case len(allowed) > 0 && !slices.Contains(allowed, typ):
		return fmt.Sprintf("%q with type %s, which profile %s does not allow (%s: %s)", label, typ, profile, key, strings.Join(allowed, ", "))
	}
	return ""
}

// checkSELinux refuses a process or mount label the profile does not
// allow (see above).
func checkSELinux(s *specs.Spec, prof *profiles.Profile) error {
	if s.Process != nil {
		if why := selinuxTypeProblem(s.Process.SelinuxLabel, prof.SELinux.ProcessTypes, "selinux.process_types", prof.Name); why != "" {
			return refuse(RuleSELinux, "process.selinuxLabel", "is %s", why)
		}
	}
	if s.Linux != nil {
		if why := selinuxTypeProblem(s.Linux.MountLabel, prof.SELinux.MountTypes, "selinux.mount_types", prof.Name); why != "" {
			return refuse(RuleSELinux, "linux.mountLabel", "is %s", why)
		}
	}
	return nil
}
