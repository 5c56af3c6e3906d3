package hardening

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

// Devices: which host devices a container may open.
//
// A privileged spec (containerd's CRI: oci.WithHostDevices and
// oci.WithAllDevicesAllowed) carries the device cgroup rule "a *:* rwm" and
// a linux.devices node for every device of the host: on this project's test
// node, 108 of them, /dev/vda (the host's disk) and /dev/kmsg among them.
// With them a container reads and writes the host's filesystems under
// every other protection. What a rule list grants is worked out the way runc
// does (opencontainers/cgroups devices emulator, which its cgroup v2 eBPF
// filter and its cgroup v1 writes share), not from the literal shape:
//   - an allow rule of type "a" (or no type) resets the list to "allow
//     everything", whatever its numbers and access ("a 1:3 r" too);
//   - a missing major or minor (or -1) is a wildcard: "b *:* rwm" with
//     "c *:* rwm" grants every device as surely as "a";
//   - runc appends its own rules to every list: mknod ("m") of every
//     device, and rwm on /dev/null, zero, full, random, urandom, tty, ptmx,
//     the ptys and /dev/net/tun. Mknod alone opens nothing.
//
// A rule granting read or write on any device outside containerd's default
// set (and the profile's devices.allowed), or on a whole class of them, is
// refused under namespaces.deny_privileged. Elsewhere the container is
// de-privileged instead: such rules are removed, and where one granted
// every device the list becomes containerd's default allowlist (deny all,
// then its standard devices). linux.devices nodes (runc creates them in
// the container's /dev) are judged by their type and numbers, never their
// path: one outside the same set is refused, or removed.

func devRule(typ string, major int64, minor *int64, access string) specs.LinuxDeviceCgroup {
	return specs.LinuxDeviceCgroup{Allow: true, Type: typ, Major: &major, Minor: minor, Access: access}
}

func minorOf(v int64) *int64 { return &v }

// containerdDefaultDevices is containerd v2.4.2's default device allowlist
// (pkg/oci WithDefaultUnixDevices), in its order, after "deny all".
var containerdDefaultDevices = []specs.LinuxDeviceCgroup{
	devRule("c", 1, minorOf(3), "rwm"), // /dev/null
	devRule("c", 1, minorOf(8), "rwm"), // /dev/random
	devRule("c", 1, minorOf(7), "rwm"), // /dev/full
	devRule("c", 5, minorOf(0), "rwm"), // /dev/tty
	devRule("c", 1, minorOf(5), "rwm"), // /dev/zero
	devRule("c", 1, minorOf(9), "rwm"), // /dev/urandom
	devRule("c", 5, minorOf(1), "rwm"), // /dev/console
	devRule("c", 136, nil, "rwm"),      // /dev/pts/*
	devRule("c", 5, minorOf(2), "rwm"), // /dev/ptmx
}

// runcDefaultDevices is what runc v1.5.2 appends to every container's
// rules (libcontainer/specconv AllowedDevices): whatever the spec says,
// these are granted.
var runcDefaultDevices = []specs.LinuxDeviceCgroup{
	{Allow: true, Type: "c", Access: "m"}, // mknod of any device
	{Allow: true, Type: "b", Access: "m"},
	devRule("c", 1, minorOf(3), "rwm"),    // /dev/null
	devRule("c", 1, minorOf(8), "rwm"),    // /dev/random
	devRule("c", 1, minorOf(7), "rwm"),    // /dev/full
	devRule("c", 5, minorOf(0), "rwm"),    // /dev/tty
	devRule("c", 1, minorOf(5), "rwm"),    // /dev/zero
	devRule("c", 1, minorOf(9), "rwm"),    // /dev/urandom
	devRule("c", 136, nil, "rwm"),         // /dev/pts/*
	devRule("c", 5, minorOf(2), "rwm"),    // /dev/ptmx
	devRule("c", 10, minorOf(200), "rwm"), // /dev/net/tun
}

