// Package resolve decides which hardening profile and which runtime (runc
// or gVisor) a workload gets, from the node policy, the workload's
// annotations and labels, and its image's labels.
//
// Who may ask for what:
//   - the node policy sets the default profile, the minimum and the routes;
//   - a matching route's profile and an image label's profile (written by
//     whoever builds the image: an image says what it needs, never what it
//     may escape) are floors;
//   - an annotation (written by whoever writes the pod) may raise the
//     profile above any floor, and may pick one below the policy's default
//     (never below the minimum) only where no route or image label set a
//     floor; it may pick the runtime.
//
// gVisor is the stricter runtime: any of the annotation, the matching route
// or the profile asking for it wins, and an annotation cannot take it away.
package resolve

import (
	"fmt"
	"slices"
	"strings"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
)

// Annotation and label keys.
const (
	// AnnotationProfile picks a profile at or above the node's minimum.
	AnnotationProfile = "hardened.dev/profile"
	// AnnotationRuntime picks the runtime: "runc" or "gvisor".
	AnnotationRuntime = "hardened.dev/runtime"
	// LabelProfile, an image label, asks for a stricter profile.
	LabelProfile = "hardened.dev/profile"
)

// Sources named in a Decision and in messages.
const (
	SourceDefaultProfile   = "policy default_profile"
	SourceDefaultRuntime   = "default"
	SourceAnnotationPrefix = "annotation "
	SourceImageLabelPrefix = "image label "
)

// ErrRefused is wrapped by every refusal (a *hardening.RefusalError of
// rule "profile" or "runtime", naming the source that asked): the workload
// asks for something the node does not allow. (An error that does not wrap
// it is a policy or profile configuration problem.)
var ErrRefused = hardening.ErrRefused

func refusef(rule, source string, cause error, format string, args ...any) error {
	return &hardening.RefusalError{Rule: rule, Field: source, Reason: fmt.Sprintf(format, args...), Err: cause}
}

// Inputs are what the workload carries.
type Inputs struct {
	// Annotations of the container (and of the pod, where containerd's
	// pod_annotations passes them on).
	Annotations map[string]string
	// ImageLabels are the image config's labels.
	ImageLabels map[string]string
	// Labels are the container's and the pod's labels.
	Labels map[string]string
	// NamespaceLabels are the labels of the container's containerd
	// namespace: set by the node's operator (a containerd API client), not
	// by the workload.
	NamespaceLabels map[string]string
}

// Namespace labels the operator sets on a containerd namespace (ctr
// namespaces label NS KEY=VALUE) for every container in it, under a
// matching route's setting and over the policy's.
const (
	// NamespaceAuditProfile names the profile audited alongside the
	// enforced one (the policy's audit_profile).
	NamespaceAuditProfile = "hardened.dev/audit-profile"
	// NamespaceSeccompNotify is seccomp_notify: off, report or learn.
	NamespaceSeccompNotify = "hardened.dev/seccomp-notify"
)

// Decision is the outcome: the profile and runtime, and who chose them.
type Decision struct {
	// Profile is a copy of the chosen profile.
	Profile *profiles.Profile
	// ProfileSource says who chose it ("policy default_profile",
	// "policy route #2", "annotation hardened.dev/profile",
	// "image label hardened.dev/profile").
	ProfileSource string
	// Runtime is profiles.RuntimeRunc or profiles.RuntimeGVisor.
	Runtime profiles.Runtime
	// AuditProfile is a copy of a stricter profile audited alongside
	// Profile (the policy's or the route's audit_profile), or nil;
	// AuditProfileSource says whose.
	AuditProfile       *profiles.Profile
	AuditProfileSource string
	// SeccompNotify is what the shim does with seccomp denials: the
	// matching route's seccomp_notify, else the policy's.
	SeccompNotify policy.SeccompNotify
	// Scratch are the scratch directories the operator declares for the
	// workload: the policy's and the matching route's.
	Scratch []profiles.Scratch
	// RuntimeSource says who chose it ("default",
	// "annotation hardened.dev/runtime", "policy route #1",
	// `profile "strict" (policy strict_runtime)`).
	RuntimeSource string
	// Notes say what was asked for and not done, and why.
	Notes []string
}

