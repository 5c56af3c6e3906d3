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
// The rule is that of every rewrite: never loosen. The output filter denies
// everything the spec's filter denied AND everything the profile's base
// filter denies (the base: containerd's default filter for the
// capabilities left, with the profile's Deny list applied). So:
//
//   - A spec without a filter (or a disabled one) gets the base.
//
//   - A spec whose filter lets unlisted syscalls run (default action
//     SCMP_ACT_ALLOW or SCMP_ACT_LOG; SCMP_ACT_TRACE and SCMP_ACT_NOTIFY,
//     which hand the decision to another process; anything runc does not
//     know) is not "unconfined": its explicit rules may still block
//     syscalls, as a Kubernetes Localhost profile "allow all but chmod"
//     does. Replacing it by the base alone would let the container run
//     what its own profile denied. It gets the base merged with the rules
//     of the spec's filter that block (errno, kill, kill_process,
//     kill_thread, trap) or defer (trace, notify) a syscall: their names
//     leave every allowing rule of the base, so that the base's blocking
//     default applies to them for all arguments (stricter than a
//     conditional rule of the spec, never looser), and the rules
//     themselves are carried over with their action, errno and arguments
//     (a kill stays a kill) unless the default action already does the
//     same. The carried names also leave the base's own blocking rules
//     (clone3's ENOSYS): two rules with different actions for one syscall
//     are a conflict libseccomp resolves silently by rule order, or
//     refuses when the conditions are identical, so every name is governed
//     either by the spec's rules or by the base's, never by both. The
//     spec's allowing rules are dropped: the base decides what runs.
//
//     A deferring rule lets the syscall run when the tracer or the
//     listener says so (a tracer can be a process of the container
//     itself). It is carried over only for names the base allows
//     unconditionally, where deferring can only take away; a name the
//     base denies, even for some arguments, falls to the default action
//     instead of being deferred. SCMP_ACT_NOTIFY never gets here: a spec
//     asking for it is refused (checkSeccompNotify).
//
//   - A filter whose default action denies (errno, kill, trap) is kept: a
//     workload-specific filter is usually tighter than the base. It is
//     intersected with the base all the same: a name the base does not
//     allow leaves its allowing rules (under the baseline profile a kept
//     filter could otherwise still allow kexec_load); an unconditional
//     allowing rule for a name the base allows only for some arguments
//     (clone without namespace flags, socket for some address families)
//     gives way to the base's rules for it, with the kept rule's action; a
//     conditional one stays if its conditions imply one of the base's
//     rules (argsWithin), and leaves otherwise. A name so removed that the
//     base blocks with an action of its own (clone3: ENOSYS, which glibc
//     takes as "fall back to clone") gets the base's rule, unless the kept
//     filter has a blocking rule for it.
//
//   - Architectures: a filter applies to the native architecture and to
//     those it lists; a syscall of any other ABI is killed (libseccomp's
//     bad-arch action). A spec's filter that lists architectures keeps
//     only those also in the base's list, and all of them if none is (the
//     filter never gains an ABI); one that lists none stays so (native
//     only). With NativeArchOnly the list is the native architecture.
//
//   - Flags: the spec's flags are kept but for
//     SECCOMP_FILTER_FLAG_SPEC_ALLOW, which turns off the speculative
//     store bypass mitigation that a seccomp filter otherwise brings.
//
// Base "" has no base filter: the spec's filter is kept whatever it is,
// with the Deny list and the flags rule applied; a spec without one gets
// a default-allow filter denying Deny, if Deny is not empty.
//
// The rewrite is idempotent: its output is a filter it keeps as is (an
// errno-default filter already within the base, with the flags and
// architectures it ends with).

// denyingActions are the actions under which a syscall does not run.
var denyingActions = []specs.LinuxSeccompAction{
	specs.ActErrno, specs.ActKill, specs.ActKillProcess, specs.ActKillThread, specs.ActTrap,
}

// denies reports whether a is an action under which the syscall does not
// run. Everything else (allow, log, trace, notify, and any action runc
// does not know) is treated as letting it run.
func denies(a specs.LinuxSeccompAction) bool { return slices.Contains(denyingActions, a) }

// defers reports whether a hands the decision to another process, which
// may let the syscall run: a tracer (SCMP_ACT_TRACE) or a seccomp agent
// listening on listenerPath (SCMP_ACT_NOTIFY).
func defers(a specs.LinuxSeccompAction) bool { return a == specs.ActTrace || a == specs.ActNotify }

