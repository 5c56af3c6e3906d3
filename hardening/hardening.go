// Package hardening is the engine: pure functions that rewrite an OCI
// runtime spec into a hardened one under a profile. No I/O, no logging:
// every function returns the changes it made, or an error saying what it
// refused and why. It knows nothing of containerd.
package hardening

import (
	"errors"
	"fmt"

	"github.com/hardened-dev/hardened/profiles"
)

// ErrRefused is wrapped by every refusal: a spec the engine will not make
// safe. Test with errors.Is; errors.As a *RefusalError for the rule.
var ErrRefused = errors.New("refused by hardening policy")

// RefusalError names the rule that refused a spec, and why.
type RefusalError struct {
	Rule string // e.g. "fdhygiene", "namespaces", "profile"
	// Field is the input that caused it: a spec field ("process.cwd"), an
	// annotation or label ("annotation hardened.dev/profile=\"x\""), a
	// policy key.
	Field  string
	Reason string
	// Err is a further cause (profiles.ErrUnknownProfile), or nil.
	Err error
}

func (e *RefusalError) Error() string {
	if e.Field == "" {
		return fmt.Sprintf("%s: %s: %s", ErrRefused, e.Rule, e.Reason)
	}
	return fmt.Sprintf("%s: %s: %s: %s", ErrRefused, e.Rule, e.Field, e.Reason)
}

// Unwrap gives ErrRefused and the cause.
func (e *RefusalError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrRefused, e.Err}
	}
	return []error{ErrRefused}
}

// ErrInvalidConfig is wrapped when the engine's Config itself is unusable
// (no profile, an unknown AppArmor mode or runtime): the caller's mistake,
// not the spec's. The engine fails closed on it like on a refusal.
var ErrInvalidConfig = errors.New("invalid hardening config")

// refuse builds a *RefusalError.
func refuse(rule, field, format string, args ...any) *RefusalError {
	return &RefusalError{Rule: rule, Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Rule names, as RefusalError.Rule, Change.Rule and Gap.Rule carry them.
const (
	RuleProfile      = "profile" // which profile a workload gets (internal/resolve)
	RuleRuntime      = "runtime" // which runtime it runs on, and that runtime's state
	RulePod          = "pod"     // which pod it belongs to
	RuleSpec         = "spec"    // malformed specs
	RuleFDHygiene    = "fdhygiene"
	RuleHooks        = "hooks"
	RuleNamespaces   = "namespaces"
	RuleProcess      = "process"
	RuleExec         = "exec"
	RuleCapabilities = "capabilities"
	RuleNoNewPrivs   = "nonewprivs"
	RuleRootfs       = "rootfs"
	RulePids         = "pids"
	RulePaths        = "paths"
	RuleAnnotations  = "annotations"
	RuleAppArmor     = "apparmor"
	RuleRlimits      = "rlimits"
	RuleSeccomp      = "seccomp"
	RuleMounts       = "mounts"
	RuleDevices      = "devices"
	RuleScheduler    = "scheduler"
	RuleSysctls      = "sysctls"
	RuleSELinux      = "selinux"
	RuleCgroups      = "cgroups"
)

// Host is what the engine needs to know about the node; the caller probes
// it (internal/hostprobe) so that the engine stays pure.
type Host struct {
	// AppArmor is true when the kernel enforces AppArmor.
	AppArmor bool
}

// Config is everything a rewrite depends on besides the spec.
type Config struct {
	Profile *profiles.Profile
	Host    Host
	// AppArmorMode is the policy's apparmor setting.
	AppArmorMode profiles.AppArmorMode
	// AllowedHooks lists the OCI hook paths the node policy permits.
	AllowedHooks []string
	// Runtime is the runtime the container runs on: the report says what
	// each enforces. "" means runc.
	Runtime profiles.Runtime
	// HostPaths are the host paths the node policy lets a container mount
	// beyond the pod's own files (allow_host_path_prefixes).
	HostPaths []profiles.HostPathPrefix
	// ContainerID is the container's ID: the {container-id} placeholder
	// of host path prefixes, and the last element its cgroupsPath must
	// have. "" (unknown) leaves both out.
	ContainerID string
	// SandboxCgroupsPath is the cgroupsPath of the pod sandbox an app
	// container joins: the container's cgroup must sit next to it. ""
	// (a sandbox itself, or no pod) leaves the rule out.
	SandboxCgroupsPath string
	// RunscOCISeccomp is true when runsc is started with --oci-seccomp, so
	// that gVisor applies the spec's seccomp filter to the sandboxed
	// application too. Without it runsc ignores linux.seccomp and the report
	// says so (gVisor's own host-side filters still apply to the Sentry).
	RunscOCISeccomp bool
}

// Change is one field the engine changed.
type Change struct {
	Rule   string `json:"rule"`
	Field  string `json:"field"`
	Before string `json:"before,omitempty"`
	After  string `json:"after,omitempty"`
}

// Gap is a protection the profile asks for that is not enforced, and why.
type Gap struct {
	Rule   string `json:"rule"`
	Reason string `json:"reason"`
}

// Report is what a rewrite did.
type Report struct {
	Profile     string           `json:"profile"`
	Runtime     profiles.Runtime `json:"runtime"`
	Changes     []Change         `json:"changes"`
	NotEnforced []Gap            `json:"notEnforced,omitempty"`
}

// change records one changed field.
func (r *Report) change(rule, field, before, after string) {
	r.Changes = append(r.Changes, Change{Rule: rule, Field: field, Before: before, After: after})
}

// gap records a protection that is not enforced.
func (r *Report) gap(rule, reason string) {
	r.NotEnforced = append(r.NotEnforced, Gap{Rule: rule, Reason: reason})
}
