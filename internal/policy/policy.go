// Package policy loads the node policy: one TOML file an operator writes to
// say which profile applies by default, the minimum no workload may go
// below, which runtimes exist and how workloads are routed to them. No file
// at all is a valid, safe policy (Default).
package policy

import (
	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/policy/tomlpos"
	"github.com/hardened-dev/hardened/profiles"
)

// Modes.
const (
	// ModeEnforce rewrites the spec and refuses what cannot be made safe.
	ModeEnforce = "enforce"
	// ModeAudit computes and reports what enforce would do, changes nothing
	// and refuses nothing.
	ModeAudit = "audit"
)

// AppArmor settings: what happens when the host has no AppArmor. The
// setting is the engine's AppArmor mode, passed through as it is.
const (
	AppArmorIfAvailable = hardening.AppArmorIfAvailable // run, and report "not enforced"
	AppArmorRequired    = hardening.AppArmorRequired    // refuse the container
	AppArmorOff         = hardening.AppArmorOff         // never set an AppArmor profile
)

// Runtime names, as profiles name them.
const (
	RuntimeRunc   = profiles.RuntimeRunc
	RuntimeGVisor = profiles.RuntimeGVisor
)

// Policy is the node policy. Field tags are the file's keys; unknown keys
// are errors.
type Policy struct {
	DefaultProfile string `toml:"default_profile"`
	MinimumProfile string `toml:"minimum_profile"`
	Mode           string `toml:"mode"`
	AppArmor       string `toml:"apparmor"`
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
	// Runtimes holds the backends by name: "runc" and "gvisor".
	Runtimes map[string]Runtime `toml:"runtimes"`
	// Routes pick the backend (and optionally the profile) from
	// annotations and labels; the first match wins.
	Routes []Route `toml:"routes"`
	// StrictRuntime is the backend a profile preferring gVisor gets
	// ("gvisor" by default; set "runc" on a node without runsc).
	StrictRuntime string `toml:"strict_runtime"`

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
	// Runtime is the backend for matching workloads ("runc" or "gvisor").
	Runtime string `toml:"runtime"`
	// Profile, if set, is the profile for matching workloads, and a floor:
	// an annotation or image label may only ask for a stricter one.
	Profile string `toml:"profile"`
}

// Match is satisfied when every listed annotation and label has the value.
type Match struct {
	Annotations map[string]string `toml:"annotations"`
	Labels      map[string]string `toml:"labels"`
}

// Default returns the built-in policy used when no policy file is given.
func Default() *Policy {
	return &Policy{
		DefaultProfile: "restricted",
		MinimumProfile: "baseline",
		Mode:           ModeEnforce,
		AppArmor:       AppArmorIfAvailable,
		ProfilesDir:    "/etc/hardened/profiles",
		Runtimes: map[string]Runtime{
			RuntimeRunc:   {Path: "runc"},
			RuntimeGVisor: {Path: "runsc"},
		},
		StrictRuntime: RuntimeGVisor,
	}
}