// sameAction reports whether runc compiles the two actions to the same one
// (libcontainer/seccomp.getAction): kill is kill_thread, and errno and
// trace return EPERM unless errnoRet says otherwise. runc skips a rule
// whose action is the default one.
func sameAction(a specs.LinuxSeccompAction, aRet *uint, b specs.LinuxSeccompAction, bRet *uint) bool {
	norm := func(act specs.LinuxSeccompAction, ret *uint) (specs.LinuxSeccompAction, uint) {
		switch act {
		case specs.ActKill:
			return specs.ActKillThread, 0
		case specs.ActErrno, specs.ActTrace:
			if ret == nil {
				return act, syscallEPERM
			}
			return act, *ret
		}
		return act, 0
	}
	a1, r1 := norm(a, aRet)
	b1, r2 := norm(b, bRet)
	return a1 == b1 && r1 == r2
}

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
	if cfg.Runtime == profiles.RuntimeGVisor && !cfg.RunscOCISeccomp {
		r.gap(RuleSeccomp, "not enforced: runsc runs without --oci-seccomp and ignores linux.seccomp (gVisor's own filters confine the Sentry)")
	}
	var g *generated
	if prof.Seccomp.Base == profiles.SeccompBaseDefault {
		var err error
		if g, err = generatedFilter(s.Process.Capabilities.Bounding, &prof.Seccomp); err != nil {
			return err
		}
		if weakFilter(l.Seccomp) {
			l.Seccomp = mergeWeak(l.Seccomp, g, prof.Seccomp.NativeArchOnly, r)
			return nil
		}
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
	if g != nil {
		intersectBase(l.Seccomp, g, r)
	}
	l.Seccomp.Flags = strongFlags(l.Seccomp.Flags, r)
	if prof.Seccomp.NativeArchOnly {
		arch, err := nativeArch()
		if err != nil {
			return err
		}
		if !nativeOnly(l.Seccomp.Architectures, arch) {
			r.change(RuleSeccomp, "linux.seccomp.architectures", archList(l.Seccomp.Architectures), string(arch))
			l.Seccomp.Architectures = []specs.Arch{arch}
		}
	} else if g != nil {
		if arches := intersectArches(l.Seccomp.Architectures, g.arches); !slices.Equal(arches, l.Seccomp.Architectures) {
			r.change(RuleSeccomp, "linux.seccomp.architectures", archList(l.Seccomp.Architectures), archList(arches))
			l.Seccomp.Architectures = arches
		}
	}
	return nil
}

// mergeWeak returns the base g merged with the blocking and deferring
// rules of in, a filter whose default action lets syscalls run (or none):
// see the comment at the top of this file.
func mergeWeak(in *specs.LinuxSeccomp, g *generated, nativeArchOnly bool, r *Report) *specs.LinuxSeccomp {
	out := CloneSeccomp(g.filter)
	if seccompDisabled(in) {
		r.change(RuleSeccomp, "linux.seccomp", describeFilter(in), g.describe)
		return out
	}
	desc := g.describe
	if !nativeArchOnly {
		out.Architectures = intersectArches(in.Architectures, g.arches)
		if !slices.Equal(out.Architectures, g.arches) {
			desc += ", architectures " + archList(out.Architectures) + " (the spec's)"
		}
	}
	r.change(RuleSeccomp, "linux.seccomp", describeFilter(in), desc)
	out.Flags = strongFlags(in.Flags, r)

	blocked := make(map[string]bool)
	for _, rule := range in.Syscalls {
		if denies(rule.Action) || defers(rule.Action) {
			for _, n := range rule.Names {
				blocked[n] = true
			}
		}
	}
	if len(blocked) == 0 {
		return out
	}
	var removed []string
	removeNames(out, func(rule *specs.LinuxSyscall) bool { return !denies(rule.Action) }, blocked, &removed)
	if len(removed) > 0 {
		r.change(RuleSeccomp, "linux.seccomp.syscalls", "allowed "+strings.Join(removed, ","), "removed from allow rules: the spec's filter blocks them")
	}

	var carried []specs.LinuxSyscall
	var carriedDesc, undeferred []string
	carriedNames := make(map[string]bool)
	for _, rule := range in.Syscalls {
		if !denies(rule.Action) && !defers(rule.Action) {
			continue
		}
		names := rule.Names
		if defers(rule.Action) {
			names = nil
			for _, n := range rule.Names {
				if g.uncond[n] {
					names = append(names, n)
				} else if !slices.Contains(undeferred, n) {
					undeferred = append(undeferred, n)
				}
			}
		}
		if len(names) == 0 || sameAction(rule.Action, rule.ErrnoRet, out.DefaultAction, out.DefaultErrnoRet) {
			continue
		}
		c := specs.LinuxSyscall{
			Names:    slices.Clone(names),
			Action:   rule.Action,
			ErrnoRet: clonePtr(rule.ErrnoRet),
			Args:     slices.Clone(rule.Args),
		}
		carried = append(carried, c)
		for _, n := range names {
			carriedNames[n] = true
		}
		carriedDesc = append(carriedDesc, describeRule(&c))
	}
	if len(undeferred) > 0 {
		r.change(RuleSeccomp, "linux.seccomp.syscalls", "deferred "+strings.Join(undeferred, ","), "the default action: the base filter does not allow them unconditionally")
	}
	if len(carried) == 0 {
		return out
	}
	removeNames(out, func(rule *specs.LinuxSyscall) bool { return denies(rule.Action) }, carriedNames, nil)
	out.Syscalls = append(out.Syscalls, carried...)
	r.change(RuleSeccomp, "linux.seccomp.syscalls", "", "the spec's rules: "+strings.Join(carriedDesc, "; "))
	return out
}