var denyAllDevices = specs.LinuxDeviceCgroup{Allow: false, Access: "rwm"}

// devicePolicy is the set of devices a container may open: containerd's
// and runc's defaults, and the profile's devices.allowed.
type devicePolicy struct {
	prof *profiles.Profile
}

func newDevicePolicy(prof *profiles.Profile) devicePolicy { return devicePolicy{prof: prof} }

// devNum is a rule's major or minor: -1 (any) when missing or negative.
func devNum(n *int64) int64 {
	if n == nil || *n < 0 {
		return -1
	}
	return *n
}

// covers reports whether the policy allows every device typ major:minor
// names (-1: any).
func (p devicePolicy) covers(typ byte, major, minor int64) bool {
	if major < 0 {
		return false
	}
	match := func(t byte, ma, mi int64) bool {
		return t == typ && ma == major && (mi < 0 || mi == minor && minor >= 0)
	}
	for _, list := range [][]specs.LinuxDeviceCgroup{containerdDefaultDevices, runcDefaultDevices} {
		for _, d := range list {
			if strings.ContainsAny(d.Access, "rw") && match(d.Type[0], devNum(d.Major), devNum(d.Minor)) {
				return true
			}
		}
	}
	for _, e := range p.prof.Devices.Allowed {
		// The loader validated the list; an entry it did not (a profile
		// built in code) that does not parse allows nothing.
		if d, err := profiles.ParseDevice(e); err == nil && match(d.Type, d.Major, d.Minor) {
			return true
		}
	}
	return false
}

func devString(typ string, major, minor int64) string {
	n := func(v int64) string {
		if v < 0 {
			return "*"
		}
		return strconv.FormatInt(v, 10)
	}
	return typ + " " + n(major) + ":" + n(minor)
}

func ruleString(d specs.LinuxDeviceCgroup) string {
	typ := d.Type
	if typ == "" {
		typ = "a"
	}
	verb := "allow"
	if !d.Allow {
		verb = "deny"
	}
	return verb + " " + devString(typ, devNum(d.Major), devNum(d.Minor)) + " " + d.Access
}

// ruleProblem returns what a device cgroup rule grants beyond the policy,
// or "". Deny rules grant nothing; mknod alone opens nothing (and runc
// allows it for every device anyway).
func (p devicePolicy) ruleProblem(d specs.LinuxDeviceCgroup) string {
	if !d.Allow {
		return ""
	}
	major, minor := devNum(d.Major), devNum(d.Minor)
	switch d.Type {
	case "", "a":
		return fmt.Sprintf("%q allows every device (an allow rule of type a resets the list to allow-all, whatever its numbers and access)", ruleString(d))
	case "c", "b":
	default:
		return fmt.Sprintf("%q has type %q, which is not a device cgroup type", ruleString(d), d.Type)
	}
	if !strings.ContainsAny(d.Access, "rw") || p.covers(d.Type[0], major, minor) {
		return ""
	}
	class := map[string]string{"c": "character", "b": "block"}[d.Type]
	switch {
	case major < 0:
		return fmt.Sprintf("%q allows every %s device", ruleString(d), class)
	case minor < 0:
		return fmt.Sprintf("%q allows every %s device of major %d", ruleString(d), class, major)
	case d.Type == "b":
		return fmt.Sprintf("%q allows a block device (a disk: the host's filesystems), beyond containerd's default devices and profile %s's devices.allowed", ruleString(d), p.prof.Name)
	}
	return fmt.Sprintf("%q allows a device beyond containerd's default devices and profile %s's devices.allowed", ruleString(d), p.prof.Name)
}

