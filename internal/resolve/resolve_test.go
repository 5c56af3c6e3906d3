package resolve

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
)

// testSet is the built-ins plus "web" (rank 15, between baseline and
// hardened) and "hardened-too" (rank 20, as strict as hardened).
func testSet(t *testing.T) *profiles.Set {
	t.Helper()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"web.toml":          "name = \"web\"\nextends = \"hardened\"\nrank = 15\n",
		"hardened-too.toml": "name = \"hardened-too\"\nextends = \"hardened\"\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := profiles.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return set
}

func mustPolicy(t *testing.T, text string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(text), "policy.toml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

const routed = `
minimum_profile = "web"
[runtimes.runc]
path = "runc"
[runtimes.gvisor]
path = "runsc"
[[routes]]
match = { annotations = { "example.com/untrusted" = "true" }, labels = { tier = "edge" } }
runtime = "gvisor"
[[routes]]
match = { labels = { team = "build" } }
profile = "strict"
runtime = "runc"
[[routes]]
match = { labels = { team = "legacy" } }
profile = "baseline"
[[routes]]
match = { labels = { team = "web" } }
profile = "web"
`

const runcOnly = `
strict_runtime = "runc"
[runtimes.runc]
path = "runc"
`

func TestResolve(t *testing.T) {
	set := testSet(t)
	def := policy.Default()
	rt := mustPolicy(t, routed)
	ro := mustPolicy(t, runcOnly)
	ann := func(kv ...string) map[string]string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}

	for _, tc := range []struct {
		name          string
		p             *policy.Policy
		in            Inputs
		profile       string
		profileSource string
		runtime       profiles.Runtime
		runtimeSource string
		notes         []string
		err           string // a refusal
		unknown       bool   // the refusal wraps profiles.ErrUnknownProfile
	}{
		{
			name: "default", p: def,
			profile: "hardened", profileSource: "policy default_profile",
			runtime: "runc", runtimeSource: "default",
		},
		{
			name: "nil policy is the default", p: nil,
			profile: "hardened", profileSource: "policy default_profile",
			runtime: "runc", runtimeSource: "default",
		},
		{
			name: "annotation picks a stricter profile, which prefers gvisor", p: def,
			in:      Inputs{Annotations: ann(AnnotationProfile, "strict")},
			profile: "strict", profileSource: "annotation hardened.dev/profile",
			runtime: "gvisor", runtimeSource: `profile "strict" (policy strict_runtime)`,
		},
		{
			name: "annotation picks a looser profile at the minimum", p: def,
			in:      Inputs{Annotations: ann(AnnotationProfile, "baseline")},
			profile: "baseline", profileSource: "annotation hardened.dev/profile",
			runtime: "runc", runtimeSource: "default",
		},
		{
			name: "annotation below the minimum", p: rt,
			in:  Inputs{Annotations: ann(AnnotationProfile, "baseline")},
			err: `refused by hardening policy: profile: annotation hardened.dev/profile="baseline": is below the node's minimum profile "web"`,
		},
		{
			name: "annotation unknown", p: def,
			in:      Inputs{Annotations: ann(AnnotationProfile, "strictest")},
			err:     `refused by hardening policy: profile: annotation hardened.dev/profile="strictest": names no known profile (known: baseline, web, hardened, hardened-too, restricted, strict)`,
			unknown: true,
		},
		{
			name: "annotation empty", p: def,
			in:      Inputs{Annotations: ann(AnnotationProfile, "")},
			err:     `refused by hardening policy: profile: annotation hardened.dev/profile="": names no known profile (known: baseline, web, hardened, hardened-too, restricted, strict)`,
			unknown: true,
		},
		{
			name: "image label stricter: taken", p: def,
			in:      Inputs{ImageLabels: ann(LabelProfile, "strict")},
			profile: "strict", profileSource: "image label hardened.dev/profile",
			runtime: "gvisor", runtimeSource: `profile "strict" (policy strict_runtime)`,
		},
		{
			name: "image label looser: ignored with a note", p: def,
			in:      Inputs{ImageLabels: ann(LabelProfile, "baseline")},
			profile: "hardened", profileSource: "policy default_profile",
			runtime: "runc", runtimeSource: "default",
			notes: []string{"image label asks for baseline, less strict than hardened (from policy default_profile): ignored"},
		},
		{
			name: "image label as strict: ignored with a note", p: def,
			in:      Inputs{ImageLabels: ann(LabelProfile, "hardened-too")},
			profile: "hardened", profileSource: "policy default_profile",
			runtime: "runc", runtimeSource: "default",
			notes: []string{"image label asks for hardened-too, no stricter than hardened (from policy default_profile): ignored"},
		},
		{
			name: "image label equal: nothing to say", p: def,
			in:      Inputs{ImageLabels: ann(LabelProfile, "hardened")},
			profile: "hardened", profileSource: "policy default_profile",
			runtime: "runc", runtimeSource: "default",
		},
		{
			name: "image label unknown", p: def,
			in:      Inputs{ImageLabels: ann(LabelProfile, "nope")},
			err:     `refused by hardening policy: profile: image label hardened.dev/profile="nope": names no known profile (known: baseline, web, hardened, hardened-too, restricted, strict)`,
			unknown: true,
		},
		{
			name: "image label is a floor a looser annotation cannot go below", p: def,
			in:  Inputs{Annotations: ann(AnnotationProfile, "baseline"), ImageLabels: ann(LabelProfile, "hardened")},
			err: `refused by hardening policy: profile: annotation hardened.dev/profile="baseline": is below profile "hardened", which image label hardened.dev/profile sets as the floor: an annotation may only raise it`,
		},
		{
			name: "an annotation at the image label's floor", p: def,
			in:      Inputs{Annotations: ann(AnnotationProfile, "hardened"), ImageLabels: ann(LabelProfile, "web")},
			profile: "hardened", profileSource: "annotation hardened.dev/profile",
			runtime: "runc", runtimeSource: "default",
			notes: []string{"image label asks for web, less strict than hardened (from annotation hardened.dev/profile): ignored"},
		},
		{
			name: "a route's strict profile is not lowered by an annotation", p: rt,
			in:  Inputs{Labels: ann("team", "build"), Annotations: ann(AnnotationProfile, "hardened")},
			err: `refused by hardening policy: profile: annotation hardened.dev/profile="hardened": is below profile "strict", which policy route #2 sets as the floor: an annotation may only raise it`,
		},
		{
			name: "a route's floor at equal rank", p: rt,
			in:      Inputs{Labels: ann("team", "web"), Annotations: ann(AnnotationProfile, "web")},
			profile: "web", profileSource: "annotation hardened.dev/profile",
			runtime: "runc", runtimeSource: "default",
		},
		{
			name: "without a floor an annotation may go below the default, to the minimum", p: rt,
			in:      Inputs{Annotations: ann(AnnotationProfile, "web")},
			profile: "web", profileSource: "annotation hardened.dev/profile",
			runtime: "runc", runtimeSource: "default",
		},
		{
			name: "image label cannot loosen an annotation", p: def,
			in:      Inputs{Annotations: ann(AnnotationProfile, "strict"), ImageLabels: ann(LabelProfile, "web")},
			profile: "strict", profileSource: "annotation hardened.dev/profile",
			runtime: "gvisor", runtimeSource: `profile "strict" (policy strict_runtime)`,
			notes: []string{"image label asks for web, less strict than strict (from annotation hardened.dev/profile): ignored"},
		},
		{
			name: "image label labels are not pod labels", p: rt,
			in:      Inputs{ImageLabels: ann("team", "build")},
			profile: "hardened", profileSource: "policy default_profile",
			runtime: "runc", runtimeSource: "default",
		},
		{
			name: "route needs all its annotations and labels", p: rt,
			in:      Inputs{Annotations: ann("example.com/untrusted", "true")},
			profile: "hardened", profileSource: "policy default_profile",
			runtime: "runc", runtimeSource: "default",
		},
		{
			name: "route needs equal values", p: rt,
			in:      Inputs{Annotations: ann("example.com/untrusted", "yes"), Labels: ann("tier", "edge")},
			profile: "hardened", profileSource: "policy default_profile",
			runtime: "runc", runtimeSource: "default",
		},
		{
			name: "route sends to gvisor", p: rt,
			in:      Inputs{Annotations: ann("example.com/untrusted", "true", "other", "x"), Labels: ann("tier", "edge", "team", "build")},
			profile: "hardened", profileSource: "policy default_profile",
			runtime: "gvisor", runtimeSource: "policy route #1",
		},
		{
			name: "route sets profile, its runc loses to the profile's gvisor", p: rt,
			in:      Inputs{Labels: ann("team", "build")},
			profile: "strict", profileSource: "policy route #2",
			runtime: "gvisor", runtimeSource: `profile "strict" (policy strict_runtime)`,
			notes: []string{`policy route #2 asks for runc; profile "strict" (policy strict_runtime) requires gvisor, the stricter runtime: gvisor`},
		},
		{
			name: "route profile below the minimum", p: rt,
			in:  Inputs{Labels: ann("team", "legacy")},
			err: `refused by hardening policy: profile: policy route #3: profile "baseline" is below the node's minimum profile "web"`,
		},
		{
			name: "annotation overrides the route profile, within the minimum", p: rt,
			in:      Inputs{Labels: ann("team", "legacy"), Annotations: ann(AnnotationProfile, "web")},
			profile: "web", profileSource: "annotation hardened.dev/profile",
			runtime: "runc", runtimeSource: "default",
		},
		{
			name: "image label stricter than the route profile", p: rt,
			in:      Inputs{Labels: ann("team", "web"), ImageLabels: ann(LabelProfile, "hardened")},
			profile: "hardened", profileSource: "image label hardened.dev/profile",
			runtime: "runc", runtimeSource: "default",
		},
		{
			name: "annotation gvisor", p: def,
			in:      Inputs{Annotations: ann(AnnotationRuntime, "gvisor")},
			profile: "hardened", profileSource: "policy default_profile",
			runtime: "gvisor", runtimeSource: "annotation hardened.dev/runtime",
		},
		{
			name: "annotation runc", p: def,
			in:      Inputs{Annotations: ann(AnnotationRuntime, "runc")},
			profile: "hardened", profileSource: "policy default_profile",
			runtime: "runc", runtimeSource: "annotation hardened.dev/runtime",
		},
		{
			name: "annotation gvisor beats a route's runc", p: rt,
			in:      Inputs{Labels: ann("team", "build"), Annotations: ann(AnnotationRuntime, "gvisor")},
			profile: "strict", profileSource: "policy route #2",
			runtime: "gvisor", runtimeSource: "annotation hardened.dev/runtime",
			notes: []string{"policy route #2 asks for runc; annotation hardened.dev/runtime requires gvisor, the stricter runtime: gvisor"},
		},
		{
			name: "annotation runc against the route's gvisor", p: rt,
			in:  Inputs{Annotations: ann("example.com/untrusted", "true", AnnotationRuntime, "runc"), Labels: ann("tier", "edge")},
			err: `refused by hardening policy: runtime: annotation hardened.dev/runtime="runc": conflicts with policy route #1, which requires gvisor`,
		},
		{
			name: "annotation runc against the profile's gvisor", p: def,
			in:  Inputs{Annotations: ann(AnnotationRuntime, "runc", AnnotationProfile, "strict")},
			err: `refused by hardening policy: runtime: annotation hardened.dev/runtime="runc": conflicts with profile "strict" (policy strict_runtime), which requires gvisor`,
		},
		{
			name: "annotation runc against route and profile", p: rt,
			in: Inputs{
				Annotations: ann("example.com/untrusted", "true", AnnotationRuntime, "runc"),
				Labels:      ann("tier", "edge"),
				ImageLabels: ann(LabelProfile, "strict"),
			},
			err: `refused by hardening policy: runtime: annotation hardened.dev/runtime="runc": conflicts with policy route #1 and profile "strict" (policy strict_runtime), which require gvisor`,
		},
		{
			name: "annotation runtime unknown", p: def,
			in:  Inputs{Annotations: ann(AnnotationRuntime, "kata")},
			err: `refused by hardening policy: runtime: annotation hardened.dev/runtime="kata": is not one of "runc", "gvisor"`,
		},
		{
			name: "annotation runtime not configured", p: ro,
			in:  Inputs{Annotations: ann(AnnotationRuntime, "gvisor")},
			err: `refused by hardening policy: runtime: annotation hardened.dev/runtime="gvisor": asks for a runtime this node does not configure (configured: runc)`,
		},
		{
			name: "strict on a runc-only node", p: ro,
			in:      Inputs{Annotations: ann(AnnotationProfile, "strict")},
			profile: "strict", profileSource: "annotation hardened.dev/profile",
			runtime: "runc", runtimeSource: "default",
			notes: []string{`profile strict prefers gvisor; policy strict_runtime is "runc": runc`},
		},
		{
			name: "strict and annotation runc on a runc-only node", p: ro,
			in:      Inputs{Annotations: ann(AnnotationProfile, "strict", AnnotationRuntime, "runc")},
			profile: "strict", profileSource: "annotation hardened.dev/profile",
			runtime: "runc", runtimeSource: "annotation hardened.dev/runtime",
			notes: []string{`profile strict prefers gvisor; policy strict_runtime is "runc": runc`},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Resolve(tc.p, set, tc.in)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("not refused: %+v", d)
				}
				if err.Error() != tc.err {
					t.Errorf("error %q\nwant  %q", err, tc.err)
				}
				if !errors.Is(err, ErrRefused) {
					t.Error("does not wrap ErrRefused")
				}
				if errors.Is(err, profiles.ErrUnknownProfile) != tc.unknown {
					t.Errorf("wraps ErrUnknownProfile = %v", !tc.unknown)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.Profile == nil || d.Profile.Name != tc.profile || d.ProfileSource != tc.profileSource {
				t.Errorf("profile %v from %q, want %q from %q", d.Profile, d.ProfileSource, tc.profile, tc.profileSource)
			}
			if d.Runtime != tc.runtime || d.RuntimeSource != tc.runtimeSource {
				t.Errorf("runtime %q from %q, want %q from %q", d.Runtime, d.RuntimeSource, tc.runtime, tc.runtimeSource)
			}
			if !slices.Equal(d.Notes, tc.notes) {
				t.Errorf("notes %q\nwant  %q", d.Notes, tc.notes)
			}
		})
	}
}