// intersectBase narrows the allowing rules of sc, a kept filter whose
// default action denies, to what the base g allows (see the comment at the
// top of this file).
// (Long on purpose: one pass over the rules, whose per-rule decisions
// share the narrowing state; split, the state would travel in a struct
// for no reader's benefit.)
func intersectBase(sc *specs.LinuxSeccomp, g *generated, r *Report) {
	var removed, removedDesc, narrowed []string
	var narrowAct map[string]specs.LinuxSeccompAction
	var drop map[string]bool // this rule's names to remove
	j := 0
	for i := range sc.Syscalls {
		rule := sc.Syscalls[i]
		// Most rules are within the base: those cost no allocation.
		if !denies(rule.Action) && slices.ContainsFunc(rule.Names, func(n string) bool { return !g.allows(n, rule.Args) }) {
			if drop == nil {
				drop, narrowAct = make(map[string]bool), make(map[string]specs.LinuxSeccompAction)
			}
			clear(drop)
			for _, n := range rule.Names {
				switch {
				case g.allows(n, rule.Args):
					continue
				case len(rule.Args) == 0 && len(g.cond[n]) > 0:
					if _, ok := narrowAct[n]; !ok {
						narrowAct[n] = rule.Action
						narrowed = append(narrowed, n)
					}
				default:
					if !slices.Contains(removed, n) {
						removed = append(removed, n)
					}
					d := n
					if len(rule.Args) > 0 {
						d += " (conditional)"
					}
					if !slices.Contains(removedDesc, d) {
						removedDesc = append(removedDesc, d)
					}
				}
				drop[n] = true
			}
			keep := slices.DeleteFunc(slices.Clone(rule.Names), func(n string) bool { return drop[n] })
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
	if len(removed) == 0 && len(narrowed) == 0 {
		return
	}
	// listed reports whether a rule of the kept filter whose action denies
	// (or, with !deny, lets run) lists n, with args if args is not nil.
	listed := func(n string, deny bool, args []specs.LinuxSeccompArg) bool {
		return slices.ContainsFunc(sc.Syscalls, func(rule specs.LinuxSyscall) bool {
			return denies(rule.Action) == deny && slices.Contains(rule.Names, n) && (args == nil || slices.Equal(rule.Args, args))
		})
	}
	if len(removed) > 0 {
		r.change(RuleSeccomp, "linux.seccomp.syscalls", "allowed "+strings.Join(removedDesc, ","), "removed from allow rules: the base filter does not allow them")
	}
	if len(narrowed) > 0 {
		for _, n := range narrowed {
			for _, i := range g.cond[n] {
				b := &g.filter.Syscalls[i]
				// A rule of the kept filter for n with the same arguments
				// stays in charge of them: the same conditions with two
				// actions are a rule libseccomp refuses.
				if listed(n, true, b.Args) || listed(n, false, b.Args) {
					continue
				}
				sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: []string{n}, Action: narrowAct[n], Args: slices.Clone(b.Args)})
			}
		}
		r.change(RuleSeccomp, "linux.seccomp.syscalls", "allowed unconditionally "+strings.Join(narrowed, ","), "allowed for the arguments the base filter allows")
	}
	var added []string
	for _, i := range g.blocking {
		b := &g.filter.Syscalls[i]
		if sameAction(b.Action, b.ErrnoRet, sc.DefaultAction, sc.DefaultErrnoRet) {
			continue
		}
		var names []string
		for _, n := range b.Names {
			// Not for a name the kept filter still lets run for some
			// arguments, nor one it blocks itself: no two actions for one
			// syscall.
			if _, nar := narrowAct[n]; slices.Contains(removed, n) && !nar && !listed(n, false, nil) && !listed(n, true, nil) {
				names = append(names, n)
			}
		}
		if len(names) == 0 {
			continue
		}
		c := specs.LinuxSyscall{Names: names, Action: b.Action, ErrnoRet: clonePtr(b.ErrnoRet), Args: slices.Clone(b.Args)}
		sc.Syscalls = append(sc.Syscalls, c)
		added = append(added, describeRule(&c))
	}
	if len(added) > 0 {
		r.change(RuleSeccomp, "linux.seccomp.syscalls", "", "the base filter's rules: "+strings.Join(added, "; "))
	}
}

