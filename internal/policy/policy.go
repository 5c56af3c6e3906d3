// Package policy loads the node policy: one TOML file an operator writes to
// say which profile applies by default, the minimum no workload may go
// below, which runtimes exist and how workloads are routed to them. No file
// at all is a valid, safe policy (Default).
package policy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/hardened-dev/hardened/internal/tomlpos"
	"github.com/hardened-dev/hardened/profiles"
)

// Mode says whether the policy is enforced or only audited.
type Mode string

// Modes.
const (
	// ModeEnforce rewrites the spec and refuses what cannot be made safe.
	ModeEnforce Mode = "enforce"
	// ModeAudit computes and reports what enforce would do, changes nothing
	// and refuses nothing.
	ModeAudit Mode = "audit"
)

// Valid reports whether m is a known mode.
func (m Mode) Valid() bool { return m == ModeEnforce || m == ModeAudit }

// UnmarshalText accepts the known modes (a JSON record with another one
// does not load; the policy file's mode is checked with its line).
func (m *Mode) UnmarshalText(b []byte) error {
	if v := Mode(b); v.Valid() {
		*m = v
		return nil
	}
	return fmt.Errorf("mode %q is not one of %q, %q", b, ModeEnforce, ModeAudit)
}

// SeccompNotify says what the shim does with the syscalls a container's
// seccomp filter denies (on runc; runsc has no listener).
type SeccompNotify string

// Seccomp notify modes.
const (
	// SeccompNotifyOff leaves denials to the filter: nothing is reported.
	SeccompNotifyOff SeccompNotify = "off"
	// SeccompNotifyReport has the shim answer each denial with the errno
	// the filter would have returned, and record it.
	SeccompNotifyReport SeccompNotify = "report"
	// SeccompNotifyLearn lets each denied syscall run and records it, for a
	// profile of what the workload needs (staging only: the filter's
	// denials are lifted).
	SeccompNotifyLearn SeccompNotify = "learn"
)

// Valid reports whether n is a known mode ("" is not).
func (n SeccompNotify) Valid() bool {
	return n == SeccompNotifyOff || n == SeccompNotifyReport || n == SeccompNotifyLearn
}

// Policy is the node policy. Field tags are the file's keys; unknown keys
// are errors.
type Policy struct {
	DefaultProfile string `toml:"default_profile"`
	// AuditProfile, if set, is a stricter profile audited alongside the
	// one enforced: what it would change or refuse is reported, nothing of
	// it applied (Pod Security's enforce and audit levels).
	AuditProfile   string                `toml:"audit_profile"`
	MinimumProfile string                `toml:"minimum_profile"`
	Mode           Mode                  `toml:"mode"`
	AppArmor       profiles.AppArmorMode `toml:"apparmor"`
	// SeccompNotify is what the shim does with seccomp denials on runc:
	// "off", "report" or "learn" (SeccompNotify).
	SeccompNotify SeccompNotify `toml:"seccomp_notify"`
	// Scratch declares writable directories (tmpfs holding a copy of the
	// image's content) for every container whose profile makes the rootfs
	// read-only (profiles.Scratch; noexec where the profile's own scratch
	// is).
	Scratch []profiles.Scratch `toml:"scratch"`
	// ProfilesDir holds operator profiles (*.toml); a missing directory is
	// not an error, an unreadable or invalid profile is.
	ProfilesDir string `toml:"profiles_dir"`
	// AllowedHooks lists the OCI hook paths a spec may carry; any other
	// hook is refused.
	AllowedHooks []string `toml:"allowed_hooks"`
	// AllowHostPathPrefixes lists the host paths, beyond the pod's own
	// files, that a container may mount (hostPath volumes, ctr --mount):
	// the operator's consent, each entry read-write or read-only. A host
	// path on the profile's mounts.deny_host_paths stays refused.
	AllowHostPathPrefixes []profiles.HostPathPrefix `toml:"allow_host_path_prefixes"`
	// Runtimes holds the runtimes by name: "runc" and "gvisor".
	Runtimes map[profiles.Runtime]Runtime `toml:"runtimes"`
	// Routes pick the runtime (and optionally the profile) from
	// annotations and labels; the first match wins.
	Routes []Route `toml:"routes"`
	// StrictRuntime is the runtime a profile preferring gVisor gets
	// ("gvisor" by default; set "runc" on a node without runsc).
	StrictRuntime profiles.Runtime `toml:"strict_runtime"`

	// source and idx say where the policy came from, so that Check can
	// name the line of a bad profile name.
	source string
	idx    *tomlpos.Index
}

// Runtime is one OCI runtime binary.
type Runtime struct {
	// Path is the binary: absolute, or a name looked up in PATH.
	Path string `toml:"path"`
	// Args are extra global flags (runsc: --platform, --network ...).
	Args []string `toml:"args"`
	// Root is the runtime's state directory ("" for its default).
	Root string `toml:"root"`
}

// Route sends matching workloads to a runtime.
type Route struct {
	Match Match `toml:"match"`
	// Runtime is the runtime for matching workloads ("runc" or "gvisor").
	Runtime profiles.Runtime `toml:"runtime"`
	// Profile, if set, is the profile for matching workloads, and a floor:
	// an annotation or image label may only ask for a stricter one.
	Profile string `toml:"profile"`
	// AuditProfile, if set, replaces the policy's audit_profile for
	// matching workloads.
	AuditProfile string `toml:"audit_profile"`
	// SeccompNotify, if set, replaces the policy's seccomp_notify for
	// matching workloads.
	SeccompNotify SeccompNotify `toml:"seccomp_notify"`
	// Scratch declares scratch directories for matching workloads, on
	// top of the policy's.
	Scratch []profiles.Scratch `toml:"scratch"`
}

// Match is satisfied when every listed annotation and label has the value.
type Match struct {
	Annotations map[string]string `toml:"annotations"`
	Labels      map[string]string `toml:"labels"`
}

// NodePath is the node policy's file, read when containerd's request names
// none; $HARDENED_POLICY (NodePathEnv) overrides it.
const (
	NodePath    = "/etc/hardened/policy.toml"
	NodePathEnv = "HARDENED_POLICY"
)

// NodeFile is the node's policy file, as the shim reads it: $HARDENED_POLICY
// or NodePath, or "" when that does not exist (the built-in policy
// applies).
func NodeFile() string {
	path := os.Getenv(NodePathEnv)
	if path == "" {
		path = NodePath
	}
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		return ""
	}
	return path
}

// Default returns the built-in policy used when no policy file is given.
func Default() *Policy {
	return &Policy{
		DefaultProfile: "hardened",
		MinimumProfile: "baseline",
		Mode:           ModeEnforce,
		AppArmor:       profiles.AppArmorIfAvailable,
		SeccompNotify:  SeccompNotifyOff,
		ProfilesDir:    "/etc/hardened/profiles",
		Runtimes: map[profiles.Runtime]Runtime{
			profiles.RuntimeRunc:   {Path: "runc"},
			profiles.RuntimeGVisor: {Path: "runsc"},
		},
		StrictRuntime: profiles.RuntimeGVisor,
	}
}