func TestResolveBrokenPolicy(t *testing.T) {
	set := profiles.Builtin()
	for _, tc := range []struct {
		name string
		edit func(p *policy.Policy)
	}{
		{"unknown default", func(p *policy.Policy) { p.DefaultProfile = "gone" }},
		{"unknown minimum", func(p *policy.Policy) { p.MinimumProfile = "gone" }},
		{"unknown route profile", func(p *policy.Policy) { p.Routes = []policy.Route{{Profile: "gone"}} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := policy.Default()
			tc.edit(p)
			_, err := Resolve(p, set, Inputs{})
			if !errors.Is(err, policy.ErrInvalidPolicy) || !errors.Is(err, profiles.ErrUnknownProfile) || errors.Is(err, ErrRefused) {
				t.Errorf("error %v", err)
			}
		})
	}
	// gvisor required but removed from the runtimes after Parse.
	p := policy.Default()
	delete(p.Runtimes, profiles.RuntimeGVisor)
	_, err := Resolve(p, nil, Inputs{Annotations: map[string]string{AnnotationProfile: "strict"}})
	if want := `refused by hardening policy: runtime: policy runtimes: gvisor is required by profile "strict" (policy strict_runtime) but this node does not configure it`; err == nil || err.Error() != want || !errors.Is(err, ErrRefused) {
		t.Errorf("error %v\nwant  %s", err, want)
	}
}

