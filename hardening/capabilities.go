package hardening

import (
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// capSet names one capability set of a process, for field names.
type capSet struct {
	name string
	get  func(*specs.LinuxCapabilities) *[]string
}

var capSets = []capSet{
	{"bounding", func(c *specs.LinuxCapabilities) *[]string { return &c.Bounding }},
	{"effective", func(c *specs.LinuxCapabilities) *[]string { return &c.Effective }},
	{"permitted", func(c *specs.LinuxCapabilities) *[]string { return &c.Permitted }},
	{"inheritable", func(c *specs.LinuxCapabilities) *[]string { return &c.Inheritable }},
	{"ambient", func(c *specs.LinuxCapabilities) *[]string { return &c.Ambient }},
}

// applyCapabilities intersects every capability set of p with the
// profile's ceiling and, when limit is not nil (an exec'd process), with
// the same set of limit (the container's init process). Ambient
// capabilities are cleared unless the profile keeps them.
//
// Capabilities are only ever removed. A name the spec lists that is not a
// capability the profile allows, including a misspelt or unknown one, is
// dropped. Duplicates are folded.
//
// A nil process.capabilities does NOT mean "no capabilities" to runc: it
// skips the capability setup entirely (libcontainer/capabilities.New
// returns an empty Caps whose Apply* are no-ops), so the process keeps every
// capability runc itself has, which for root is the full set. The engine
// therefore turns nil into an explicit, empty set: no capability at all,
// which is what a spec without capabilities appears to ask for.
func applyCapabilities(p *specs.Process, limit *specs.LinuxCapabilities, prof *profiles.Profile, r *Report) {
	if p.Capabilities == nil {
		p.Capabilities = &specs.LinuxCapabilities{}
		r.change(RuleCapabilities, "process.capabilities", "nil (runc keeps all of its own capabilities)", "{} (none)")
	}
	allowed := make(map[string]bool, len(prof.Capabilities.Allowed))
	for _, c := range prof.Capabilities.Allowed {
		allowed[c] = true
	}
	for _, set := range capSets {
		cur := set.get(p.Capabilities)
		var ceiling map[string]bool
		if limit != nil {
			l := *set.get(limit)
			ceiling = make(map[string]bool, len(l))
			for _, c := range l {
				ceiling[c] = true
			}
		}
		keepAmbient := set.name != "ambient" || prof.Capabilities.Ambient
		kept := filterCaps(*cur, func(c string) bool {
			return keepAmbient && allowed[c] && (ceiling == nil || ceiling[c])
		})
		if len(kept) != len(*cur) {
			r.change(RuleCapabilities, "process.capabilities."+set.name, capList(*cur), capList(kept))
			*cur = kept
		}
	}
}

func capList(caps []string) string {
	if len(caps) == 0 {
		return "(none)"
	}
	return strings.Join(caps, ",")
}

// filterCaps returns the capabilities of caps that keep accepts, in their
// order, without duplicates. It returns caps itself (not a copy) when
// nothing is removed, and nil when nothing is left.
func filterCaps(caps []string, keep func(string) bool) []string {
	seen := make(map[string]bool, len(caps))
	n := 0
	for _, c := range caps {
		if !keep(c) || seen[c] {
			break
		}
		seen[c] = true
		n++
	}
	if n == len(caps) {
		return caps
	}
	var out []string
	clear(seen)
	for _, c := range caps {
		if keep(c) && !seen[c] {
			seen[c] = true
			out = append(out, c)
		}
	}
	return out
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// checkCapabilities checks that every set of c is within the profile's
// ceiling (and ambient is empty unless the profile keeps it).
func checkCapabilities(c *specs.LinuxCapabilities, prof *profiles.Profile) error {
	if c == nil {
		return refuse(RuleCapabilities, "process.capabilities", "is nil: runc would leave the process every capability it has")
	}
	for _, set := range capSets {
		for _, cap := range *set.get(c) {
			if set.name == "ambient" && !prof.Capabilities.Ambient {
				return refuse(RuleCapabilities, "process.capabilities.ambient", "holds %s: profile %s keeps no ambient capabilities", cap, prof.Name)
			}
			if indexOf(prof.Capabilities.Allowed, cap) < 0 {
				return refuse(RuleCapabilities, "process.capabilities."+set.name, "holds %s, beyond the ceiling of profile %s", cap, prof.Name)
			}
		}
	}
	return nil
}
