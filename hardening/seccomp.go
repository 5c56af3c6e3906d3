package hardening

import (
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	cseccomp "github.com/containerd/containerd/v2/contrib/seccomp"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// The seccomp filter is the last rewrite because it depends on the final
// capabilities: containerd's default profile (like Docker's) opens
// syscalls per capability of the bounding set (CAP_SYS_ADMIN alone opens
// mount, umount2, unshare, setns, bpf, perf_event_open ...; CAP_SYS_PTRACE
// opens ptrace and process_vm_*; CAP_SYS_MODULE init_module). Generated
// from the spec's capabilities before the drop, the filter would keep all
// of those open for a process that has lost the capabilities, and one
// kernel bug in them is an escape.
//
// A spec without a filter, or with one whose default action lets unlisted
// syscalls run (SCMP_ACT_ALLOW, SCMP_ACT_LOG; SCMP_ACT_TRACE and
// SCMP_ACT_NOTIFY hand the decision to another process; anything runc does
// not know), gets containerd's default filter for the capabilities left.
// A filter of the spec's own whose default action denies (errno, kill,
// trap) is kept: a workload-specific filter is usually tighter than the
// default one. Either way the profile's Deny list is then applied (the
// names leave every rule that lets a syscall run) and, with
// NativeArchOnly, the filter lists the native architecture only.
//
// Base "" keeps the spec's filter whatever it is, and still applies Deny.
//
// The rewrite is idempotent: its output is a filter it keeps as is.

// denyingActions are the actions under which a syscall does not run.
var denyingActions = []specs.LinuxSeccompAction{
	specs.ActErrno, specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap,
}

// denies reports whether a is an action under which the syscall does not
// run. Everything else (allow, log, trace, notify, and any action runc
// does not know) is treated as letting it run.
func denies(a specs.LinuxSeccompAction) bool { return slices.Contains(denyingActions, a) }

// seccompDisabled reports whether runc runs the container without a filter
// (specconv.SetupSeccomp: no default action and no syscalls).
func seccompDisabled(sc *specs.LinuxSeccomp) bool {
	return sc == nil || sc.DefaultAction == "" && len(sc.Syscalls) == 0
}

// weakFilter reports whether sc lets unlisted syscalls run, or is none.
func weakFilter(sc *specs.LinuxSeccomp) bool {
	return seccompDisabled(sc) || !denies(sc.DefaultAction)
}

func applySeccomp(s *specs.Spec, cfg *Config, r *Report) error {
	prof := cfg.Profile
	l := s.Linux
	if cfg.Backend == BackendGVisor && !cfg.RunscOCISeccomp {
		r.gap(RuleSeccomp, "not enforced: runsc runs without --oci-seccomp and ignores linux.seccomp (gVisor's own filters confine the Sentry)")
	}
	if prof.Seccomp.Base == profiles.SeccompBaseDefault && weakFilter(l.Seccomp) {
		g, err := generatedFilter(s.Process.Capabilities.Bounding, &prof.Seccomp)
		if err != nil {
			return err
		}
		before := describeFilter(l.Seccomp)
		l.Seccomp = cloneSeccomp(g.filter)
		r.change(RuleSeccomp, "linux.seccomp", before, g.describe)
		return nil
	}
	if seccompDisabled(l.Seccomp) {
		if len(prof.Seccomp.Deny) == 0 {
			return nil
		}
		// Base "" and no filter: deny the profile's syscalls, allow the rest.
		r.change(RuleSeccomp, "linux.seccomp", describeFilter(l.Seccomp), "default "+string(specs.ActAllow))
		l.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}
	}
	removed, added := applyDeny(l.Seccomp, prof.Seccomp.Deny)
	if len(removed) > 0 {
		r.change(RuleSeccomp, "linux.seccomp.syscalls", "allowed "+strings.Join(removed, ","), "removed from allow rules")
	}
	if len(added) > 0 {
		r.change(RuleSeccomp, "linux.seccomp.syscalls", "", "SCMP_ACT_ERRNO(EPERM) "+strings.Join(added, ","))
	}
	if prof.Seccomp.NativeArchOnly {
		arch, err := nativeArch()
		if err != nil {
			return err
		}
		if !nativeOnly(l.Seccomp.Architectures, arch) {
			r.change(RuleSeccomp, "linux.seccomp.architectures", archList(l.Seccomp.Architectures), string(arch))
			l.Seccomp.Architectures = []specs.Arch{arch}
		}
	}
	return nil
}

