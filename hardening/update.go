package hardening

import (
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Running is what an update is judged against: the container as it runs.
type Running struct {
	// PidsLimit is the container's current pids limit (nil or <= 0: none).
	PidsLimit *int64
	// RequestedPidsLimit is the limit the container's unhardened spec asked
	// for. CRI's UpdateContainerResources re-sends the pids limit of
	// containerd's stored (unhardened) spec with every resize; such a
	// request is kept at the current limit rather than failing the resize.
	RequestedPidsLimit *int64
}

// HardenUpdate returns a hardened copy of r, the resources of a task update
// (containerd's Update, which runc applies with `runc update -r`); r is
// never mutated. An update is another way to lift what Harden set, so:
//   - the pids limit may go down, never up or away: the ceiling is the
//     container's current limit, else the profile's; a request above it
//     or unlimited (<= 0) is refused, except the CRI re-send of the
//     spec's original limit (see Running), which is kept at the ceiling;
//     a missing pids limit stays missing (runc keeps the current one);
//   - unified entries outside the create-time allowlist (cgroups.go) are
//     refused, and pids.max too (the limit changes through resources.pids);
//   - a device rule granting beyond the profile's devices (an allow-all, a
//     class, a disk) is refused, under every profile.
func HardenUpdate(r *specs.LinuxResources, cur Running, cfg Config) (*specs.LinuxResources, *Report, error) {
	if err := checkConfig(&cfg); err != nil {
		return nil, nil, err
	}
	if r == nil {
		return nil, nil, refuse(RuleSpec, "resources", "malformed update: no resources")
	}
	prof := cfg.Profile
	// runc update ignores device rules today; nothing says it always will.
	// An update cannot be de-privileged like a spec (its rules amend a list
	// it does not see), so it is refused under every profile.
	if err := checkDeviceRules(r.Devices, newDevicePolicy(prof), "resources.devices", "an update may grant no device beyond profile "+prof.Name+"'s"); err != nil {
		return nil, nil, err
	}
	if _, ok := r.Unified[unifiedPidsMax]; ok {
		return nil, nil, refuse(RulePids, "resources.unified."+unifiedPidsMax, "the pids limit can only be changed through resources.pids")
	}
	// The same allowlist as at create: runc writes each key as a file name
	// into the container's cgroup, as root.
	if err := checkUnified(r.Unified, "resources.unified"); err != nil {
		return nil, nil, err
	}

	out := deepCopy(r)
	rep := &Report{Profile: prof.Name, Runtime: cfg.Runtime, Changes: []Change{}}
	if out.Pids == nil || out.Pids.Limit == nil {
		return out, rep, nil
	}
	var ceiling int64
	if cur.PidsLimit != nil && *cur.PidsLimit > 0 {
		ceiling = *cur.PidsLimit
	}
	if l := prof.Pids.Limit; l > 0 && (ceiling == 0 || l < ceiling) {
		ceiling = l
	}
	req := *out.Pids.Limit
	switch {
	case ceiling == 0, req > 0 && req <= ceiling:
		return out, rep, nil
	case cur.RequestedPidsLimit != nil && req == *cur.RequestedPidsLimit:
		out.Pids.Limit = &ceiling
		rep.change(RulePids, "resources.pids.limit", strconv.FormatInt(req, 10), strconv.FormatInt(ceiling, 10)+" (the container's limit; the request re-sends the unhardened spec's)")
		return out, rep, nil
	case req <= 0:
		return nil, nil, refuse(RulePids, "resources.pids.limit", "%d removes the container's limit of %d (profile %s)", req, ceiling, prof.Name)
	default:
		return nil, nil, refuse(RulePids, "resources.pids.limit", "%d is above the container's limit of %d (profile %s)", req, ceiling, prof.Name)
	}
}
