package hardening

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// Harden returns a hardened deep copy of in under cfg.Profile, and the
// report of what it changed; in is never mutated. A spec the engine will
// not make safe is refused with a *RefusalError (errors.Is ErrRefused).
//
// Refusals come first, on the spec as it came (specChecks). Then the
// rewrites, each monotonic (it only ever tightens): capabilities (and the
// scheduling they allow), no_new_privileges, rootfs, mount options,
// devices, pids, masked paths, annotations, AppArmor, OOM score, rlimits,
// and seccomp last since the default filter depends on the final
// capabilities. The output must then pass Validate, or Harden fails: an
// output the engine cannot vouch for is an error, never a silently weaker
// spec.
//
// Every field of the runtime spec has a disposition (fields.go): kept,
// tightened by a rewrite, judged by a check, or refused when set.
func Harden(in *specs.Spec, cfg Config) (*specs.Spec, *Report, error) {
	if err := checkConfig(&cfg); err != nil {
		return nil, nil, err
	}
	if err := checkShape(in); err != nil {
		return nil, nil, err
	}
	prof := cfg.Profile
	s := deepCopy(in)
	r := &Report{Profile: prof.Name, Runtime: cfg.Runtime, Changes: []Change{}}

	if err := runChecks(s, &cfg, specChecks); err != nil {
		return nil, nil, err
	}

	applyCapabilities(s.Process, nil, prof, r)
	if err := checkScheduling(s.Process); err != nil {
		return nil, nil, err
	}
	applyNoNewPrivs(s.Process, r)
	applyRootfs(s, &cfg, r)
	applyMountOptions(s, &cfg, r)
	applyDevices(s.Linux, prof, r)
	applyPids(s.Linux, prof, r)
	applyPaths(s.Linux, prof, r)
	stripAnnotations(s, r)
	if err := applyAppArmor(s.Process, &cfg, r); err != nil {
		return nil, nil, err
	}
	applyOOMScore(s.Process, r)
	applyRlimitBounds(s.Process, prof, r)
	applyNoCoreDumps(s.Process, prof, r)
	if err := applySeccomp(s, &cfg, r); err != nil {
		return nil, nil, err
	}

	if err := Validate(s, cfg); err != nil {
		return nil, nil, fmt.Errorf("failed to validate hardened spec: %w", err)
	}
	return s, r, nil
}

// specCheck is one refusal rule over a whole spec.
type specCheck func(s *specs.Spec, cfg *Config) error

// specChecks are the rules that refuse a spec, in the order Harden applies
// them to its input; Validate applies them again to a hardened spec (where
// nothing they look at was rewritten into something they would refuse).
var specChecks = []specCheck{
	func(s *specs.Spec, _ *Config) error { return checkPlatform(s) },
	func(s *specs.Spec, _ *Config) error { return checkFDHygiene(s) },
	func(s *specs.Spec, c *Config) error { return checkHooks(s.Hooks, c.AllowedHooks) },
	func(s *specs.Spec, c *Config) error { return checkNamespaces(s, c.Profile) },
	func(s *specs.Spec, c *Config) error { return checkNamespaceRules(s, c.Profile) },
	func(s *specs.Spec, c *Config) error { return checkRuntime(s, c) },
	func(s *specs.Spec, _ *Config) error { return checkLinuxMisc(s.Linux) },
	func(s *specs.Spec, c *Config) error { return checkSysctls(s.Linux, c.Profile) },
	func(s *specs.Spec, c *Config) error { return checkCgroups(s.Linux, c) },
	func(s *specs.Spec, c *Config) error { return checkSELinux(s, c.Profile) },
	checkMounts,
	func(s *specs.Spec, c *Config) error { return checkRootfsPropagation(s.Linux, c.Profile) },
	func(s *specs.Spec, c *Config) error { return checkDevices(s, c.Profile) },
	func(s *specs.Spec, c *Config) error { return checkDevicePaths(s.Linux, c) },
	func(s *specs.Spec, c *Config) error { return checkRunAsNonRoot(s.Process, c.Profile) },
	func(s *specs.Spec, _ *Config) error { return checkRlimitTypes(s.Process) },
	func(s *specs.Spec, _ *Config) error { return checkSeccompNotify(seccompOf(s)) },
	func(s *specs.Spec, _ *Config) error { return checkProjectAnnotations(s.Annotations) },
}

func runChecks(s *specs.Spec, cfg *Config, checks []specCheck) error {
	for _, check := range checks {
		if err := check(s, cfg); err != nil {
			return err
		}
	}
	return nil
}

func seccompOf(s *specs.Spec) *specs.LinuxSeccomp {
	if s.Linux == nil {
		return nil
	}
	return s.Linux.Seccomp
}

// checkRuntime refuses what the chosen runtime cannot run as asked: runsc
// cannot run a user-namespaced container (its gofer fails to join the pod's
// user namespace: setns into a user namespace is refused to a
// multi-threaded process, and runsc is a Go program), after it made the
// sandbox's cgroups, which it then leaves behind.
func checkRuntime(s *specs.Spec, cfg *Config) error {
	if cfg.Runtime == profiles.RuntimeGVisor && HasUserNamespace(s) {
		return refuse(RuleNamespaces, "linux.namespaces", "gVisor (runsc) cannot run user-namespaced containers: run the pod on runc, or without a user namespace")
	}
	return nil
}