// applyDeny removes the names of deny from every rule that lets a syscall
// run, dropping rules left empty, and returns the names removed. Under a
// default action that denies, unlisted means denied, and nothing is added:
// an explicit rule would only duplicate the default (and runc skips rules
// whose action is the default one). Under one that lets syscalls run, every
// name of deny gets an unconditional SCMP_ACT_ERRNO(EPERM) rule unless
// one that denies it unconditionally exists; a name listed only in
// conditional denying rules leaves them for the unconditional one (the
// conditions would leave other argument values running, and rules with
// different actions for one syscall are a conflict that libseccomp
// versions resolve differently). Those names are returned as added.
func applyDeny(sc *specs.LinuxSeccomp, deny []string) (removed, added []string) {
	if len(deny) == 0 {
		return nil, nil
	}
	denied := make(map[string]bool, len(deny))
	for _, d := range deny {
		denied[d] = true
	}
	removeNames := func(pred func(*specs.LinuxSyscall) bool, names map[string]bool, out *[]string) {
		j := 0
		for i := range sc.Syscalls {
			rule := sc.Syscalls[i]
			if pred(&rule) && slices.ContainsFunc(rule.Names, func(n string) bool { return names[n] }) {
				var keep []string
				for _, n := range rule.Names {
					if names[n] {
						if out != nil && !slices.Contains(*out, n) {
							*out = append(*out, n)
						}
						continue
					}
					keep = append(keep, n)
				}
				if len(keep) == 0 {
					continue
				}
				rule.Names = keep
			}
			sc.Syscalls[j] = rule
			j++
		}
		clear(sc.Syscalls[j:])
		sc.Syscalls = sc.Syscalls[:j]
	}
	removeNames(func(r *specs.LinuxSyscall) bool { return !denies(r.Action) }, denied, &removed)
	if denies(sc.DefaultAction) {
		return removed, nil
	}
	covered := make(map[string]bool)
	for _, rule := range sc.Syscalls {
		if denies(rule.Action) && len(rule.Args) == 0 {
			for _, n := range rule.Names {
				covered[n] = true
			}
		}
	}
	missing := make(map[string]bool)
	for _, d := range deny {
		if !covered[d] && !missing[d] {
			missing[d] = true
			added = append(added, d)
		}
	}
	if len(added) == 0 {
		return removed, nil
	}
	removeNames(func(r *specs.LinuxSyscall) bool { return len(r.Args) > 0 }, missing, nil)
	eperm := uint(syscall.EPERM)
	sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{
		Names:    slices.Clone(added),
		Action:   specs.ActErrno,
		ErrnoRet: &eperm,
	})
	return removed, added
}

// nativeArch is the seccomp architecture of the machine the shim runs on.
func nativeArch() (specs.Arch, error) {
	switch runtime.GOARCH {
	case "amd64":
		return specs.ArchX86_64, nil
	case "arm64":
		return specs.ArchAARCH64, nil
	case "386":
		return specs.ArchX86, nil
	case "arm":
		return specs.ArchARM, nil
	case "s390x":
		return specs.ArchS390X, nil
	case "ppc64le":
		return specs.ArchPPC64LE, nil
	case "riscv64":
		return specs.ArchRISCV64, nil
	case "loong64":
		return specs.ArchLOONGARCH64, nil
	}
	return "", refuse(RuleSeccomp, "linux.seccomp.architectures", "native_arch_only: no seccomp architecture known for %s", runtime.GOARCH)
}

func nativeOnly(arches []specs.Arch, native specs.Arch) bool {
	return len(arches) == 1 && arches[0] == native
}

func archList(arches []specs.Arch) string {
	if len(arches) == 0 {
		return "(native)"
	}
	s := make([]string, len(arches))
	for i, a := range arches {
		s[i] = string(a)
	}
	return strings.Join(s, ",")
}

func describeFilter(sc *specs.LinuxSeccomp) string {
	if sc == nil {
		return "none"
	}
	if seccompDisabled(sc) {
		return "disabled"
	}
	return fmt.Sprintf("default %s, %d rules", sc.DefaultAction, len(sc.Syscalls))
}

// generated is containerd's default filter for one capability set with a
// profile's Deny and NativeArchOnly applied. Cached entries are shared:
// never mutated, cloned into every spec.
type generated struct {
	filter   *specs.LinuxSeccomp
	describe string
}

// The filter generated for a capability set and a profile is always the
// same, and generating it (and cloning containerd's rule list) is most of
// the cost of a rewrite: cache it. The key space is bounded by the
// profiles in use and the subsets of their capabilities that specs ask
// for; to bound memory whatever specs come in, the cache stops growing at
// maxGenerated entries (later combinations are generated every time).
const maxGenerated = 64

var (
	generatedMu    sync.RWMutex
	generatedCache = map[string]*generated{}
)