// weakFlags are the filter flags that weaken the protection a filter
// brings: SECCOMP_FILTER_FLAG_SPEC_ALLOW turns off the speculative store
// bypass mitigation the kernel otherwise applies to a task with a filter.
var weakFlags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagSpecAllow}

// strongFlags returns flags without the weakening ones, recording those it
// removed. flags is not modified.
func strongFlags(flags []specs.LinuxSeccompFlag, r *Report) []specs.LinuxSeccompFlag {
	if !slices.ContainsFunc(flags, func(f specs.LinuxSeccompFlag) bool { return slices.Contains(weakFlags, f) }) {
		return slices.Clone(flags)
	}
	var out []specs.LinuxSeccompFlag
	var removed []string
	for _, f := range flags {
		if slices.Contains(weakFlags, f) {
			if !slices.Contains(removed, string(f)) {
				removed = append(removed, string(f))
			}
			continue
		}
		out = append(out, f)
	}
	r.change(RuleSeccomp, "linux.seccomp.flags", strings.Join(removed, ","), "removed: it turns off the speculative store bypass mitigation")
	return out
}

// intersectArches returns the architectures of spec that are also in
// base, in spec's order; spec itself if none is (the filter never gains an
// ABI). An empty spec list (the native architecture only) stays empty.
func intersectArches(spec, base []specs.Arch) []specs.Arch {
	var out []specs.Arch
	for _, a := range spec {
		if slices.Contains(base, a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return slices.Clone(spec)
	}
	return out
}

// describeRule is a rule as a report shows it: "SCMP_ACT_ERRNO(38) clone3",
// with "(conditional)" when it has arguments.
func describeRule(rule *specs.LinuxSyscall) string {
	act := string(rule.Action)
	if rule.ErrnoRet != nil {
		act += "(" + strconv.FormatUint(uint64(*rule.ErrnoRet), 10) + ")"
	}
	s := act + " " + strings.Join(rule.Names, ",")
	if len(rule.Args) > 0 {
		s += " (conditional)"
	}
	return s
}

// removeNames removes names from every rule of sc for which pred holds,
// dropping rules left empty; with out, it appends the names it removed
// (once each) to *out.
func removeNames(sc *specs.LinuxSeccomp, pred func(*specs.LinuxSyscall) bool, names map[string]bool, out *[]string) {
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
	removeNames(sc, func(r *specs.LinuxSyscall) bool { return !denies(r.Action) }, denied, &removed)
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
	removeNames(sc, func(r *specs.LinuxSyscall) bool { return len(r.Args) > 0 }, missing, nil)
	eperm := uint(syscall.EPERM)
	sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{
		Names:    slices.Clone(added),
		Action:   specs.ActErrno,
		ErrnoRet: &eperm,
	})
	return removed, added
}

// allowNames has sc allow names unconditionally: they leave every rule
// that names them (a conditional allow, a blocking rule such as clone3's
// ENOSYS) and get an allowing rule of their own.
func allowNames(sc *specs.LinuxSeccomp, names []string) {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	removeNames(sc, func(*specs.LinuxSyscall) bool { return true }, set, nil)
	sc.Syscalls = append(sc.Syscalls, specs.LinuxSyscall{Names: slices.Clone(names), Action: specs.ActAllow})
}

// AllowNames returns a copy of sc that allows names unconditionally (a
// learned profile: the enforced filter with what the workload needed).
func AllowNames(sc *specs.LinuxSeccomp, names []string) *specs.LinuxSeccomp {
	out := CloneSeccomp(sc)
	if len(names) > 0 {
		allowNames(out, names)
	}
	return out
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
	// arches is containerd's list of architectures, before NativeArchOnly.
	arches []specs.Arch
	// uncond holds the names an unconditional allowing rule of filter
	// lists; cond, for the others, the indices of the conditional
	// allowing rules that list them; blocking, the indices of the rules
	// whose action denies (clone3's ENOSYS).
	uncond   map[string]bool
	cond     map[string][]int
	blocking []int
}