// nodeProblem returns why a linux.devices node is beyond the policy, or "".
func (p devicePolicy) nodeProblem(d specs.LinuxDevice) string {
	var typ byte
	switch d.Type {
	case "c", "u":
		typ = 'c'
	case "b":
		typ = 'b'
	case "p":
		return "" // a FIFO: no device behind it
	default:
		return fmt.Sprintf("%s has type %q, which is not a device type", d.Path, d.Type)
	}
	if d.Major >= 0 && d.Minor >= 0 && p.covers(typ, d.Major, d.Minor) {
		return ""
	}
	what := "a device"
	if typ == 'b' {
		what = "a block device (a disk: the host's filesystems)"
	}
	return fmt.Sprintf("%s (%s) is %s beyond containerd's default devices and profile %s's devices.allowed", d.Path, devString(string(typ), d.Major, d.Minor), what, p.prof.Name)
}

// checkDevices refuses, under namespaces.deny_privileged, a spec whose
// device rules or nodes reach beyond the policy.
func checkDevices(s *specs.Spec, prof *profiles.Profile) error {
	if !prof.Namespaces.DenyPrivileged || s.Linux == nil {
		return nil
	}
	return checkDeviceGrants(s.Linux, prof, "privileged device access is refused under profile "+prof.Name+" (namespaces.deny_privileged)")
}

// checkDeviceGrants returns a refusal naming the first device rule or node
// of l beyond the policy; why ends the reason.
func checkDeviceGrants(l *specs.Linux, prof *profiles.Profile, why string) error {
	pol := newDevicePolicy(prof)
	if l.Resources != nil {
		if err := checkDeviceRules(l.Resources.Devices, pol, "linux.resources.devices", why); err != nil {
			return err
		}
	}
	for i, d := range l.Devices {
		if p := pol.nodeProblem(d); p != "" {
			return refuse(RuleDevices, fmt.Sprintf("linux.devices[%d]", i), "%s: %s", p, why)
		}
	}
	return nil
}

func checkDeviceRules(rules []specs.LinuxDeviceCgroup, pol devicePolicy, field, why string) error {
	for i, d := range rules {
		if p := pol.ruleProblem(d); p != "" {
			return refuse(RuleDevices, fmt.Sprintf("%s[%d]", field, i), "%s: %s", p, why)
		}
	}
	return nil
}

// applyDevices de-privileges a spec (profiles without deny_privileged; the
// others refused it already): rules granting beyond the policy are removed
// and, where the list ends up allowing every device (its last rule of type
// a allows), it becomes containerd's default allowlist (those of its
// devices the spec granted: never a device the spec did not) followed by
// the spec's later rules within the policy. Rules before the last type-a
// rule are dead (it resets the state) and go too. Removing allow rules
// never grants more: in runc's emulator an allow rule only ever adds, and
// a later deny rule removes at most what it did before.
func applyDevices(l *specs.Linux, prof *profiles.Profile, r *Report) {
	pol := newDevicePolicy(prof)
	if l.Resources != nil && len(l.Resources.Devices) > 0 {
		in := l.Resources.Devices
		var removed []string
		for _, d := range in {
			if pol.ruleProblem(d) != "" {
				removed = append(removed, ruleString(d))
			}
		}
		if len(removed) > 0 {
			// A rule of type a resets the whole state: those before the
			// last one are dead, and it decides the default.
			live, privileged := in, false
			for k := len(in) - 1; k >= 0; k-- {
				if in[k].Type == "" || in[k].Type == "a" {
					live, privileged = in[k:], in[k].Allow
					break
				}
			}
			var out []specs.LinuxDeviceCgroup
			after := "(removed)"
			if privileged {
				granted := emulateDevices(in)
				out = append(out, denyAllDevices)
				for _, d := range containerdDefaultDevices {
					if granted.grants(d) {
						out = append(out, *deepCopy(&d)) // shares no pointer with the table
					}
				}
				live = live[1:]
				after = "deny all, then containerd's default devices"
			}
			for _, d := range live {
				if pol.ruleProblem(d) == "" {
					out = append(out, d)
				}
			}
			if privileged && len(out) > 1+len(containerdDefaultDevices) {
				after += " and the spec's other rules"
			}
			l.Resources.Devices = out
			r.change(RuleDevices, "linux.resources.devices", strings.Join(removed, ", "), after)
		}
	}
	if len(l.Devices) > 0 {
		var kept []specs.LinuxDevice
		var removed []string
		for _, d := range l.Devices {
			if pol.nodeProblem(d) == "" {
				kept = append(kept, d)
			} else {
				removed = append(removed, d.Path)
			}
		}
		if len(removed) > 0 {
			l.Devices = kept
			r.change(RuleDevices, "linux.devices", fmt.Sprintf("%d host device nodes beyond containerd's defaults: %s", len(removed), strings.Join(removed, " ")), "(removed)")
		}
	}
}