// TestResolveNeverBelowMinimum: whatever the inputs, an accepted decision
// is at or above the minimum and picks a configured runtime.
func TestResolveNeverBelowMinimum(t *testing.T) {
	set := testSet(t)
	p := mustPolicy(t, routed)
	names := append(set.Names(), "", "nope")
	for _, a := range names {
		for _, l := range names {
			for _, r := range []string{"", "runc", "gvisor", "x"} {
				for _, team := range []string{"build", "legacy", "web", ""} {
					in := Inputs{
						Annotations: map[string]string{"example.com/untrusted": "true"},
						ImageLabels: map[string]string{},
						Labels:      map[string]string{"team": team, "tier": "edge"},
					}
					if a != "" {
						in.Annotations[AnnotationProfile] = a
					}
					if l != "" {
						in.ImageLabels[LabelProfile] = l
					}
					if r != "" {
						in.Annotations[AnnotationRuntime] = r
					}
					d, err := Resolve(p, set, in)
					if err != nil {
						if !errors.Is(err, ErrRefused) {
							t.Fatalf("%+v: not a refusal: %v", in, err)
						}
						continue
					}
					if ok, _ := set.AtLeast(d.Profile.Name, p.MinimumProfile); !ok {
						t.Fatalf("%+v: %s below the minimum", in, d.Profile.Name)
					}
					if d.Runtime != profiles.RuntimeGVisor {
						t.Fatalf("%+v: route #1 matches but runtime is %s", in, d.Runtime)
					}
				}
			}
		}
	}
}

