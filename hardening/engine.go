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
// Refusals come first, on the spec as it came: fd hygiene, hooks, host
// namespaces and privileged specs, host paths and kernel filesystems,
// device access under deny_privileged, run-as-non-root. Then the rewrites,
// each monotonic (it only ever tightens): capabilities (and the scheduling
// they allow), no_new_privileges, rootfs, read-only sysfs and cgroup,
// devices, pids, masked paths, annotations, AppArmor, rlimits, and seccomp
// last since the default filter depends on the final capabilities. The
// output must then pass Validate, or Harden fails: an output the engine
// cannot vouch for is an error, never a silently weaker spec.
func Harden(in *specs.Spec, cfg Config) (*specs.Spec, *Report, error) {
	if err := checkConfig(&cfg); err != nil {
		return nil, nil, err
	}
	if err := checkShape(in); err != nil {
		return nil, nil, err
	}
	prof := cfg.Profile
	s := deepCopy(in)
	r := &Report{Profile: prof.Name, Backend: cfg.Backend, Changes: []Change{}}

	if err := checkFDHygiene(s); err != nil {
		return nil, nil, err
	}
	if err := checkHooks(s.Hooks, cfg.AllowedHooks); err != nil {
		return nil, nil, err
	}
	if err := checkNamespaces(s, prof); err != nil {
		return nil, nil, err
	}
	if err := checkMounts(s, prof); err != nil {
		return nil, nil, err
	}
	if err := checkDevices(s, prof); err != nil {
		return nil, nil, err
	}
	if err := checkRunAsNonRoot(s.Process, prof); err != nil {
		return nil, nil, err
	}

	if s.Linux == nil {
		s.Linux = &specs.Linux{}
		r.change(RuleSpec, "linux", "nil", "{}")
	}
	applyCapabilities(s.Process, nil, prof, r)
	if err := checkScheduling(s.Process); err != nil {
		return nil, nil, err
	}
	applyNoNewPrivs(s.Process, r)
	applyRootfs(s, prof, r)
	applyMountOptions(s, r)
	applyDevices(s.Linux, prof, r)
	applyPids(s.Linux, prof, r)
	applyPaths(s.Linux, prof, r)
	stripAnnotations(s, r)
	if err := applyAppArmor(s.Process, &cfg, r); err != nil {
		return nil, nil, err
	}
	applyNoCoreDumps(s.Process, prof, r)
	if err := applySeccomp(s, &cfg, r); err != nil {
		return nil, nil, err
	}

	if err := Validate(s, cfg); err != nil {
		return nil, nil, fmt.Errorf("failed to validate hardened spec: %w", err)
	}
	return s, r, nil
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
	r := &Report{Profile: prof.Name, Backend: cfg.Backend, Changes: []Change{}}

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
	if cfg.Backend == BackendGVisor {
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
		cfg.AppArmorMode = AppArmorIfAvailable
	case AppArmorIfAvailable, AppArmorRequired, AppArmorOff:
	default:
		return fmt.Errorf("%w: unknown apparmor mode %q", ErrInvalidConfig, cfg.AppArmorMode)
	}
	switch cfg.Backend {
	case "":
		cfg.Backend = BackendRunc
	case BackendRunc, BackendGVisor:
	default:
		return fmt.Errorf("%w: unknown backend %q", ErrInvalidConfig, cfg.Backend)
	}
	switch cfg.Profile.Seccomp.Base {
	case "", profiles.SeccompBaseDefault:
	default:
		return fmt.Errorf("%w: profile %s: unknown seccomp base %q", ErrInvalidConfig, cfg.Profile.Name, cfg.Profile.Seccomp.Base)
	}
	return nil
}
