package decide

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
)

// SeccompSubdir holds the shim's seccomp listener sockets under its RunDir.
const SeccompSubdir = "seccomp"

// maxSocketPath is the longest path a unix socket address holds
// (sockaddr_un.sun_path, 108 bytes with the terminating NUL).
const maxSocketPath = 107

// SeccompSocket is the socket the shim listens on for container id's
// seccomp notifications: RunDir/seccomp/<hash of namespace and id>.sock
// (a hash: bundle-like paths exceed a socket address's 108 bytes).
func SeccompSocket(runDir, ns, id string) (string, error) {
	sum := sha256.Sum256([]byte(ns + "/" + id))
	p := filepath.Join(runDir, SeccompSubdir, hex.EncodeToString(sum[:12])+".sock")
	if len(p) > maxSocketPath {
		return "", fmt.Errorf("seccomp listener socket %s is longer than a unix socket address allows (%d bytes): choose a shorter run directory", p, maxSocketPath)
	}
	return p, nil
}

// SeccompPlan is how the shim listens to a container's seccomp denials.
type SeccompPlan struct {
	Mode policy.SeccompNotify
	// Socket is the listener's path (the filter's listenerPath).
	Socket string
	Notice *hardening.SeccompNotice
}

// SeccompReport is the report's account of seccomp denials.
type SeccompReport struct {
	// Mode is the seccomp_notify mode: "report" (denials answered as the
	// filter would, recorded) or "learn" (denials let through, recorded).
	Mode policy.SeccompNotify `json:"mode"`
	// Notified is how many syscall names the filter hands to the shim.
	Notified int `json:"notified,omitempty"`
	// Unavailable says why denials are not reported for this container.
	Unavailable string `json:"unavailable,omitempty"`
	// Denials are the syscalls denied so far, most frequent first.
	Denials []Denial `json:"denials,omitempty"`
	// Dropped counts denials of syscalls beyond the record's bound.
	Dropped uint64 `json:"dropped,omitempty"`
	// Learned is the path of the seccomp profile learn mode wrote.
	Learned string `json:"learned,omitempty"`
}

// Denial is one syscall the filter denied (or, in learn mode, would have
// denied), aggregated.
type Denial struct {
	Syscall string `json:"syscall"`
	Number  int32  `json:"number"`
	Arch    string `json:"arch"`
	Count   uint64 `json:"count"`
	// Answer is what the caller got: an errno name ("EPERM"), or "allowed"
	// in learn mode.
	Answer string    `json:"answer"`
	First  time.Time `json:"first"`
	Last   time.Time `json:"last"`
	// Executable is the first caller's executable, as the host sees it.
	Executable string `json:"executable,omitempty"`
}

// seccompNotify converts the hardened filter for the shim's listener when
// the policy asks for denials to be reported or learned: on runc only
// (runsc applies the filter in its Sentry and has no listener).
func (d *decision) seccompNotify(p *Plan, out *specs.Spec, mode policy.SeccompNotify, use profiles.Runtime) error {
	if mode == "" || mode == policy.SeccompNotifyOff || d.audit {
		return nil
	}
	rep := &SeccompReport{Mode: mode}
	d.rep.Seccomp = rep
	if use != profiles.RuntimeRunc {
		rep.Unavailable = "runsc enforces the filter inside its Sentry and has no seccomp notify listener; denied syscalls are not reported"
		return nil
	}
	if out.Linux == nil || out.Linux.Seccomp == nil {
		rep.Unavailable = "the container has no seccomp filter"
		return nil
	}
	sock, err := SeccompSocket(d.facts.Host.RunDir, d.facts.Namespace, d.facts.ID)
	if err != nil {
		return d.refuse("container %s: seccomp_notify %s: %v", d.facts.ID, mode, err)
	}
	n, err := hardening.NotifyDenials(out.Linux.Seccomp, sock)
	if err != nil {
		return d.refuse("container %s: seccomp_notify %s: %v", d.facts.ID, mode, err)
	}
	if n == nil {
		rep.Unavailable = "the filter denies nothing by errno"
		return nil
	}
	rep.Notified = len(n.Names)
	d.rep.Changes = append(d.rep.Changes, hardening.Change{
		Rule: hardening.RuleSeccomp, Field: "linux.seccomp.listenerPath", After: sock,
	}, hardening.Change{
		Rule: hardening.RuleSeccomp, Field: "linux.seccomp.syscalls",
		After: fmt.Sprintf("SCMP_ACT_NOTIFY for the %d syscalls the filter denied by errno (answered by the shim: %s)", len(n.Names), mode),
	})
	p.Seccomp = &SeccompPlan{Mode: mode, Socket: sock, Notice: n}
	return nil
}
