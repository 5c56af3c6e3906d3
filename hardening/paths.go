package hardening

import (
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// Masked and read-only paths: the kernel interfaces under /proc and /sys
// that are not namespaced and either leak the host (kcore: host memory;
// keys, timer_list, sched_debug, interrupts: host activity, kernel
// addresses; firmware: host firmware tables) or let a process with enough
// privilege reconfigure the host kernel (/proc/sys, sysrq-trigger, irq,
// powercap). These are containerd v2.4.2's defaults (pkg/oci/spec.go,
// populateDefaultUnixSpec; its per-CPU thermal_throttle entries depend on
// the host and are left to containerd). Every profile applies them on top
// of what the spec has, plus the profile's own; a path the spec already
// masks is never unmasked.
var (
	defaultMaskedPaths = []string{
		"/proc/acpi",
		"/proc/asound",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
		"/proc/scsi",
	}
	defaultReadonlyPaths = []string{
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
)

func applyPaths(l *specs.Linux, prof *profiles.Profile, r *Report) {
	l.MaskedPaths = unionPaths(l.MaskedPaths, "linux.maskedPaths", r, defaultMaskedPaths, prof.Paths.Masked)
	l.ReadonlyPaths = unionPaths(l.ReadonlyPaths, "linux.readonlyPaths", r, defaultReadonlyPaths, prof.Paths.ReadOnly)
}

// unionPaths appends to have every path of the lists it lacks, in order.
func unionPaths(have []string, field string, r *Report, lists ...[]string) []string {
	var added []string
	for _, list := range lists {
		for _, p := range list {
			if indexOf(have, p) < 0 {
				have = append(have, p)
				added = append(added, p)
			}
		}
	}
	if len(added) > 0 {
		r.change(RulePaths, field, "", "+"+strings.Join(added, ",+"))
	}
	return have
}

func checkPaths(l *specs.Linux, prof *profiles.Profile) error {
	var masked, readonly []string
	if l != nil {
		masked, readonly = l.MaskedPaths, l.ReadonlyPaths
	}
	for _, p := range append(defaultMaskedPaths[:len(defaultMaskedPaths):len(defaultMaskedPaths)], prof.Paths.Masked...) {
		if indexOf(masked, p) < 0 {
			return refuse(RulePaths, "linux.maskedPaths", "lacks %s", p)
		}
	}
	for _, p := range append(defaultReadonlyPaths[:len(defaultReadonlyPaths):len(defaultReadonlyPaths)], prof.Paths.ReadOnly...) {
		if indexOf(readonly, p) < 0 {
			return refuse(RulePaths, "linux.readonlyPaths", "lacks %s", p)
		}
	}
	return nil
}