func generatedFilter(bounding []string, sp *profiles.Seccomp) (*generated, error) {
	caps := slices.Clone(bounding)
	slices.Sort(caps)
	caps = slices.Compact(caps)
	var key strings.Builder
	for _, c := range caps {
		key.WriteString(strconv.Itoa(len(c)))
		key.WriteByte(':')
		key.WriteString(c)
	}
	key.WriteByte('|')
	for _, d := range sp.Deny {
		key.WriteString(strconv.Itoa(len(d)))
		key.WriteByte(':')
		key.WriteString(d)
	}
	key.WriteByte('|')
	key.WriteString(strconv.FormatBool(sp.NativeArchOnly))
	k := key.String()

	generatedMu.RLock()
	g, ok := generatedCache[k]
	generatedMu.RUnlock()
	if ok {
		return g, nil
	}

	// DefaultProfile reads the bounding set only; a sorted one makes the
	// rule order independent of the spec's capability order.
	f := cseccomp.DefaultProfile(&specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}})
	removed, _ := applyDeny(f, sp.Deny)
	desc := fmt.Sprintf("containerd default filter for [%s]", strings.Join(caps, ","))
	if len(removed) > 0 {
		desc += " without " + strings.Join(removed, ",")
	}
	if sp.NativeArchOnly {
		arch, err := nativeArch()
		if err != nil {
			return nil, err
		}
		f.Architectures = []specs.Arch{arch}
		desc += ", " + string(arch) + " only"
	}
	g = &generated{filter: f, describe: desc}

	generatedMu.Lock()
	if len(generatedCache) < maxGenerated {
		generatedCache[k] = g
	}
	generatedMu.Unlock()
	return g, nil
}

// cloneSeccomp deep-copies a filter.
func cloneSeccomp(in *specs.LinuxSeccomp) *specs.LinuxSeccomp {
	out := *in
	out.DefaultErrnoRet = clonePtr(in.DefaultErrnoRet)
	out.Architectures = slices.Clone(in.Architectures)
	out.Flags = slices.Clone(in.Flags)
	if in.Syscalls != nil {
		out.Syscalls = make([]specs.LinuxSyscall, len(in.Syscalls))
		for i, r := range in.Syscalls {
			r.Names = slices.Clone(r.Names)
			r.Args = slices.Clone(r.Args)
			r.ErrnoRet = clonePtr(r.ErrnoRet)
			out.Syscalls[i] = r
		}
	}
	return &out
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

// checkSeccomp checks the filter of a hardened spec against the profile,
// then the way runc will compile it.
func checkSeccomp(s *specs.Spec, cfg *Config) error {
	prof := cfg.Profile
	var sc *specs.LinuxSeccomp
	if s.Linux != nil {
		sc = s.Linux.Seccomp
	}
	if prof.Seccomp.Base == profiles.SeccompBaseDefault && weakFilter(sc) {
		return refuse(RuleSeccomp, "linux.seccomp", "is %s: profile %s requires a filter whose default action denies", describeFilter(sc), prof.Name)
	}
	if len(prof.Seccomp.Deny) > 0 {
		if seccompDisabled(sc) {
			return refuse(RuleSeccomp, "linux.seccomp", "is %s: profile %s denies %s", describeFilter(sc), prof.Name, prof.Seccomp.Deny[0])
		}
		denied := make(map[string]bool, len(prof.Seccomp.Deny))
		for _, d := range prof.Seccomp.Deny {
			denied[d] = true
		}
		covered := make(map[string]bool)
		for i, rule := range sc.Syscalls {
			for _, n := range rule.Names {
				if !denied[n] {
					continue
				}
				if !denies(rule.Action) {
					return refuse(RuleSeccomp, fmt.Sprintf("linux.seccomp.syscalls[%d]", i), "%s lets %s run: profile %s denies it", rule.Action, n, prof.Name)
				}
				if len(rule.Args) == 0 {
					covered[n] = true
				}
			}
		}
		if !denies(sc.DefaultAction) {
			for _, d := range prof.Seccomp.Deny {
				if !covered[d] {
					return refuse(RuleSeccomp, "linux.seccomp.syscalls", "%s is not denied unconditionally under default action %s", d, sc.DefaultAction)
				}
				// runc skips a rule for a name libseccomp cannot resolve
				// (it assumes an old kernel): under a default action that
				// lets syscalls run, that would leave the syscall running.
				if _, ok := resolveSyscall(d); !ok {
					return refuse(RuleSeccomp, "linux.seccomp.syscalls", "denied syscall %s is unknown to libseccomp: runc would skip its rule under default action %s", d, sc.DefaultAction)
				}
			}
		}
	}
	if prof.Seccomp.NativeArchOnly && !seccompDisabled(sc) {
		arch, err := nativeArch()
		if err != nil {
			return err
		}
		if !nativeOnly(sc.Architectures, arch) {
			return refuse(RuleSeccomp, "linux.seccomp.architectures", "is %s: profile %s allows %s only", archList(sc.Architectures), prof.Name, arch)
		}
	}
	if sc == nil {
		return nil
	}
	return compileLikeRunc(sc)
}