// Resolve applies the rules in order:
//  1. the profile starts as the policy's default_profile;
//  2. the first route whose annotations and labels all match may set the
//     runtime and the profile, which is then a floor;
//  3. the hardened.dev/profile image label is a floor too, and taken if
//     stricter (unknown: refused);
//  4. the hardened.dev/profile annotation may pick any known profile at or
//     above the minimum and every floor (unknown, below the minimum or
//     below a floor: refused);
//  5. a result below the minimum is refused;
//  6. the runtime is gVisor if the hardened.dev/runtime annotation, the
//     route, or the profile (Runtime "gvisor" with strict_runtime "gvisor")
//     asks for it, else runc; an annotation asking for runc against a route
//     or profile requiring gVisor is refused, and so is a runtime the
//     policy does not configure.
//
// A nil policy is policy.Default(); a nil set is profiles.Builtin().
func Resolve(p *policy.Policy, set *profiles.Set, in Inputs) (*Decision, error) {
	if p == nil {
		p = policy.Default()
	}
	if set == nil {
		set = profiles.Builtin()
	}
	r := &resolver{p: p, set: set, in: in, d: &Decision{}}
	if err := r.profile(); err != nil {
		return nil, err
	}
	if err := r.runtime(); err != nil {
		return nil, err
	}
	if err := r.audit(); err != nil {
		return nil, err
	}
	if err := r.seccompNotify(); err != nil {
		return nil, err
	}
	r.d.Scratch = slices.Clone(r.p.Scratch)
	if r.route != nil {
		r.d.Scratch = append(r.d.Scratch, r.route.Scratch...)
	}
	return r.d, nil
}

// audit picks the profile audited alongside the enforced one: the matching
// route's audit_profile, else the policy's, when it is stricter than the
// enforced profile (else there is nothing to audit, and a note says so).
func (r *resolver) audit() error {
	name, src := r.p.AuditProfile, "policy audit_profile"
	if v, ok := r.in.NamespaceLabels[NamespaceAuditProfile]; ok {
		name, src = v, "namespace label "+NamespaceAuditProfile
	}
	if r.route != nil && r.route.AuditProfile != "" {
		name, src = r.route.AuditProfile, r.routeSource+" audit_profile"
	}
	if name == "" {
		return nil
	}
	prof, err := r.set.Get(name)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", policy.ErrInvalidPolicy, src, err)
	}
	if r.cmp(name, r.d.Profile.Name) <= 0 {
		r.note("%s %s is not stricter than %s: nothing to audit", src, name, r.d.Profile.Name)
		return nil
	}
	r.d.AuditProfile, r.d.AuditProfileSource = prof, src
	return nil
}

// seccompNotify picks seccomp_notify: the matching route's, else the
// namespace label's, else the policy's.
func (r *resolver) seccompNotify() error {
	r.d.SeccompNotify = r.p.SeccompNotify
	if v, ok := r.in.NamespaceLabels[NamespaceSeccompNotify]; ok {
		if n := policy.SeccompNotify(v); !n.Valid() {
			return fmt.Errorf("%w: namespace label %s=%q is not one of %q, %q, %q", policy.ErrInvalidPolicy, NamespaceSeccompNotify, v,
				policy.SeccompNotifyOff, policy.SeccompNotifyReport, policy.SeccompNotifyLearn)
		}
		r.d.SeccompNotify = policy.SeccompNotify(v)
	}
	if r.route != nil && r.route.SeccompNotify != "" {
		r.d.SeccompNotify = r.route.SeccompNotify
	}
	return nil
}

