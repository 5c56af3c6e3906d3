package profiles

import (
	"errors"
	"fmt"
	"maps"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/moby/sys/capability"
	seccomp "github.com/seccomp/libseccomp-golang"

	"github.com/hardened-dev/hardened/internal/tomlpos"
)

// SeccompBaseDefault is containerd's default filter, generated for the
// capabilities left after the capability drop.
const SeccompBaseDefault = "default"

var (
	nameRE = regexp.MustCompile(`^[a-z0-9-]+$`)
	// tmpfs size: bytes with an optional k/m/g suffix, or a percentage of
	// RAM. Anything else is refused: the size goes into the mount options,
	// and "64m,exec" must not smuggle another option in.
	sizeRE    = regexp.MustCompile(`^[0-9]+[kKmMgG%]?$`)
	syscallRE = regexp.MustCompile(`^[a-z0-9_]+$`)
)

const maxNameLen = 63

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("name is required")
	case len(name) > maxNameLen:
		return fmt.Errorf("name %q is longer than %d characters", name, maxNameLen)
	case !nameRE.MatchString(name):
		return fmt.Errorf("name %q may hold only a-z, 0-9 and '-'", name)
	}
	return nil
}

var (
	capsOnce  sync.Once
	knownCaps map[string]bool
)

// KnownCapabilities returns the Linux capability names this build knows,
// in the CAP_X form profiles use.
func KnownCapabilities() []string {
	caps := capability.ListKnown()
	names := make([]string, 0, len(caps))
	for _, c := range caps {
		names = append(names, "CAP_"+strings.ToUpper(c.String()))
	}
	return names
}

func isKnownCapability(name string) bool {
	capsOnce.Do(func() {
		knownCaps = map[string]bool{}
		for _, n := range KnownCapabilities() {
			knownCaps[n] = true
		}
	})
	return knownCaps[name]
}

// IsKnownSyscall reports whether libseccomp knows the syscall name on this
// architecture (or as a pseudo-syscall it can resolve for other ABIs).
func IsKnownSyscall(name string) bool {
	if !syscallRE.MatchString(name) {
		return false
	}
	_, err := seccomp.GetSyscallFromName(name)
	return err == nil
}

// validator collects every problem of one profile, each with its line.
type validator struct {
	source string
	idx    *tomlpos.Index
	errs   []*Error
}

func (v *validator) addf(keyPath, value string, format string, args ...any) {
	v.errs = append(v.errs, &Error{File: v.source, Line: v.idx.Line(keyPath, value), Msg: fmt.Sprintf(format, args...)})
}

