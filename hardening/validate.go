package hardening

import (
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Validate checks that s satisfies everything Harden guarantees under
// cfg: none of the refusals (specChecks), read-only sysfs and cgroup, host
// bind mounts nosuid and nodev and every other mount option as tamed, no
// device beyond the profile's, scheduling within the capabilities,
// no_new_privileges, capabilities within the profile's ceiling (and not
// nil, which runc reads as "keep all"), the AppArmor profile where it is
// enforced, a read-only rootfs where the profile says, the pids limit,
// masked and read-only paths, no runtime-interpreted annotation, rlimits
// within their bounds, the OOM score floor, RLIMIT_CORE, and a seccomp
// filter that is not weaker than the profile asks (under base "default": a
// denying default action, nothing allowed that containerd's default filter
// for the capabilities left does not allow; never
// SECCOMP_FILTER_FLAG_SPEC_ALLOW) and that runc will compile. It returns a
// *RefusalError naming the first violation.
//
// Harden runs it on its own output; the CLI runs it on specs from anywhere.
func Validate(s *specs.Spec, cfg Config) error {
	if err := checkConfig(&cfg); err != nil {
		return err
	}
	if err := checkShape(s); err != nil {
		return err
	}
	if err := runChecks(s, &cfg, specChecks); err != nil {
		return err
	}
	prof := cfg.Profile
	checks := []error{
		checkMountsTamed(s, &cfg),
		checkDevicesHardened(s.Linux, prof),
		checkProcess(s.Process, prof),
		checkAppArmor(s.Process, &cfg),
		checkRootfs(s, prof),
		checkPids(s.Linux, prof),
		checkPaths(s.Linux, prof),
		checkAnnotations(s),
	}
	for _, err := range checks {
		if err != nil {
			return err
		}
	}
	// Last: the most expensive check, and the one that assumes the rest.
	return checkSeccomp(s, &cfg)
}

// validateExec checks a hardened exec'd process.
func validateExec(p *specs.Process, container *specs.Spec, cfg *Config) error {
	if err := checkProcessFDHygiene(p, procMounts(container.Mounts)); err != nil {
		return err
	}
	if err := checkProcess(p, cfg.Profile); err != nil {
		return err
	}
	limit := containerCaps(container)
	for _, set := range capSets {
		for _, c := range *set.get(p.Capabilities) {
			if !slices.Contains(*set.get(limit), c) {
				return refuse(RuleCapabilities, "process.capabilities."+set.name, "holds %s, which the container's init process lacks", c)
			}
		}
	}
	if p.ApparmorProfile != container.Process.ApparmorProfile {
		return refuse(RuleAppArmor, "process.apparmorProfile", "differs from the container's")
	}
	return checkExecPinned(p, container.Process)
}
