package hardening

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/opencontainers/runc/libcontainer/configs"
	"github.com/opencontainers/runc/libcontainer/specconv"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	libseccomp "github.com/seccomp/libseccomp-golang"
)

// compileLikeRunc checks a filter the way runc v1.5.2 reads and compiles
// it, short of loading it into the kernel: specconv.SetupSeccomp (actions,
// operators, architectures), then libcontainer/seccomp.InitSeccomp's
// filter construction with libseccomp (NewFilter, AddArch, flags, one
// AddRule per syscall name). That code is mirrored here, not called,
// because InitSeccomp also loads the filter into the calling process, and
// runc's seccomp package only has it under the "seccomp" build tag.
//
// Mirroring means refusing exactly what runc would fail on and nothing it
// accepts. In particular runc ignores a syscall name that libseccomp
// cannot resolve (matchCall: "unknown seccomp syscall ignored", on the
// assumption that the kernel is older than the profile), and libseccomp
// resolves a name that exists on any architecture it knows (on amd64,
// chown32 resolves to a pseudo-syscall number, and its rule only applies
// to the architectures where it exists). containerd's default filter lists
// names for every architecture, so such names are never an error here.
// What runc does fail on: unknown actions, operators, architectures or
// flags; an argument index beyond 5; SCMP_ACT_NOTIFY as the default
// action, on write(2) or without a listener path; any rule libseccomp
// refuses to add. What depends on the version of runc's own libseccomp
// (flags and actions a newer one supports, names a newer one knows) is
// left to runc: this libseccomp may be older, and a runc that cannot apply
// the filter refuses to start the container, so leaving it is fail-closed.
//
// Compiling a filter with libseccomp costs about a millisecond, far above
// the engine's budget, and specs share a few filters: results are cached
// by the filter's exact content.
func compileLikeRunc(sc *specs.LinuxSeccomp) error {
	key := filterKey(sc)
	compiledMu.RLock()
	err, ok := compiledCache[key]
	compiledMu.RUnlock()
	if ok {
		// A copy: a caller changing the error must not change the cache.
		var re *RefusalError
		if errors.As(err, &re) {
			c := *re
			return &c
		}
		return err
	}
	err = compileLikeRuncUncached(sc)
	compiledMu.Lock()
	if len(compiledCache) >= maxCompiled {
		// Specs come from outside: bound the memory, and let the filters
		// in use fill the cache again.
		clear(compiledCache)
	}
	compiledCache[key] = err
	compiledMu.Unlock()
	return err
}

const maxCompiled = 256

var (
	compiledMu    sync.RWMutex
	compiledCache = map[string]error{}
)

// runcFlags are the filter flags runc v1.5.2 knows
// (libcontainer/seccomp/config.go).
var runcFlags = []specs.LinuxSeccompFlag{
	"SECCOMP_FILTER_FLAG_TSYNC",
	specs.LinuxSeccompFlagSpecAllow,
	specs.LinuxSeccompFlagLog,
	specs.LinuxSeccompFlagWaitKillableRecv,
}

func runcRefusal(format string, args ...any) error {
	return refuse(RuleSeccomp, "linux.seccomp", "runc would reject the filter: "+format, args...)
}