type resolver struct {
	p   *policy.Policy
	set *profiles.Set
	in  Inputs
	d   *Decision

	name        string        // current profile
	route       *policy.Route // the matching route, if any
	routeSource string
}

func (r *resolver) profile() error {
	if _, err := r.set.Get(r.p.MinimumProfile); err != nil {
		return fmt.Errorf("%w: minimum_profile: %w", policy.ErrInvalidPolicy, err)
	}
	if _, err := r.set.Get(r.p.DefaultProfile); err != nil {
		return fmt.Errorf("%w: default_profile: %w", policy.ErrInvalidPolicy, err)
	}
	r.name, r.d.ProfileSource = r.p.DefaultProfile, SourceDefaultProfile
	// floor is the profile a route or an image label set: nothing the pod
	// author writes goes below it.
	var floor, floorSource string
	raise := func(name, src string) {
		if floor == "" || r.cmp(name, floor) > 0 {
			floor, floorSource = name, src
		}
	}

	for i := range r.p.Routes {
		if matches(&r.p.Routes[i], r.in) {
			r.route = &r.p.Routes[i]
			r.routeSource = fmt.Sprintf("policy route #%d", i+1)
			break
		}
	}
	if r.route != nil && r.route.Profile != "" {
		if _, err := r.set.Get(r.route.Profile); err != nil {
			return fmt.Errorf("%w: %s profile: %w", policy.ErrInvalidPolicy, r.routeSource, err)
		}
		r.name, r.d.ProfileSource = r.route.Profile, r.routeSource
		raise(r.route.Profile, r.routeSource)
	}

	label, hasLabel := r.in.ImageLabels[LabelProfile]
	if hasLabel {
		src := SourceImageLabelPrefix + LabelProfile
		if !r.set.Has(label) {
			return refusef(hardening.RuleProfile, fmt.Sprintf("%s=%q", src, label), profiles.ErrUnknownProfile,
				"names no known profile (known: %s)", strings.Join(r.set.Names(), ", "))
		}
		raise(label, src)
		if r.cmp(label, r.name) > 0 {
			r.name, r.d.ProfileSource = label, src
		}
	}

	if v, ok := r.in.Annotations[AnnotationProfile]; ok {
		src := SourceAnnotationPrefix + AnnotationProfile
		switch {
		case !r.set.Has(v):
			return refusef(hardening.RuleProfile, fmt.Sprintf("%s=%q", src, v), profiles.ErrUnknownProfile,
				"names no known profile (known: %s)", strings.Join(r.set.Names(), ", "))
		case r.cmp(v, r.p.MinimumProfile) < 0:
			return refusef(hardening.RuleProfile, fmt.Sprintf("%s=%q", src, v), nil, "is below the node's minimum profile %q", r.p.MinimumProfile)
		case floor != "" && r.cmp(v, floor) < 0:
			// A route's or an image's profile is a floor: the pod may
			// only raise it.
			return refusef(hardening.RuleProfile, fmt.Sprintf("%s=%q", src, v), nil, "is below profile %q, which %s sets as the floor: an annotation may only raise it", floor, floorSource)
		}
		r.name, r.d.ProfileSource = v, src
	}

	if hasLabel && label != r.name {
		if r.cmp(label, r.name) < 0 {
			r.note("image label asks for %s, less strict than %s (from %s): ignored", label, r.name, r.d.ProfileSource)
		} else {
			r.note("image label asks for %s, no stricter than %s (from %s): ignored", label, r.name, r.d.ProfileSource)
		}
	}

	if r.cmp(r.name, r.p.MinimumProfile) < 0 {
		return refusef(hardening.RuleProfile, r.d.ProfileSource, nil, "profile %q is below the node's minimum profile %q",
			r.name, r.p.MinimumProfile)
	}
	prof, err := r.set.Get(r.name)
	if err != nil {
		return err
	}
	r.d.Profile = prof
	return nil
}

// cmp orders two known profiles by strictness (see profiles.Set.Compare).
func (r *resolver) cmp(a, b string) int {
	c, _ := r.set.Compare(a, b)
	return c
}

