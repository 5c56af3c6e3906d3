package decide

import (
	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
)

// Report is hardening-report.json: what was decided for one container and
// what it changed. It is also the pod's record of its runtime: a CRI
// sandbox's report is read by the pod's later containers.
type Report struct {
	ContainerID string `json:"containerID"`
	// Profile and ProfileSource: the profile applied and why it was chosen.
	Profile       string `json:"profile"`
	ProfileSource string `json:"profileSource,omitempty"`
	// Runtime is the runtime the container runs on ("runc" or "gvisor");
	// RuntimeSource says why.
	Runtime       profiles.Runtime `json:"runtime"`
	RuntimeSource string           `json:"runtimeSource,omitempty"`
	// Mode is the policy mode: "enforce" or "audit".
	Mode policy.Mode `json:"mode"`
	// Policy names the node policy used (its file, or "built-in default").
	Policy string `json:"policy"`
	// Binary is the OCI binary the runc shim code runs (runc, or the runsc
	// wrapper).
	Binary string `json:"binary"`
	// Notes are remarks from the resolver and the decision (label sources,
	// ignored options, audit-mode deviations).
	Notes       []string           `json:"notes,omitempty"`
	Changes     []hardening.Change `json:"changes"`
	NotEnforced []hardening.Gap    `json:"notEnforced,omitempty"`
	// Pinned are the host paths the container mounts, each opened without
	// following symlinks and judged by the path of the inode opened.
	Pinned []PinnedSource `json:"pinned,omitempty"`
	// Refused is, in audit mode, the reason enforce mode would have refused
	// the container.
	Refused string `json:"refused,omitempty"`
	// Audit is what a stricter profile audited alongside the enforced one
	// (audit_profile) would have done; nothing of it is applied.
	Audit *AuditReport `json:"audit,omitempty"`
	// Seccomp is the account of the container's seccomp denials, when the
	// policy has them reported or learned.
	Seccomp *SeccompReport `json:"seccomp,omitempty"`
	// Written is where the container wrote on its writable rootfs that the
	// profile audited (or, in audit mode, enforced) would have made
	// read-only: read from the snapshot when the container is deleted.
	Written *WrittenReport `json:"written,omitempty"`
}

// WrittenReport lists the directories a container changed on its rootfs
// outside what Profile would leave writable (its scratch directories, the
// spec's mounts), each named at most three elements deep.
type WrittenReport struct {
	Profile   string   `json:"profile"`
	Paths     []string `json:"paths"`
	Truncated bool     `json:"truncated,omitempty"`
	// Unavailable says why nothing could be read.
	Unavailable string `json:"unavailable,omitempty"`
}

// AuditReport is what the audited profile would have changed in the spec
// as containerd wrote it, or why it would have refused it.
type AuditReport struct {
	Profile       string             `json:"profile"`
	ProfileSource string             `json:"profileSource"`
	Changes       []hardening.Change `json:"changes"`
	Refused       string             `json:"refused,omitempty"`
}

// PinnedSource is one host path of a container's spec, pinned.
type PinnedSource struct {
	// Field is the spec field: "mounts[i].source" or "root.path".
	Field string `json:"field"`
	// Source is the path as the spec writes it.
	Source string `json:"source"`
	// Staged is where the pinned inode was bind-mounted for the runtime,
	// the source config.json names; empty in audit mode (not staged).
	Staged string `json:"staged,omitempty"`
}

// State is hardening-state.json: enough to harden an exec the same way
// after the shim lost its in-memory record of the container.
type State struct {
	Mode         policy.Mode           `json:"mode"`
	Profile      *profiles.Profile     `json:"profile"`
	AppArmorMode profiles.AppArmorMode `json:"appArmorMode"`
	AllowedHooks []string              `json:"allowedHooks,omitempty"`
	// Runtime keeps the key "backend" that shims before the word was
	// settled wrote.
	Runtime      profiles.Runtime `json:"backend"`
	HostAppArmor bool             `json:"hostAppArmor"`
}

// Config is the engine configuration the state stands for.
func (st *State) Config() hardening.Config {
	return hardening.Config{
		Profile:      st.Profile,
		Host:         hardening.Host{AppArmor: st.HostAppArmor},
		AppArmorMode: st.AppArmorMode,
		AllowedHooks: st.AllowedHooks,
		Runtime:      st.Runtime,
		// The runsc wrapper always passes --oci-seccomp.
		RunscOCISeccomp: true,
	}
}

// StateOf is the state of a container decided with cfg in mode.
func StateOf(mode policy.Mode, cfg hardening.Config) *State {
	return &State{
		Mode:         mode,
		Profile:      cfg.Profile,
		AppArmorMode: cfg.AppArmorMode,
		AllowedHooks: cfg.AllowedHooks,
		Runtime:      cfg.Runtime,
		HostAppArmor: cfg.Host.AppArmor,
	}
}