func TestResolveAuditProfile(t *testing.T) {
	p, err := policy.Parse([]byte("default_profile = \"baseline\"\naudit_profile = \"hardened\"\n"+
		"[[routes]]\nmatch = { labels = { tier = \"edge\" } }\naudit_profile = \"strict\"\n"), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		in           Inputs
		audit, src   string
		noteContains string
	}{
		{name: "the policy's", audit: "hardened", src: "policy audit_profile"},
		{name: "the route's", in: Inputs{Labels: map[string]string{"tier": "edge"}}, audit: "strict", src: "policy route #1 audit_profile"},
		{name: "the namespace's", in: Inputs{NamespaceLabels: map[string]string{NamespaceAuditProfile: "strict"}}, audit: "strict", src: "namespace label hardened.dev/audit-profile"},
		{name: "the route's over the namespace's", in: Inputs{Labels: map[string]string{"tier": "edge"}, NamespaceLabels: map[string]string{NamespaceAuditProfile: "hardened"}},
			audit: "strict", src: "policy route #1 audit_profile"},
		{name: "not stricter than the enforced one", in: Inputs{Annotations: map[string]string{AnnotationProfile: "hardened"}},
			noteContains: "policy audit_profile hardened is not stricter than hardened"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := Resolve(p, nil, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			got, src := "", d.AuditProfileSource
			if d.AuditProfile != nil {
				got = d.AuditProfile.Name
			}
			if got != tc.audit || src != tc.src {
				t.Errorf("audit profile %q (%q), want %q (%q)", got, src, tc.audit, tc.src)
			}
			if tc.noteContains != "" && !strings.Contains(strings.Join(d.Notes, "\n"), tc.noteContains) {
				t.Errorf("notes %q do not say %q", d.Notes, tc.noteContains)
			}
		})
	}
}

