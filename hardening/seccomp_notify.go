package hardening

import (
	"fmt"
	"slices"
	"sort"
	"sync"
	"syscall"

	"github.com/opencontainers/runc/libcontainer/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// Seccomp denials, reported. A filter's blocking is silent: the workload
// sees EPERM and nobody learns which syscall it was. To report it, the
// denials of a hardened filter are handed to the shim as seccomp user
// notifications (SCMP_ACT_NOTIFY; runc sends the notify fd to the socket
// listenerPath names) and the shim answers each with the errno the filter
// would have returned, so the workload sees no difference. The syscalls
// the filter allows never reach the shim: they are decided in the kernel
// as before.
//
// runc 1.5.2 refuses SCMP_ACT_NOTIFY as the default action and on write(2)
// (its init writes the notify fd to its parent after loading the filter),
// so the conversion is:
//
//   - an unconditional errno rule becomes a notify rule, but for write,
//     and for rules answering ENOSYS (clone3's: "not implemented" is how
//     the default filter makes glibc fall back to clone, not a denial;
//     reporting it would cost a round trip per thread);
//   - the default action stays, and every syscall libseccomp knows for
//     the filter's architectures that no rule names gets a notify rule:
//     those are the ones the default action denied. A syscall nobody
//     knows still falls to the default action, unreported;
//   - conditional rules (clone without namespace flags, socket for some
//     families, personality) are kept as they are: a name with any rule
//     stays governed by its rules, and the calls those rules leave to the
//     default action are denied unreported;
//   - kill and trap rules are kept: a killed process is its own report.
//
// If the shim dies, the kernel answers the pending and later notifications
// with ENOSYS: the syscalls stay denied and the container keeps running.

// SeccompNotice is a filter converted for the shim's listener: what the
// listener answers and what the filter was before.
type SeccompNotice struct {
	// Enforced is the filter as enforced before the conversion: what the
	// listener's answers reproduce, and what a learned profile builds on.
	Enforced *specs.LinuxSeccomp `json:"-"`
	// Errno is the errno the filter returned for each name now notified.
	Errno map[string]uint `json:"-"`
	// Names are the names notified, sorted.
	Names []string `json:"-"`
}

// Answer is the errno the filter would have returned for name: the rule's,
// or the default action's for a name the default action denied.
func (n *SeccompNotice) Answer(name string) uint {
	if e, ok := n.Errno[name]; ok {
		return e
	}
	return errnoOf(n.Enforced.DefaultErrnoRet)
}

func errnoOf(ret *uint) uint {
	if ret == nil {
		return uint(syscall.EPERM)
	}
	return *ret
}

// notifiable reports whether an errno rule (or the default action) with
// this errnoRet reports a denial.
func notifiable(act specs.LinuxSeccompAction, ret *uint) bool {
	return act == specs.ActErrno && errnoOf(ret) != uint(syscall.ENOSYS)
}

// NotifyDenials converts the hardened filter sc in place for the shim's
// listener at listener (see above) and returns what the listener answers.
// A filter with nothing to report (no errno rule, a default action that is
// not errno) is returned unchanged with a nil notice. The converted filter
// is checked the way runc compiles it.
func NotifyDenials(sc *specs.LinuxSeccomp, listener string) (*SeccompNotice, error) {
	if seccompDisabled(sc) || sc.ListenerPath != "" {
		return nil, nil
	}
	n := &SeccompNotice{Enforced: CloneSeccomp(sc), Errno: map[string]uint{}}
	named := map[string]bool{}
	var kept []specs.LinuxSyscall
	for _, rule := range sc.Syscalls {
		for _, name := range rule.Names {
			named[name] = true
		}
		if len(rule.Args) > 0 || !notifiable(rule.Action, rule.ErrnoRet) {
			kept = append(kept, rule)
			continue
		}
		rest := rule
		rest.Names = nil
		for _, name := range rule.Names {
			if name == "write" {
				rest.Names = append(rest.Names, name)
				continue
			}
			if _, dup := n.Errno[name]; !dup {
				n.Errno[name] = errnoOf(rule.ErrnoRet)
			}
		}
		if len(rest.Names) > 0 {
			kept = append(kept, rest)
		}
	}
	if notifiable(sc.DefaultAction, sc.DefaultErrnoRet) {
		known, err := knownSyscalls(sc.Architectures)
		if err != nil {
			return nil, err
		}
		for _, name := range known {
			if !named[name] && name != "write" {
				n.Errno[name] = errnoOf(sc.DefaultErrnoRet)
			}
		}
	}
	if len(n.Errno) == 0 {
		return nil, nil
	}
	for name := range n.Errno {
		n.Names = append(n.Names, name)
	}
	sort.Strings(n.Names)
	sc.Syscalls = append(kept, specs.LinuxSyscall{Names: slices.Clone(n.Names), Action: specs.ActNotify})
	// The listener path changes nothing in the compiled filter: checking
	// a placeholder keeps compileLikeRunc's cache shared by containers.
	check := *sc
	check.ListenerPath = "/hardened-listener"
	if err := compileLikeRunc(&check); err != nil {
		return nil, fmt.Errorf("the filter with its denials reported: %w", err)
	}
	sc.ListenerPath = listener
	return n, nil
}

// knownSyscalls are the syscall names libseccomp knows on the native
// architecture and on arches (the filter's), sorted.
func knownSyscalls(arches []specs.Arch) ([]string, error) {
	var names []string
	seen := map[string]bool{}
	native, err := libseccomp.GetNativeArch()
	if err != nil {
		return nil, fmt.Errorf("seccomp: native architecture: %w", err)
	}
	scmp := []libseccomp.ScmpArch{native}
	for _, a := range arches {
		s, err := seccomp.ConvertStringToArch(string(a))
		if err != nil {
			return nil, fmt.Errorf("seccomp: %w", err)
		}
		sa, err := libseccomp.GetArchFromString(s)
		if err != nil {
			return nil, fmt.Errorf("seccomp: architecture %s: %w", a, err)
		}
		scmp = append(scmp, sa)
	}
	for _, a := range scmp {
		for _, name := range syscallTable(a) {
			if !seen[name] {
				seen[name] = true
				names = append(names, name)
			}
		}
	}
	sort.Strings(names)
	return names, nil
}

var syscallTables sync.Map // libseccomp.ScmpArch -> []string

// syscallTable lists the names of the syscalls of one architecture, by
// number, the way the listener names a notification's syscall.
func syscallTable(a libseccomp.ScmpArch) []string {
	if v, ok := syscallTables.Load(a); ok {
		return v.([]string)
	}
	var names []string
	for nr := range maxSyscallNumber {
		if name, err := SyscallName(a, int32(nr)); err == nil {
			names = append(names, name)
		}
	}
	syscallTables.Store(a, names)
	return names
}

// maxSyscallNumber bounds the syscall numbers looked up (the highest on
// any architecture libseccomp knows is below 1024, x32's flag bit aside).
const maxSyscallNumber = 1024

// SyscallName names syscall nr of architecture a as libseccomp does.
func SyscallName(a libseccomp.ScmpArch, nr int32) (string, error) {
	return libseccomp.ScmpSyscall(nr).GetNameByArch(a)
}
