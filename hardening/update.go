package hardening

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// HardenUpdate returns a hardened copy of r, the resources of a task
// update (containerd's Update, which runc applies with `runc update -r`);
// r is never mutated. An update is another way to lift what Harden set:
// runc update writes pids.limit whatever it is (<= 0 meaning unlimited)
// and every unified entry. A pids limit above the profile's, or
// unlimited, is lowered to it; a unified pids.max beyond it is removed;
// an update that grants every device is refused under DenyPrivileged
// (runc update skips devices today, but nothing says it always will).
// A missing pids limit stays missing: runc then leaves the current one.
func HardenUpdate(r *specs.LinuxResources, cfg Config) (*specs.LinuxResources, *Report, error) {
	if err := checkConfig(&cfg); err != nil {
		return nil, nil, err
	}
	if r == nil {
		return nil, nil, refuse(RuleSpec, "resources", "malformed update: no resources")
	}
	prof := cfg.Profile
	out := deepCopy(r)
	rep := &Report{Profile: prof.Name, Backend: cfg.Backend, Changes: []Change{}}
	if err := checkDevices(out.Devices, prof, "resources.devices"); err != nil {
		return nil, nil, err
	}
	if prof.Pids.Limit > 0 {
		hardenPids(out, prof.Pids.Limit, false, "resources.", rep)
		if err := checkPidsResources(out, prof, "resources."); err != nil {
			return nil, nil, fmt.Errorf("failed to validate hardened update: %w", err)
		}
	}
	return out, rep, nil
}
