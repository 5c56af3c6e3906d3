package policy

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	toml "github.com/pelletier/go-toml/v2"

	"github.com/hardened-dev/hardened/internal/tomlpos"
	"github.com/hardened-dev/hardened/profiles"
)

// maxFileSize bounds a policy file; real ones are a few KiB.
const maxFileSize = 1 << 20

// Load reads and parses the policy file at path (see Parse).
func Load(path string) (*Policy, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, &Error{Source: path, Msg: fmt.Sprintf("failed to read policy: %v", err), Err: err}
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	if err != nil {
		return nil, &Error{Source: path, Msg: fmt.Sprintf("failed to read policy: %v", err), Err: err}
	}
	if len(data) > maxFileSize {
		return nil, &Error{Source: path, Msg: fmt.Sprintf("failed to read policy: larger than %d bytes", maxFileSize)}
	}
	return Parse(data, path)
}

// Parse decodes a policy file over Default(), so that a key the file does
// not name keeps its default, and validates it. Two exceptions to "keeps
// its default": a file with a [runtimes] table lists every runtime of the
// node (a gvisor runtime it leaves out does not exist), and lists
// (routes, allowed_hooks, allow_host_path_prefixes) replace the default's. Unknown keys are errors.
// source names the file in messages. Every error wraps ErrInvalidPolicy.
//
// Parse does not know the profiles: call Check with the profile set.
func Parse(data []byte, source string) (*Policy, error) {
	p := Default()
	p.Runtimes = nil
	idx := tomlpos.Build(data)
	d := toml.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(p); err != nil {
		return nil, decodeError(source, idx, err)
	}
	if err := problemsError(source, tomlpos.CaseMismatches(data, idx, p)); err != nil {
		return nil, err
	}
	if p.Runtimes == nil {
		p.Runtimes = Default().Runtimes
	}
	p.source, p.idx = source, idx
	if err := p.validate(); err != nil {
		return nil, err
	}
	return p, nil
}

// Source returns the source the policy was parsed from ("" for Default()).
func (p *Policy) Source() string { return p.source }

// UsesRuntime reports whether the policy can send a workload to the named
// runtime without an annotation asking for it: runc (the default runtime),
// the strict_runtime (for profiles that prefer gVisor), or a route's.
func (p *Policy) UsesRuntime(name profiles.Runtime) bool {
	if name == profiles.RuntimeRunc || name == p.StrictRuntime {
		return true
	}
	for _, r := range p.Routes {
		if r.Runtime == name {
			return true
		}
	}
	return false
}