// allows reports whether the base lets name run for every argument tuple
// that args (a rule's conditions, as runc reads them) admits.
func (g *generated) allows(name string, args []specs.LinuxSeccompArg) bool {
	if g.uncond[name] {
		return true
	}
	if len(args) == 0 {
		return false
	}
	for _, i := range g.cond[name] {
		if argsWithin(args, g.filter.Syscalls[i].Args) {
			return true
		}
	}
	return false
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
	for _, a := range sp.Allow {
		key.WriteString(strconv.Itoa(len(a)))
		key.WriteByte(':')
		key.WriteString(a)
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
	desc := fmt.Sprintf("containerd default filter for [%s]", strings.Join(caps, ","))
	if len(sp.Allow) > 0 {
		allowNames(f, sp.Allow)
		desc += " with " + strings.Join(sp.Allow, ",")
	}
	removed, _ := applyDeny(f, sp.Deny)
	if len(removed) > 0 {
		desc += " without " + strings.Join(removed, ",")
	}
	g = &generated{filter: f, arches: slices.Clone(f.Architectures), uncond: map[string]bool{}, cond: map[string][]int{}}
	if sp.NativeArchOnly {
		arch, err := nativeArch()
		if err != nil {
			return nil, err
		}
		f.Architectures = []specs.Arch{arch}
		desc += ", " + string(arch) + " only"
	}
	g.describe = desc
	for i, rule := range f.Syscalls {
		if denies(rule.Action) {
			g.blocking = append(g.blocking, i)
			continue
		}
		for _, n := range rule.Names {
			if len(rule.Args) == 0 {
				g.uncond[n] = true
			} else {
				g.cond[n] = append(g.cond[n], i)
			}
		}
	}

	generatedMu.Lock()
	if len(generatedCache) < maxGenerated {
		generatedCache[k] = g
	}
	generatedMu.Unlock()
	return g, nil
}

// CloneSeccomp deep-copies a filter.
func CloneSeccomp(in *specs.LinuxSeccomp) *specs.LinuxSeccomp {
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
// (Long on purpose: a list of independent checks in the order their
// refusals should be reported.)
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
	if prof.Seccomp.Base == profiles.SeccompBaseDefault {
		var bounding []string
		if s.Process != nil && s.Process.Capabilities != nil {
			bounding = s.Process.Capabilities.Bounding
		}
		g, err := generatedFilter(bounding, &prof.Seccomp)
		if err != nil {
			return err
		}
		for i, rule := range sc.Syscalls {
			if denies(rule.Action) {
				continue
			}
			for _, n := range rule.Names {
				if !g.allows(n, rule.Args) {
					return refuse(RuleSeccomp, fmt.Sprintf("linux.seccomp.syscalls[%d]", i), "%s lets %s run: the base filter (containerd's default for the capabilities left) does not allow it", rule.Action, n)
				}
			}
		}
	}
	if !seccompDisabled(sc) {
		for _, f := range sc.Flags {
			if slices.Contains(weakFlags, f) {
				return refuse(RuleSeccomp, "linux.seccomp.flags", "%s turns off the speculative store bypass mitigation", f)
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

// checkSeccompNotify refuses a filter that hands syscalls to a listener
// (SCMP_ACT_NOTIFY, as a rule's action or the default) or names one
// (listenerPath, listenerMetadata): runc connects, as root and in the host's
// mount namespace, to whatever unix socket listenerPath names and hands it
// the container's notify fd, and the listener may then let any syscall the
// filter meant to stop run. The shim is to be the only listener.
func checkSeccompNotify(sc *specs.LinuxSeccomp) error {
	if sc == nil {
		return nil
	}
	switch {
	case sc.ListenerPath != "":
		return refuse(RuleSeccomp, "linux.seccomp.listenerPath", "%q: runc would connect to that socket as root and hand it the container's seccomp notifications", sc.ListenerPath)
	case sc.ListenerMetadata != "":
		return refuse(RuleSeccomp, "linux.seccomp.listenerMetadata", "is set: a spec names no seccomp listener")
	case sc.DefaultAction == specs.ActNotify:
		return refuse(RuleSeccomp, "linux.seccomp.defaultAction", "%s hands every syscall to a listener the spec chose", specs.ActNotify)
	}
	for i, rule := range sc.Syscalls {
		if rule.Action == specs.ActNotify {
			return refuse(RuleSeccomp, fmt.Sprintf("linux.seccomp.syscalls[%d].action", i), "%s hands %s to a listener the spec chose", specs.ActNotify, strings.Join(rule.Names, ","))
		}
	}
	return nil
}