// compileLikeRuncUncached does what runc's SetupSeccomp and libseccomp do
// with a filter, step by step in runc's order (long on purpose: each step
// mirrors one of runc's, so the two can be read side by side).
func compileLikeRuncUncached(sc *specs.LinuxSeccomp) error {
	// SetupSeccomp checks explicit flags with seccomp.FlagSupported,
	// which depends on how this binary is built (without the "seccomp"
	// tag it fails for every flag); flags are checked below the way runc,
	// built with it, applies them.
	noFlags := *sc
	noFlags.Flags = nil
	cfg, err := specconv.SetupSeccomp(&noFlags)
	if err != nil {
		return runcRefusal("%v", err)
	}
	if cfg == nil {
		return nil // no default action and no syscalls: runc runs without a filter
	}
	for _, f := range sc.Flags {
		if !slices.Contains(runcFlags, f) {
			return runcRefusal("seccomp flag %s is not known to runc", f)
		}
	}
	defAct, err := runcAction(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return runcRefusal("invalid default action")
	}
	// runc also requires libseccomp API level 6 for SCMP_ACT_NOTIFY; that
	// depends on runc's libseccomp, not this one, and fails closed: not
	// checked here.
	hasNotify := false
	for _, call := range cfg.Syscalls {
		if call.Action == configs.Notify {
			hasNotify = true
			if call.Name == "write" {
				return runcRefusal("SCMP_ACT_NOTIFY cannot be used for the write syscall")
			}
		}
	}
	if defAct == libseccomp.ActNotify {
		return runcRefusal("SCMP_ACT_NOTIFY cannot be used as default action")
	}
	if hasNotify && sc.ListenerPath == "" {
		// runc fails at start (process_linux.go) without a listener.
		return runcRefusal("SCMP_ACT_NOTIFY without listenerPath")
	}

	filter, err := libseccomp.NewFilter(defAct)
	if err != nil {
		return runcRefusal("error creating filter: %v", err)
	}
	defer filter.Release()
	for _, arch := range cfg.Architectures {
		a, err := libseccomp.GetArchFromString(arch)
		if err != nil {
			return runcRefusal("error validating seccomp architecture: %v", err)
		}
		if err := filter.AddArch(a); err != nil {
			return runcRefusal("error adding architecture to seccomp filter: %v", err)
		}
	}
	for _, f := range sc.Flags {
		if err := runcSetFlag(filter, f); err != nil {
			// A flag this libseccomp is too old for may well be supported
			// by runc's (release binaries link their own statically):
			// leave that to runc, which fails closed if it is not.
			var verr *libseccomp.VersionError
			if errors.As(err, &verr) {
				continue
			}
			return runcRefusal("%v", err)
		}
	}
	if len(cfg.Syscalls) > 32 {
		_ = filter.SetOptimize(2) // not fatal in runc either
	}
	if err := filter.SetNoNewPrivsBit(false); err != nil {
		return runcRefusal("error setting no new privileges: %v", err)
	}
	for _, call := range cfg.Syscalls {
		if err := runcMatchCall(filter, call, defAct); err != nil {
			return runcRefusal("%v", err)
		}
	}
	return nil
}

// runcSetFlag mirrors libcontainer/seccomp.setFlag.
func runcSetFlag(filter *libseccomp.ScmpFilter, flag specs.LinuxSeccompFlag) error {
	switch flag {
	case "SECCOMP_FILTER_FLAG_TSYNC":
		return nil
	case specs.LinuxSeccompFlagLog:
		return filter.SetLogBit(true)
	case specs.LinuxSeccompFlagSpecAllow:
		return filter.SetSSB(true)
	case specs.LinuxSeccompFlagWaitKillableRecv:
		return filter.SetWaitKill(true)
	}
	return fmt.Errorf("seccomp flag %s is not known to runc", flag)
}

// runcAction mirrors libcontainer/seccomp.getAction.
func runcAction(act configs.Action, errnoRet *uint) (libseccomp.ScmpAction, error) {
	switch act {
	case configs.Kill, configs.KillThread:
		return libseccomp.ActKillThread, nil
	case configs.Errno:
		if errnoRet != nil {
			return libseccomp.ActErrno.SetReturnCode(int16(*errnoRet)), nil
		}
		return libseccomp.ActErrno.SetReturnCode(int16(syscallEPERM)), nil
	case configs.Trap:
		return libseccomp.ActTrap, nil
	case configs.Allow:
		return libseccomp.ActAllow, nil
	case configs.Trace:
		if errnoRet != nil {
			return libseccomp.ActTrace.SetReturnCode(int16(*errnoRet)), nil
		}
		return libseccomp.ActTrace.SetReturnCode(int16(syscallEPERM)), nil
	case configs.Log:
		return libseccomp.ActLog, nil
	case configs.Notify:
		return libseccomp.ActNotify, nil
	case configs.KillProcess:
		return libseccomp.ActKillProcess, nil
	}
	return libseccomp.ActInvalid, errors.New("invalid action, cannot use in rule")
}

// runcOperator mirrors libcontainer/seccomp.getOperator.
func runcOperator(op configs.Operator) (libseccomp.ScmpCompareOp, bool) {
	switch op {
	case configs.EqualTo:
		return libseccomp.CompareEqual, true
	case configs.NotEqualTo:
		return libseccomp.CompareNotEqual, true
	case configs.GreaterThan:
		return libseccomp.CompareGreater, true
	case configs.GreaterThanOrEqualTo:
		return libseccomp.CompareGreaterEqual, true
	case configs.LessThan:
		return libseccomp.CompareLess, true
	case configs.LessThanOrEqualTo:
		return libseccomp.CompareLessOrEqual, true
	case configs.MaskEqualTo:
		return libseccomp.CompareMaskedEqual, true
	}
	return libseccomp.CompareInvalid, false
}

