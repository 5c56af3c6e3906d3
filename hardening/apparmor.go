package hardening

import (
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

const apparmorUnconfined = "unconfined"

// applyAppArmor confines the process with the profile's AppArmor profile
// where that is enforced, and says so where it is not: AppArmor cannot be
// enforced on a host without it, and the engine never pretends it is.
//
//   - gVisor: runsc ignores process.apparmorProfile (the Sentry, a user-space
//     kernel, stands between the workload and the host instead). A gap is
//     reported, never a refusal, whatever the mode: refusing would make
//     profiles.AppArmorRequired refuse every sandboxed container, the most isolated
//     ones. The field is left as the spec has it.
//   - mode off: no profile is set; a gap says the policy disabled it.
//   - host without AppArmor: required refuses; if-available reports a gap.
//     A profile the spec names is left alone (runc then fails to apply it,
//     which is fail-closed and the spec's own doing).
//   - otherwise: the profile's AppArmor profile, unless the spec names a
//     specific one of its own (a workload-specific profile is kept);
//     "unconfined" or none is replaced.
func applyAppArmor(p *specs.Process, cfg *Config, r *Report) error {
	want := cfg.Profile.AppArmor.Profile
	switch {
	case cfg.Runtime == profiles.RuntimeGVisor:
		r.gap(RuleAppArmor, "not enforced: gVisor ignores AppArmor")
		return nil
	case cfg.AppArmorMode == profiles.AppArmorOff:
		r.gap(RuleAppArmor, "not enforced: disabled by policy (apparmor = \"off\")")
		return nil
	case !cfg.Host.AppArmor:
		if cfg.AppArmorMode == profiles.AppArmorRequired {
			return refuse(RuleAppArmor, "process.apparmorProfile", "the host has no AppArmor and the node policy requires it")
		}
		r.gap(RuleAppArmor, "not enforced: host has no AppArmor")
		return nil
	case want == "":
		return nil
	case p.ApparmorProfile != "" && p.ApparmorProfile != apparmorUnconfined:
		return nil
	}
	r.change(RuleAppArmor, "process.apparmorProfile", p.ApparmorProfile, want)
	p.ApparmorProfile = want
	return nil
}

func checkAppArmor(p *specs.Process, cfg *Config) error {
	if cfg.Runtime == profiles.RuntimeGVisor || cfg.AppArmorMode == profiles.AppArmorOff || cfg.Profile.AppArmor.Profile == "" {
		return nil
	}
	if !cfg.Host.AppArmor {
		if cfg.AppArmorMode == profiles.AppArmorRequired {
			return refuse(RuleAppArmor, "process.apparmorProfile", "the host has no AppArmor and the node policy requires it")
		}
		return nil
	}
	if p.ApparmorProfile == "" || p.ApparmorProfile == apparmorUnconfined {
		return refuse(RuleAppArmor, "process.apparmorProfile", "is %q: profile %s confines the process with %q", p.ApparmorProfile, cfg.Profile.Name, cfg.Profile.AppArmor.Profile)
	}
	return nil
}