// deviceState is what a device cgroup rule list grants, as runc's emulator
// computes it: a default (allow or deny everything) and exceptions to it.
type deviceState struct {
	defaultAllow bool
	exceptions   map[devKey]string // perms, a subset of "rwm"
}

type devKey struct {
	typ          byte  // 'c' or 'b'
	major, minor int64 // -1: any
}

// emulateDevices runs rules, then runc's own appended rules, the way runc's
// emulator does. Where runc would fail (a deny that punches a hole in a
// wildcard allow) the exception is kept: the result may grant more than
// runc would, never less.
func emulateDevices(rules []specs.LinuxDeviceCgroup) deviceState {
	st := deviceState{exceptions: map[devKey]string{}}
	apply := func(d specs.LinuxDeviceCgroup) {
		if d.Type == "" || d.Type == "a" {
			st = deviceState{defaultAllow: d.Allow, exceptions: map[devKey]string{}}
			return
		}
		if d.Type != "c" && d.Type != "b" {
			return // runc refuses the spec
		}
		k := devKey{d.Type[0], devNum(d.Major), devNum(d.Minor)}
		perms := permSet(d.Access)
		if d.Allow == st.defaultAllow {
			// Removes from the exceptions to the default.
			if left := permDiff(st.exceptions[k], perms); left == "" {
				delete(st.exceptions, k)
			} else {
				st.exceptions[k] = left
			}
			return
		}
		st.exceptions[k] = permSet(st.exceptions[k] + perms)
	}
	for _, d := range rules {
		apply(d)
	}
	for _, d := range runcDefaultDevices {
		apply(d)
	}
	return st
}

// grants reports whether the state grants all of rule d's access on all
// of d's devices.
func (st deviceState) grants(d specs.LinuxDeviceCgroup) bool {
	k := devKey{d.Type[0], devNum(d.Major), devNum(d.Minor)}
	want := permSet(d.Access)
	overlaps := func(e devKey) bool {
		return e.typ == k.typ && (e.major < 0 || k.major < 0 || e.major == k.major) && (e.minor < 0 || k.minor < 0 || e.minor == k.minor)
	}
	if st.defaultAllow {
		for e, perms := range st.exceptions {
			if overlaps(e) && permDiff(want, perms) != want {
				return false
			}
		}
		return true
	}
	got := ""
	for e, perms := range st.exceptions {
		if e.typ == k.typ && (e.major < 0 || e.major == k.major && k.major >= 0) && (e.minor < 0 || e.minor == k.minor && k.minor >= 0) {
			got += perms
		}
	}
	return permDiff(want, got) == ""
}

// permSet normalises an access string to the r, w, m it holds, in order.
func permSet(s string) string {
	var b strings.Builder
	for _, c := range "rwm" {
		if strings.ContainsRune(s, c) {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// permDiff returns the perms of a that b lacks.
func permDiff(a, b string) string {
	var out strings.Builder
	for _, c := range permSet(a) {
		if !strings.ContainsRune(b, c) {
			out.WriteRune(c)
		}
	}
	return out.String()
}

// checkDevicesHardened checks a hardened spec: no device rule or node
// beyond the policy, whatever the profile.
func checkDevicesHardened(l *specs.Linux, prof *profiles.Profile) error {
	if l == nil {
		return nil
	}
	return checkDeviceGrants(l, prof, "a hardened spec grants no device beyond its profile's")
}