// runcMatchCall mirrors libcontainer/seccomp.matchCall.
func runcMatchCall(filter *libseccomp.ScmpFilter, call *configs.Syscall, defAct libseccomp.ScmpAction) error {
	if call.Name == "" {
		return errors.New("empty string is not a valid syscall")
	}
	callAct, err := runcAction(call.Action, call.ErrnoRet)
	if err != nil {
		return fmt.Errorf("action in seccomp profile is invalid: %w", err)
	}
	if callAct == defAct {
		return nil // runc skips redundant rules
	}
	nr, ok := resolveSyscall(call.Name)
	if !ok {
		return nil // runc ignores names libseccomp does not know
	}
	if len(call.Args) == 0 {
		if err := filter.AddRule(nr, callAct); err != nil {
			return fmt.Errorf("error adding seccomp filter rule for syscall %s: %v", call.Name, err)
		}
		return nil
	}
	const syscallMaxArguments = 6
	argCounts := make([]uint, syscallMaxArguments)
	conds := make([]libseccomp.ScmpCondition, 0, len(call.Args))
	for _, a := range call.Args {
		op, ok := runcOperator(a.Op)
		if !ok {
			return fmt.Errorf("error creating seccomp syscall condition for syscall %s: invalid operator, cannot use in rule", call.Name)
		}
		c, err := libseccomp.MakeCondition(a.Index, op, a.Value, a.ValueTwo)
		if err != nil {
			return fmt.Errorf("error creating seccomp syscall condition for syscall %s: %v", call.Name, err)
		}
		argCounts[a.Index]++
		conds = append(conds, c)
	}
	multiple := false
	for _, n := range argCounts {
		if n > 1 {
			multiple = true
		}
	}
	if multiple {
		// runc adds each condition as a rule of its own (an OR).
		for _, c := range conds {
			if err := filter.AddRuleConditional(nr, callAct, []libseccomp.ScmpCondition{c}); err != nil {
				return fmt.Errorf("error adding seccomp rule for syscall %s: %v", call.Name, err)
			}
		}
		return nil
	}
	if err := filter.AddRuleConditional(nr, callAct, conds); err != nil {
		return fmt.Errorf("error adding seccomp rule for syscall %s: %v", call.Name, err)
	}
	return nil
}

const syscallEPERM = 1

// syscallNumbers caches libseccomp name resolutions (native architecture,
// as runc resolves them). Only names that resolve are stored, so the map is
// bounded by libseccomp's syscall table whatever names specs carry.
var syscallNumbers sync.Map // string -> libseccomp.ScmpSyscall

func resolveSyscall(name string) (libseccomp.ScmpSyscall, bool) {
	if v, ok := syscallNumbers.Load(name); ok {
		return v.(libseccomp.ScmpSyscall), true
	}
	nr, err := libseccomp.GetSyscallFromName(name)
	if err != nil {
		return 0, false
	}
	syscallNumbers.Store(name, nr)
	return nr, true
}

// filterKey encodes every field of a filter that its compilation depends
// on, length-prefixed so that distinct filters never share a key.
func filterKey(sc *specs.LinuxSeccomp) string {
	n := 64
	for _, r := range sc.Syscalls {
		n += 32 + 24*len(r.Args)
		for _, name := range r.Names {
			n += len(name) + 4
		}
	}
	b := make([]byte, 0, n)
	str := func(s string) {
		b = strconv.AppendInt(b, int64(len(s)), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	num := func(v uint64) {
		b = strconv.AppendUint(b, v, 10)
		b = append(b, ',')
	}
	ptr := func(p *uint) {
		if p == nil {
			b = append(b, '-')
			return
		}
		num(uint64(*p))
	}
	str(string(sc.DefaultAction))
	ptr(sc.DefaultErrnoRet)
	num(uint64(len(sc.Architectures)))
	for _, a := range sc.Architectures {
		str(string(a))
	}
	num(uint64(len(sc.Flags)))
	for _, f := range sc.Flags {
		str(string(f))
	}
	str(sc.ListenerPath)
	num(uint64(len(sc.Syscalls)))
	for _, r := range sc.Syscalls {
		str(string(r.Action))
		ptr(r.ErrnoRet)
		num(uint64(len(r.Names)))
		for _, name := range r.Names {
			str(name)
		}
		num(uint64(len(r.Args)))
		for _, a := range r.Args {
			num(uint64(a.Index))
			num(a.Value)
			num(a.ValueTwo)
			str(string(a.Op))
		}
	}
	return string(b)
}