// HasUserNamespace reports whether the spec runs in a user namespace of its
// own (a new one with ID mappings, or a pinned one joined by path).
func HasUserNamespace(s *specs.Spec) bool {
	if s.Linux == nil {
		return false
	}
	return len(s.Linux.UIDMappings) > 0 || len(s.Linux.GIDMappings) > 0 || namespace(s.Linux, specs.UserNamespace) != nil
}

// HardenExec returns a hardened copy of p, a process exec'd into the
// running container whose hardened spec is container; p is never mutated.
//
// containerd builds p from its own stored spec, the one from before the
// shim rewrote it, so p carries the capabilities, AppArmor profile and
// no_new_privileges the container had before hardening: an exec is the
// way back to all of them unless it is hardened the same way. The process
// gets no capability beyond the container's init process (set by set) nor
// the profile's ceiling, no_new_privileges, the container's AppArmor
// profile and SELinux label, no group, rlimit or lower OOM score beyond the
// init process's (exec.go), the same run-as-non-root, scheduling (no
// real-time policy or I/O class the capabilities do not allow), fd hygiene
// (CVE-2024-21626 came through `runc exec --cwd` as much as through the
// init process) and rlimit rules. The profile may deny exec altogether.
func HardenExec(p *specs.Process, container *specs.Spec, cfg Config) (*specs.Process, *Report, error) {
	if err := checkConfig(&cfg); err != nil {
		return nil, nil, err
	}
	prof := cfg.Profile
	if p == nil {
		return nil, nil, refuse(RuleSpec, "process", "malformed exec process: nil")
	}
	if container == nil || container.Process == nil {
		return nil, nil, refuse(RuleSpec, "process", "malformed container spec: no process")
	}
	if prof.Process.DenyExec {
		return nil, nil, refuse(RuleExec, "", "exec into the container is denied under profile %s", prof.Name)
	}
	out := deepCopy(p)
	r := &Report{Profile: prof.Name, Runtime: cfg.Runtime, Changes: []Change{}}

	if err := checkPlatform(&specs.Spec{Process: out}); err != nil {
		return nil, nil, err
	}
	if err := checkProcessFDHygiene(out, procMounts(container.Mounts)); err != nil {
		return nil, nil, err
	}
	if err := checkRunAsNonRoot(out, prof); err != nil {
		return nil, nil, err
	}
	applyCapabilities(out, containerCaps(container), prof, r)
	applyNoNewPrivs(out, r)
	if want := container.Process.ApparmorProfile; out.ApparmorProfile != want {
		r.change(RuleAppArmor, "process.apparmorProfile", out.ApparmorProfile, want)
		out.ApparmorProfile = want
	}
	if cfg.Runtime == profiles.RuntimeGVisor {
		r.gap(RuleAppArmor, "not enforced: gVisor ignores AppArmor")
	}
	if err := pinExec(out, container.Process, r); err != nil {
		return nil, nil, err
	}
	applyNoCoreDumps(out, prof, r)
	if err := checkScheduling(out); err != nil {
		return nil, nil, err
	}

	if err := validateExec(out, container, &cfg); err != nil {
		return nil, nil, fmt.Errorf("failed to validate hardened exec process: %w", err)
	}
	return out, r, nil
}

// containerCaps returns the init process's capabilities; none if nil
// (the hardened spec never has nil, and an exec gets nothing it cannot
// prove the container has).
func containerCaps(container *specs.Spec) *specs.LinuxCapabilities {
	if c := container.Process.Capabilities; c != nil {
		return c
	}
	return &specs.LinuxCapabilities{}
}

// checkShape refuses specs the engine cannot reason about.
func checkShape(s *specs.Spec) error {
	switch {
	case s == nil:
		return refuse(RuleSpec, "", "malformed spec: nil")
	case s.Process == nil:
		return refuse(RuleSpec, "process", "malformed spec: no process")
	case s.Root == nil:
		return refuse(RuleSpec, "root", "malformed spec: no root")
	}
	return nil
}

// checkConfig validates cfg and fills in its defaults.
func checkConfig(cfg *Config) error {
	if cfg.Profile == nil {
		return fmt.Errorf("%w: no profile", ErrInvalidConfig)
	}
	switch cfg.AppArmorMode {
	case "":
		cfg.AppArmorMode = profiles.AppArmorIfAvailable
	case profiles.AppArmorIfAvailable, profiles.AppArmorRequired, profiles.AppArmorOff:
	default:
		return fmt.Errorf("%w: unknown apparmor mode %q", ErrInvalidConfig, cfg.AppArmorMode)
	}
	switch cfg.Runtime {
	case "":
		cfg.Runtime = profiles.RuntimeRunc
	case profiles.RuntimeRunc, profiles.RuntimeGVisor:
	default:
		return fmt.Errorf("%w: unknown runtime %q", ErrInvalidConfig, cfg.Runtime)
	}
	switch cfg.Profile.Seccomp.Base {
	case "", profiles.SeccompBaseDefault:
	default:
		return fmt.Errorf("%w: profile %s: unknown seccomp base %q", ErrInvalidConfig, cfg.Profile.Name, cfg.Profile.Seccomp.Base)
	}
	return nil
}