// TestResolveSeccompNotify: the matching route's seccomp_notify replaces
// the policy's; the built-in policy's is off.
func TestResolveSeccompNotify(t *testing.T) {
	p, err := policy.Parse([]byte("seccomp_notify = \"report\"\n"+
		"[[routes]]\nmatch = { labels = { stage = \"staging\" } }\nseccomp_notify = \"learn\"\n"+
		"[[routes]]\nmatch = { labels = { stage = \"dev\" } }\nruntime = \"runc\"\n"), "p.toml")
	if err != nil {
		t.Fatal(err)
	}
	learnNS := map[string]string{NamespaceSeccompNotify: "learn"}
	for _, tc := range []struct {
		policy   *policy.Policy
		labels   map[string]string
		nsLabels map[string]string
		want     policy.SeccompNotify
	}{
		{p, nil, nil, policy.SeccompNotifyReport},
		{p, map[string]string{"stage": "staging"}, nil, policy.SeccompNotifyLearn},
		{p, map[string]string{"stage": "dev"}, nil, policy.SeccompNotifyReport},
		{nil, nil, nil, policy.SeccompNotifyOff},
		{nil, nil, learnNS, policy.SeccompNotifyLearn},
		{p, map[string]string{"stage": "staging"}, map[string]string{NamespaceSeccompNotify: "off"}, policy.SeccompNotifyLearn},
	} {
		d, err := Resolve(tc.policy, nil, Inputs{Labels: tc.labels, NamespaceLabels: tc.nsLabels})
		if err != nil {
			t.Fatal(err)
		}
		if d.SeccompNotify != tc.want {
			t.Errorf("labels %v, namespace %v: seccomp_notify %q, want %q", tc.labels, tc.nsLabels, d.SeccompNotify, tc.want)
		}
	}
	if _, err := Resolve(p, nil, Inputs{NamespaceLabels: map[string]string{NamespaceSeccompNotify: "loud"}}); err == nil || !strings.Contains(err.Error(), `hardened.dev/seccomp-notify="loud"`) {
		t.Errorf("an invalid namespace label: %v", err)
	}
	if _, err := Resolve(p, nil, Inputs{NamespaceLabels: map[string]string{NamespaceAuditProfile: "nope"}}); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("an unknown audit profile on the namespace: %v", err)
	}
}