// RuntimeNames returns the configured runtimes' names, sorted.
func (p *Policy) RuntimeNames() []profiles.Runtime {
	names := make([]profiles.Runtime, 0, len(p.Runtimes))
	for n := range p.Runtimes {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// decodeError turns a go-toml error into *Error(s) with positions.
func decodeError(source string, idx *tomlpos.Index, err error) error {
	return problemsError(source, tomlpos.DecodeProblems(err, idx))
}

// problemsError is the policy error of problems with their places (nil for
// none).
func problemsError(source string, problems []tomlpos.Problem) error {
	var errs []*Error
	for _, p := range problems {
		errs = append(errs, &Error{Source: source, Line: p.Pos.Line, Column: p.Pos.Column, Msg: p.Msg})
	}
	return join(errs)
}

type checker struct {
	p    *Policy
	errs []*Error
}

// addf records a problem at the string value s of key path (or at the key).
func (c *checker) addf(keyPath, s, format string, args ...any) {
	c.errs = append(c.errs, &Error{Source: c.p.source, Line: c.p.idx.Line(keyPath, s), Msg: fmt.Sprintf(format, args...)})
}

// validate checks the policy's own values, each problem with its line
// (long on purpose: one check per key in the file's order; none depends
// on another).
func (p *Policy) validate() error {
	c := &checker{p: p}
	for _, f := range []struct{ key, val string }{
		{"default_profile", p.DefaultProfile},
		{"minimum_profile", p.MinimumProfile},
	} {
		if f.val == "" {
			c.addf(f.key, f.val, "%s may not be empty", f.key)
		}
	}
	switch p.Mode {
	case ModeEnforce, ModeAudit:
	default:
		c.addf("mode", string(p.Mode), "mode %q is not one of %q, %q", p.Mode, ModeEnforce, ModeAudit)
	}
	switch p.AppArmor {
	case profiles.AppArmorIfAvailable, profiles.AppArmorRequired, profiles.AppArmorOff:
	default:
		c.addf("apparmor", string(p.AppArmor), "apparmor %q is not one of %q, %q, %q",
			p.AppArmor, profiles.AppArmorIfAvailable, profiles.AppArmorRequired, profiles.AppArmorOff)
	}
	if !p.SeccompNotify.Valid() {
		c.addf("seccomp_notify", string(p.SeccompNotify), "seccomp_notify %q is not one of %q, %q, %q",
			p.SeccompNotify, SeccompNotifyOff, SeccompNotifyReport, SeccompNotifyLearn)
	}
	for _, s := range p.Scratch {
		if problem := profiles.CheckScratch(s); problem != "" {
			c.addf("scratch", s.Path, "scratch: %s", problem)
		}
	}
	if p.ProfilesDir != "" && !isCleanAbs(p.ProfilesDir) {
		c.addf("profiles_dir", p.ProfilesDir, "profiles_dir %q must be an absolute, clean path", p.ProfilesDir)
	}
	for _, h := range p.AllowedHooks {
		if !isCleanAbs(h) {
			c.addf("allowed_hooks", h, "allowed hook %q must be an absolute, clean path", h)
		}
	}
	seen := map[string]bool{}
	for _, a := range p.AllowHostPathPrefixes {
		switch err := profiles.CheckHostPathPrefix(a.Prefix); {
		case err != nil:
			c.addf("allow_host_path_prefixes", a.Prefix, "allow_host_path_prefixes: %v", err)
		case seen[a.Prefix]:
			c.addf("allow_host_path_prefixes", a.Prefix, "allow_host_path_prefixes: %q is listed twice", a.Prefix)
		}
		seen[a.Prefix] = true
	}

	for _, name := range p.RuntimeNames() {
		rt := p.Runtimes[name]
		key := "runtimes." + string(name)
		if !name.Valid() {
			c.addf(key, "", "unknown runtime %q (runtimes are %q and %q)", name, profiles.RuntimeRunc, profiles.RuntimeGVisor)
			continue
		}
		switch {
		case rt.Path == "":
			c.addf(key+".path", "", "runtimes.%s.path may not be empty", name)
		case strings.ContainsRune(rt.Path, '/') && !isCleanAbs(rt.Path):
			// A relative path would be resolved against the shim's working
			// directory: the bundle, which the workload's image shapes.
			c.addf(key+".path", rt.Path, "runtimes.%s.path %q must be absolute and clean, or a bare name looked up in PATH", name, rt.Path)
		case strings.ContainsAny(rt.Path, "\x00\n"):
			c.addf(key+".path", rt.Path, "runtimes.%s.path %q holds a control character", name, rt.Path)
		}
		if rt.Root != "" && !isCleanAbs(rt.Root) {
			c.addf(key+".root", rt.Root, "runtimes.%s.root %q must be an absolute, clean path", name, rt.Root)
		}
		for _, a := range rt.Args {
			if a == "" || strings.ContainsRune(a, 0) {
				c.addf(key+".args", a, "runtimes.%s.args holds an empty or NUL-carrying argument", name)
			}
		}
	}
	if _, ok := p.Runtimes[profiles.RuntimeRunc]; !ok {
		c.addf("runtimes", "", "runtimes.runc is required: runc is the default runtime")
	}

	switch {
	case !p.StrictRuntime.Valid():
		c.addf("strict_runtime", string(p.StrictRuntime), "strict_runtime %q is not one of %q, %q", p.StrictRuntime, profiles.RuntimeRunc, profiles.RuntimeGVisor)
	case !p.hasRuntime(p.StrictRuntime):
		c.addf("strict_runtime", string(p.StrictRuntime), "strict_runtime %q is not a configured runtime (configure [runtimes.%s] or set strict_runtime = %q)",
			p.StrictRuntime, p.StrictRuntime, profiles.RuntimeRunc)
	}

	for i, r := range p.Routes {
		key := fmt.Sprintf("routes[%d]", i)
		switch {
		case r.Runtime == "" && r.Profile == "" && r.AuditProfile == "" && r.SeccompNotify == "" && len(r.Scratch) == 0:
			c.addf(key+".match", "", "route #%d sets none of runtime, profile, audit_profile, seccomp_notify, scratch", i+1)
		case r.SeccompNotify != "" && !r.SeccompNotify.Valid():
			c.addf(key+".seccomp_notify", string(r.SeccompNotify), "route #%d: seccomp_notify %q is not one of %q, %q, %q",
				i+1, r.SeccompNotify, SeccompNotifyOff, SeccompNotifyReport, SeccompNotifyLearn)
		case r.Runtime != "" && !p.hasRuntime(r.Runtime):
			c.addf(key+".runtime", string(r.Runtime), "route #%d: runtime %q is not a configured runtime (configured: %s)",
				i+1, r.Runtime, p.RuntimeList())
		}
		for _, s := range r.Scratch {
			if problem := profiles.CheckScratch(s); problem != "" {
				c.addf(key+".scratch", s.Path, "route #%d: scratch: %s", i+1, problem)
			}
		}
		for k := range r.Match.Annotations {
			if k == "" {
				c.addf(key+".match.annotations", "", "route #%d matches an empty annotation key", i+1)
			}
		}
		for k := range r.Match.Labels {
			if k == "" {
				c.addf(key+".match.labels", "", "route #%d matches an empty label key", i+1)
			}
		}
	}
	return join(c.errs)
}

// RuntimeList is the configured runtimes' names, for messages.
func (p *Policy) RuntimeList() string {
	var names []string
	for _, n := range p.RuntimeNames() {
		names = append(names, string(n))
	}
	return strings.Join(names, ", ")
}

func (p *Policy) hasRuntime(name profiles.Runtime) bool {
	if !name.Valid() {
		return false
	}
	_, ok := p.Runtimes[name]
	return ok
}

// Check cross-checks the policy with the profiles it names: the default,
// the minimum and every route's profile must exist, and none may be less
// strict than the minimum. Errors wrap ErrInvalidPolicy (and
// profiles.ErrUnknownProfile for a name the set does not hold).
func (p *Policy) Check(set *profiles.Set) error {
	c := &checker{p: p}
	exists := func(key, name, what string) bool {
		if _, err := set.Get(name); err != nil {
			c.errs = append(c.errs, &Error{Source: p.source, Line: p.idx.Line(key, name),
				Msg: fmt.Sprintf("%s: %v", what, err), Err: err})
			return false
		}
		return true
	}
	minOK := exists("minimum_profile", p.MinimumProfile, "minimum_profile")
	atLeastMin := func(key, name, what string) {
		if !exists(key, name, what) || !minOK {
			return
		}
		if ok, _ := set.AtLeast(name, p.MinimumProfile); !ok {
			c.addf(key, name, "%s %q is less strict than minimum_profile %q", what, name, p.MinimumProfile)
		}
	}
	atLeastMin("default_profile", p.DefaultProfile, "default_profile")
	if p.AuditProfile != "" {
		exists("audit_profile", p.AuditProfile, "audit_profile")
	}
	for i, r := range p.Routes {
		if r.Profile != "" {
			atLeastMin(fmt.Sprintf("routes[%d].profile", i), r.Profile, fmt.Sprintf("route #%d profile", i+1))
		}
		if r.AuditProfile != "" {
			exists(fmt.Sprintf("routes[%d].audit_profile", i), r.AuditProfile, fmt.Sprintf("route #%d audit_profile", i+1))
		}
	}
	return join(c.errs)
}

func isCleanAbs(p string) bool {
	return path.IsAbs(p) && path.Clean(p) == p && !strings.ContainsRune(p, 0)
}