// validate checks a decoded profile. Lines come from idx (the file's raw
// text); a value inherited from a base was checked with the base. (Long on
// purpose: one check per key in the file's order, each reporting with its
// line; none depends on another.)
func validate(p *Profile, source string, idx *tomlpos.Index) []*Error {
	v := &validator{source: source, idx: idx}
	if err := checkName(p.Name); err != nil {
		v.addf("name", p.Name, "%v", err)
	}
	switch p.Runtime {
	case "", RuntimeRunc, RuntimeGVisor:
	default:
		v.addf("runtime", string(p.Runtime), "runtime %q is not one of \"\", %q, %q", p.Runtime, RuntimeRunc, RuntimeGVisor)
	}

	seen := map[string]bool{}
	for _, c := range p.Capabilities.Allowed {
		switch {
		case !isKnownCapability(c):
			hint := ""
			if up := "CAP_" + strings.TrimPrefix(strings.ToUpper(c), "CAP_"); up != c && isKnownCapability(up) {
				hint = fmt.Sprintf(" (write %q)", up)
			}
			v.addf("capabilities.allowed", c, "unknown capability %q%s", c, hint)
		case seen[c]:
			v.addf("capabilities.allowed", c, "capability %q is listed twice", c)
		}
		seen[c] = true
	}

	scratch := map[string]bool{}
	for i, s := range p.Rootfs.Scratch {
		key := fmt.Sprintf("rootfs.scratch[%d]", i)
		switch problem := CheckScratchPath(s.Path); {
		case problem != "":
			v.addf(key+".path", s.Path, "%s", problem)
		case scratch[s.Path]:
			v.addf(key+".path", s.Path, "scratch path %q is listed twice", s.Path)
		}
		scratch[s.Path] = true
		if s.Size != "" && !sizeRE.MatchString(s.Size) {
			v.addf(key+".size", s.Size, "scratch size %q is not a size (like \"64m\", \"1g\" or \"10%%\")", s.Size)
		}
	}

	if p.Pids.Limit < 0 {
		v.addf("pids.limit", "", "pids limit %d is negative (0 means no limit)", p.Pids.Limit)
	}

	switch p.Seccomp.Base {
	case "", SeccompBaseDefault:
	default:
		v.addf("seccomp.base", p.Seccomp.Base, "seccomp base %q is not one of \"\", %q", p.Seccomp.Base, SeccompBaseDefault)
	}
	seen = map[string]bool{}
	for _, s := range p.Seccomp.Deny {
		switch {
		case !IsKnownSyscall(s):
			v.addf("seccomp.deny", s, "unknown syscall %q", s)
		case seen[s]:
			v.addf("seccomp.deny", s, "syscall %q is listed twice", s)
		}
		seen[s] = true
	}

	allowed := map[string]bool{}
	for _, s := range p.Seccomp.Allow {
		switch {
		case p.Seccomp.Base != SeccompBaseDefault:
			v.addf("seccomp.allow", s, "seccomp allow needs base %q: with base \"\" the spec's own filter decides", SeccompBaseDefault)
		case !IsKnownSyscall(s):
			v.addf("seccomp.allow", s, "unknown syscall %q", s)
		case allowed[s]:
			v.addf("seccomp.allow", s, "syscall %q is listed twice", s)
		case seen[s]:
			v.addf("seccomp.allow", s, "syscall %q is on both seccomp.deny and seccomp.allow", s)
		}
		allowed[s] = true
	}

	switch a := p.AppArmor.Profile; {
	case a == "unconfined":
		v.addf("apparmor.profile", a, "apparmor profile may not be \"unconfined\" (\"\" leaves the spec's own)")
	case strings.IndexFunc(a, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0:
		v.addf("apparmor.profile", a, "apparmor profile %q holds a space or control character", a)
	}

	for _, list := range []struct {
		key   string
		paths []string
	}{{"paths.masked", p.Paths.Masked}, {"paths.read_only", p.Paths.ReadOnly}} {
		for _, s := range list.paths {
			if !isCleanAbs(s) || s == "/" {
				v.addf(list.key, s, "path %q must be absolute, clean and not /", s)
			}
		}
	}

	seen = map[string]bool{}
	for _, d := range p.Mounts.DenyHostPaths {
		switch {
		case !isCleanAbs(d):
			v.addf("mounts.deny_host_paths", d, "host path %q must be absolute and clean", d)
		case seen[d]:
			v.addf("mounts.deny_host_paths", d, "host path %q is listed twice", d)
		}
		seen[d] = true
	}
	seen = map[string]bool{}
	for _, a := range p.Mounts.AllowHostPathPrefixes {
		if err := CheckHostPathPrefix(a); err != nil {
			v.addf("mounts.allow_host_path_prefixes", a, "%v", err)
		} else if seen[a] {
			v.addf("mounts.allow_host_path_prefixes", a, "host path prefix %q is listed twice", a)
		}
		seen[a] = true
	}

	v.checkSysctls(&p.Sysctls)
	v.checkSELinux(&p.SELinux)
	for _, k := range slices.Sorted(maps.Keys(p.Rlimits.Max)) {
		if !IsKnownRlimit(k) {
			v.addf("rlimits.max", "", "rlimits.max: unknown resource limit %q (known: %s)", k, strings.Join(KnownRlimits, ", "))
		}
	}

	seen = map[string]bool{}
	for _, d := range p.Devices.Allowed {
		if _, err := ParseDevice(d); err != nil {
			v.addf("devices.allowed", d, "%v", err)
		} else if seen[d] {
			v.addf("devices.allowed", d, "device %q is listed twice", d)
		}
		seen[d] = true
	}
	return v.errs
}

var (
	sysctlRE      = regexp.MustCompile(`^[a-z0-9_]+(\.[a-z0-9_-]+)*\.?\*?$`)
	selinuxTypeRE = regexp.MustCompile(`^[a-z0-9_]+$`)
)

func (v *validator) checkSysctls(s *Sysctls) {
	seen := map[string]bool{}
	for _, n := range s.Allowed {
		switch {
		case !sysctlRE.MatchString(n) || n == "*":
			v.addf("sysctls.allowed", n, "sysctl %q is not a name (\"net.ipv4.tcp_syncookies\") or a prefix ending in \"*\" (\"net.ipv4.tcp_*\")", n)
		case seen[n]:
			v.addf("sysctls.allowed", n, "sysctl %q is listed twice", n)
		}
		seen[n] = true
	}
	if len(s.Allowed) > 0 && !s.Restrict {
		v.addf("sysctls.allowed", "", "sysctls.allowed has no effect without sysctls.restrict = true")
	}
}

func (v *validator) checkSELinux(s *SELinux) {
	for _, list := range []struct {
		key   string
		types []string
	}{{"selinux.process_types", s.ProcessTypes}, {"selinux.mount_types", s.MountTypes}} {
		seen := map[string]bool{}
		for _, t := range list.types {
			switch {
			case !selinuxTypeRE.MatchString(t):
				v.addf(list.key, t, "SELinux type %q may hold only a-z, 0-9 and '_'", t)
			case seen[t]:
				v.addf(list.key, t, "SELinux type %q is listed twice", t)
			}
			seen[t] = true
		}
	}
}

// KnownRlimits are the resource limits Linux has, as runc names them.
var KnownRlimits = []string{
	"RLIMIT_AS", "RLIMIT_CORE", "RLIMIT_CPU", "RLIMIT_DATA", "RLIMIT_FSIZE",
	"RLIMIT_LOCKS", "RLIMIT_MEMLOCK", "RLIMIT_MSGQUEUE", "RLIMIT_NICE",
	"RLIMIT_NOFILE", "RLIMIT_NPROC", "RLIMIT_RSS", "RLIMIT_RTPRIO",
	"RLIMIT_RTTIME", "RLIMIT_SIGPENDING", "RLIMIT_STACK",
}

// IsKnownRlimit reports whether name is one of KnownRlimits.
func IsKnownRlimit(name string) bool { return slices.Contains(KnownRlimits, name) }

// hostPathPlaceholders are the placeholders a host path prefix may hold.
var hostPathPlaceholders = []string{HostPathPodUID, HostPathSandboxID, HostPathContainerID}

// CheckHostPathPrefix checks a host path prefix (an entry of
// mounts.allow_host_path_prefixes, or of the node policy's
// allow_host_path_prefixes): a clean absolute path other than "/",
// optionally ending in "/", whose elements are names or whole
// placeholders.
func CheckHostPathPrefix(a string) error {
	base := strings.TrimSuffix(a, "/")
	if !isCleanAbs(base) || base == "/" || base == "" {
		return fmt.Errorf("host path prefix %q must be absolute, clean (a trailing \"/\" aside) and not /", a)
	}
	for _, e := range strings.Split(base[1:], "/") {
		if strings.ContainsAny(e, "{}") && !slices.Contains(hostPathPlaceholders, e) {
			return fmt.Errorf("host path prefix %q: element %q: a placeholder (%s) must be a whole path element", a, e, strings.Join(hostPathPlaceholders, ", "))
		}
	}
	return nil
}

// Device is one entry of devices.allowed.
type Device struct {
	// Type is 'c' (character) or 'b' (block).
	Type byte
	// Major and Minor are the device numbers; Minor -1 means any.
	Major, Minor int64
}

// Device numbers: the kernel's dev_t holds a 12-bit major, a 20-bit minor.
const (
	maxMajor = 1<<12 - 1
	maxMinor = 1<<20 - 1
)

// ParseDevice parses an entry of devices.allowed: "c MAJOR:MINOR" or
// "b MAJOR:MINOR", MINOR a number or "*". A wildcard major is refused: it
// is every device of the type, which is what the rule exists to prevent.
func ParseDevice(s string) (Device, error) {
	bad := func(why string) (Device, error) {
		return Device{}, fmt.Errorf("device %q %s (write \"c MAJOR:MINOR\" or \"b MAJOR:MINOR\", MINOR may be \"*\")", s, why)
	}
	typ, nums, ok := strings.Cut(s, " ")
	if !ok || typ != "c" && typ != "b" {
		return bad("has no type c or b")
	}
	maj, min, ok := strings.Cut(nums, ":")
	if !ok {
		return bad("has no MAJOR:MINOR")
	}
	if maj == "*" {
		return bad("has a wildcard major, which would allow every device of the type")
	}
	d := Device{Type: typ[0], Minor: -1}
	var err error
	if d.Major, err = strconv.ParseInt(maj, 10, 64); err != nil || d.Major < 0 || d.Major > maxMajor || maj != strconv.FormatInt(d.Major, 10) {
		return bad("has no valid major number")
	}
	if min != "*" {
		if d.Minor, err = strconv.ParseInt(min, 10, 64); err != nil || d.Minor < 0 || d.Minor > maxMinor || min != strconv.FormatInt(d.Minor, 10) {
			return bad("has no valid minor number")
		}
	}
	return d, nil
}

func isCleanAbs(p string) bool {
	return path.IsAbs(p) && path.Clean(p) == p && !strings.ContainsRune(p, 0)
}