func (r *resolver) runtime() error {
	// Who asks for gVisor, and who asks for runc.
	var gvisor, runc []string
	annSrc := ""
	if a, ok := r.in.Annotations[AnnotationRuntime]; ok {
		v := profiles.Runtime(a)
		annSrc = fmt.Sprintf("%s%s=%q", SourceAnnotationPrefix, AnnotationRuntime, v)
		if !v.Valid() {
			return refusef(hardening.RuleRuntime, annSrc, nil, "is not one of %q, %q", profiles.RuntimeRunc, profiles.RuntimeGVisor)
		}
		if _, ok := r.p.Runtimes[v]; !ok {
			return refusef(hardening.RuleRuntime, annSrc, nil, "asks for a runtime this node does not configure (configured: %s)",
				r.p.RuntimeList())
		}
		if v == profiles.RuntimeGVisor {
			gvisor = append(gvisor, SourceAnnotationPrefix+AnnotationRuntime)
		} else {
			runc = append(runc, annSrc)
		}
	}
	var required []string // sources other than the annotation requiring gVisor
	if r.route != nil {
		switch r.route.Runtime {
		case profiles.RuntimeGVisor:
			gvisor = append(gvisor, r.routeSource)
			required = append(required, r.routeSource)
		case profiles.RuntimeRunc:
			runc = append(runc, r.routeSource)
		}
	}
	if r.d.Profile.Runtime == profiles.RuntimeGVisor {
		src := fmt.Sprintf("profile %q (policy strict_runtime)", r.d.Profile.Name)
		if r.p.StrictRuntime == profiles.RuntimeGVisor {
			gvisor = append(gvisor, src)
			required = append(required, src)
		} else {
			r.note("profile %s prefers gvisor; policy strict_runtime is %q: runc", r.d.Profile.Name, r.p.StrictRuntime)
		}
	}

	if len(gvisor) == 0 {
		r.d.Runtime, r.d.RuntimeSource = profiles.RuntimeRunc, SourceDefaultRuntime
		if len(runc) > 0 {
			r.d.RuntimeSource = runcSource(runc[0])
		}
		return nil
	}
	if annSrc != "" && len(required) > 0 && profiles.Runtime(r.in.Annotations[AnnotationRuntime]) == profiles.RuntimeRunc {
		verb := "requires"
		if len(required) > 1 {
			verb = "require"
		}
		return refusef(hardening.RuleRuntime, annSrc, nil, "conflicts with %s, which %s gvisor", strings.Join(required, " and "), verb)
	}
	if _, ok := r.p.Runtimes[profiles.RuntimeGVisor]; !ok {
		return refusef(hardening.RuleRuntime, "policy runtimes", nil, "gvisor is required by %s but this node does not configure it", strings.Join(gvisor, " and "))
	}
	r.d.Runtime, r.d.RuntimeSource = profiles.RuntimeGVisor, gvisor[0]
	for _, s := range runc {
		r.note("%s asks for runc; %s requires gvisor, the stricter runtime: gvisor", s, gvisor[0])
	}
	return nil
}

// runcSource turns `annotation hardened.dev/runtime="runc"` into the plain
// source name; a route stays as it is.
func runcSource(s string) string {
	if strings.HasPrefix(s, SourceAnnotationPrefix) {
		return SourceAnnotationPrefix + AnnotationRuntime
	}
	return s
}

func (r *resolver) note(format string, args ...any) {
	r.d.Notes = append(r.d.Notes, fmt.Sprintf(format, args...))
}

// matches reports whether every annotation and label of the route's match
// has the same value in the inputs.
func matches(rt *policy.Route, in Inputs) bool {
	for k, v := range rt.Match.Annotations {
		if got, ok := in.Annotations[k]; !ok || got != v {
			return false
		}
	}
	for k, v := range rt.Match.Labels {
		if got, ok := in.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}
