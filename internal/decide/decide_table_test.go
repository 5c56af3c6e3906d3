package decide

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/hardening"
	"github.com/hardened-dev/hardened/internal/policy"
	"github.com/hardened-dev/hardened/profiles"
)

const specDir = "../../hardening/testdata/specs"

func readSpec(t testing.TB, name string) *specs.Spec {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(specDir, name))
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(data, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func parsePolicy(t testing.TB, body string) *policy.Policy {
	t.Helper()
	p, err := policy.Parse([]byte(body), "test.toml")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// facts are the facts of a containerd-default container "example" (its
// cgroupsPath ends in that id) under pol, on a host with both runtimes.
func facts(t testing.TB, spec string, pol *policy.Policy) Facts {
	t.Helper()
	return Facts{
		ID: "example", Namespace: "default", Spec: readSpec(t, spec),
		Containerd: Containerd{Asked: true},
		Policy:     Policy{Policy: pol, Profiles: profiles.Builtin(), Source: "test"},
		Host: Host{RunDir: "/run/h", Runtimes: map[profiles.Runtime]Runtime{
			profiles.RuntimeRunc:   {Binary: "/usr/bin/runc"},
			profiles.RuntimeGVisor: {Binary: "/run/h/runsc/k/hardened-runsc", Root: "/run/containerd/runsc"},
		}},
	}
}

// wantRefused checks that err is a decide.Error of class kind naming every
// string.
func wantRefused(t *testing.T, err error, kind error, names ...string) {
	t.Helper()
	var de *Error
	if !errors.As(err, &de) {
		t.Fatalf("error %v (%T), want a *decide.Error", err, err)
	}
	if !errors.Is(err, kind) {
		t.Errorf("error class: %v, want %v", err, kind)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Errorf("error does not name %q:\n%v", n, err)
		}
	}
}

func TestDecideTable(t *testing.T) {
	enforce := policy.Default()
	audit := parsePolicy(t, "mode = \"audit\"\n")
	pod := func(kind, sb string) func(*Facts) {
		return func(f *Facts) {
			f.Spec.Annotations = map[string]string{AnnContainerType: kind, AnnSandboxID: sb}
		}
	}
	for _, tc := range []struct {
		name   string
		pol    *policy.Policy
		edit   func(*Facts)
		kind   error    // nil: a plan
		names  []string // in the refusal
		rule   string   // the refusal's *hardening.RefusalError rule, if it has one
		check  func(*testing.T, *Plan)
		spec   string
		reason string
	}{
		{name: "default: hardened on runc", pol: enforce, check: func(t *testing.T, p *Plan) {
			if p.Report.Profile != "hardened" || p.Report.Runtime != "runc" || p.Runc.BinaryName != "/usr/bin/runc" || p.Spec == nil {
				t.Errorf("report %+v, runc %+v", p.Report, p.Runc)
			}
		}},
		{name: "seccomp_notify report: the filter's denials go to the shim's socket", pol: parsePolicy(t, "seccomp_notify = \"report\"\n"), check: func(t *testing.T, p *Plan) {
			want, _ := SeccompSocket("/run/h", "default", "example")
			if p.Seccomp == nil || p.Seccomp.Socket != want || p.Spec.Linux.Seccomp.ListenerPath != want || p.Hardened.Linux.Seccomp.ListenerPath != want {
				t.Fatalf("seccomp plan %+v, want socket %s in the spec", p.Seccomp, want)
			}
			if r := p.Report.Seccomp; r == nil || r.Mode != policy.SeccompNotifyReport || r.Notified != len(p.Seccomp.Notice.Names) || r.Notified == 0 {
				t.Errorf("report %+v", r)
			}
		}},
		{name: "seccomp_notify on gVisor: not available, said", pol: parsePolicy(t, "seccomp_notify = \"learn\"\n"), edit: func(f *Facts) {
			f.Spec.Annotations = map[string]string{"hardened.dev/runtime": "gvisor"}
		}, check: func(t *testing.T, p *Plan) {
			if p.Seccomp != nil || p.Spec.Linux.Seccomp.ListenerPath != "" || p.Report.Seccomp == nil || !strings.Contains(p.Report.Seccomp.Unavailable, "runsc") {
				t.Errorf("plan %+v, report %+v", p.Seccomp, p.Report.Seccomp)
			}
		}},
		{name: "seccomp_notify in audit mode: nothing", pol: parsePolicy(t, "mode = \"audit\"\nseccomp_notify = \"report\"\n"), check: func(t *testing.T, p *Plan) {
			if p.Seccomp != nil || p.Report.Seccomp != nil || p.Hardened.Linux.Seccomp.ListenerPath != "" {
				t.Errorf("plan %+v, report %+v", p.Seccomp, p.Report.Seccomp)
			}
		}},
		{name: "seccomp_notify with a run dir too long for a socket: refused", pol: parsePolicy(t, "seccomp_notify = \"report\"\n"), edit: func(f *Facts) {
			f.Host.RunDir = "/run/" + strings.Repeat("x", 80)
		}, kind: errdefs.ErrFailedPrecondition, names: []string{"longer than a unix socket address allows"}},
		{name: "scratch declared by an image label and the policy: tmpfs copy-up mounts under hardened", pol: parsePolicy(t, "scratch = [{ path = \"/srv/data\", size = \"1g\" }]\n"), edit: func(f *Facts) {
			f.Containerd.ImageLabels = map[string]string{profiles.ScratchLabel: "/var/cache/nginx"}
		}, check: func(t *testing.T, p *Plan) {
			got := map[string][]string{}
			for _, m := range p.Hardened.Mounts {
				got[m.Destination] = m.Options
			}
			for dest, size := range map[string]string{"/var/cache/nginx": "size=16m", "/srv/data": "size=1g"} {
				if o := got[dest]; !slices.Contains(o, "tmpcopyup") || !slices.Contains(o, size) || slices.Contains(o, "noexec") {
					t.Errorf("%s: options %v", dest, o)
				}
			}
		}},
		{name: "scratch declared under strict: noexec", pol: enforce, edit: func(f *Facts) {
			f.Containerd.ImageLabels = map[string]string{profiles.ScratchLabel: "/var/cache/nginx"}
			f.Spec.Annotations = map[string]string{"hardened.dev/profile": "strict"}
			f.Spec.Process.User.UID = 1000
		}, check: func(t *testing.T, p *Plan) {
			for _, m := range p.Hardened.Mounts {
				if m.Destination == "/var/cache/nginx" && slices.Contains(m.Options, "noexec") {
					return
				}
			}
			t.Errorf("no noexec scratch at /var/cache/nginx: %+v", p.Hardened.Mounts)
		}},
		{name: "scratch label outside the allowed roots: refused", pol: enforce, edit: func(f *Facts) {
			f.Containerd.ImageLabels = map[string]string{profiles.ScratchLabel: "/usr/lib/x"}
		}, kind: errdefs.ErrFailedPrecondition, rule: "rootfs", names: []string{"image label hardened.dev/scratch", "not under /var"}},
		{name: "baseline enforced, hardened audited: the writes are to be read", pol: parsePolicy(t, "default_profile = \"baseline\"\naudit_profile = \"hardened\"\n"), check: func(t *testing.T, p *Plan) {
			if w := p.Report.Written; w == nil || w.Profile != "hardened" || w.Unavailable != "" || !slices.Contains(p.WrittenExclude, "/tmp") || !slices.Contains(p.WrittenExclude, "/proc") {
				t.Errorf("written %+v, exclude %v", p.Report.Written, p.WrittenExclude)
			}
		}},
		{name: "hardened enforced: no writes to read", pol: enforce, check: func(t *testing.T, p *Plan) {
			if p.Report.Written != nil {
				t.Errorf("written %+v", p.Report.Written)
			}
		}},
		{name: "gvisor annotation: the wrapper", pol: enforce, edit: func(f *Facts) {
			f.Spec.Annotations = map[string]string{"hardened.dev/runtime": "gvisor"}
		}, check: func(t *testing.T, p *Plan) {
			if p.Report.Runtime != "gvisor" || p.Runc.BinaryName != "/run/h/runsc/k/hardened-runsc" || p.Runc.Root != "/run/containerd/runsc" {
				t.Errorf("report %+v, runc %+v", p.Report, p.Runc)
			}
		}},
		{name: "containerd did not answer", pol: enforce, edit: func(f *Facts) { f.Containerd.Err = errors.New("dial: refused") },
			kind: errdefs.ErrFailedPrecondition, names: []string{"cannot read its record from containerd", "dial: refused"}},
		{name: "containerd did not answer, policy from the request", pol: enforce, edit: func(f *Facts) {
			f.Containerd.Err, f.PolicyFromRequest = errors.New("dial: refused"), true
		}, kind: errdefs.ErrFailedPrecondition, names: []string{"cannot read its labels from containerd"}},
		{name: "no containerd to ask", pol: enforce, edit: func(f *Facts) { f.Containerd.Asked = false }, check: func(t *testing.T, p *Plan) {
			if len(p.Report.Notes) == 0 || !strings.Contains(p.Report.Notes[0], "labels not read") {
				t.Errorf("notes %q", p.Report.Notes)
			}
		}},
		{name: "policy did not load", pol: enforce, edit: func(f *Facts) { f.Policy = Policy{Err: errors.New("line 3: unknown key")} },
			kind: errdefs.ErrInvalidArgument, names: []string{"line 3: unknown key"}},
		{name: "annotations claim another pod", pol: enforce, edit: func(f *Facts) {
			pod("container", "other")(f)
			f.Containerd.CRI = CRIRecord{Kind: "container", SandboxID: "sb"}
		}, kind: errdefs.ErrFailedPrecondition, names: []string{`recorded the container in pod sandbox "sb"`}, rule: hardening.RulePod},
		{name: "one backend per pod", pol: enforce, edit: func(f *Facts) {
			pod("container", "sb")(f)
			f.Sandbox = Sandbox{Runtime: "gvisor"}
		}, kind: errdefs.ErrFailedPrecondition, names: []string{"pod sandbox sb runs on gvisor", "would run on runc"}, rule: hardening.RulePod},
		{name: "sandbox record unreadable", pol: enforce, edit: func(f *Facts) {
			pod("container", "sb")(f)
			f.Sandbox = Sandbox{Err: errors.New("pod sandbox sb has no hardening record")}
		}, kind: errdefs.ErrFailedPrecondition, names: []string{"has no hardening record"}},
		{name: "runc gate", pol: enforce, edit: func(f *Facts) { f.Host.RuncGate = errors.New("runc 1.1.11: CVE-2024-21626") },
			kind: errdefs.ErrFailedPrecondition, names: []string{"runc /usr/bin/runc refused", "CVE-2024-21626"}, rule: hardening.RuleRuntime},
		{name: "runc gate does not concern gVisor", pol: enforce, edit: func(f *Facts) {
			f.Host.RuncGate = errors.New("runc 1.1.11: CVE-2024-21626")
			f.Spec.Annotations = map[string]string{"hardened.dev/runtime": "gvisor"}
		}, check: func(t *testing.T, p *Plan) {
			if p.Report.Runtime != "gvisor" {
				t.Errorf("runtime %q", p.Report.Runtime)
			}
		}},
		{name: "runtime not installed", pol: enforce, edit: func(f *Facts) {
			f.Host.Runtimes[profiles.RuntimeGVisor] = Runtime{Err: errors.New("the runsc wrapper hardened-runsc is not installed")}
			f.Spec.Annotations = map[string]string{"hardened.dev/runtime": "gvisor"}
		}, kind: errdefs.ErrFailedPrecondition, names: []string{"not installed"}, rule: hardening.RuleRuntime},
		{name: "host namespace by inode", pol: enforce, edit: func(f *Facts) {
			f.Host.HostNamespaces = []string{"network namespace path /proc/2/ns/net is the host's"}
		}, kind: errdefs.ErrFailedPrecondition, names: []string{"refused by profile hardened", "/proc/2/ns/net is the host's"}, rule: hardening.RuleNamespaces},
		{name: "namespace path unreadable", pol: enforce, edit: func(f *Facts) { f.Host.HostNamespacesErr = errors.New("stat /x: no such file") },
			kind: errdefs.ErrInvalidArgument, names: []string{"stat /x"}},
		{name: "engine refusal keeps its cause", pol: enforce, spec: "cri-privileged.json", edit: func(f *Facts) {
			f.ID = f.Spec.Annotations[AnnSandboxID]
		}, kind: errdefs.ErrFailedPrecondition, names: []string{"privileged"}, check: nil},
		{name: "audit: refusals recorded, config.json left", pol: audit, edit: func(f *Facts) {
			f.Host.RuncGate = errors.New("runc 1.1.11: CVE-2024-21626")
			f.Spec.Annotations = map[string]string{"hardened.dev/runtime": "gvisor"}
		}, check: func(t *testing.T, p *Plan) {
			if p.Spec != nil || p.Report.Runtime != "runc" || !strings.Contains(p.Report.Refused, "CVE-2024-21626") || p.Hardened == nil || p.Config.Profile == nil {
				t.Errorf("audit plan: spec %v, report %+v", p.Spec != nil, p.Report)
			}
		}},
		{name: "enforce baseline, audit hardened: reported, not applied", pol: parsePolicy(t, "default_profile = \"baseline\"\naudit_profile = \"hardened\"\n"),
			check: func(t *testing.T, p *Plan) {
				a := p.Report.Audit
				if p.Report.Profile != "baseline" || a == nil || a.Profile != "hardened" || a.ProfileSource != "policy audit_profile" || a.Refused != "" {
					t.Fatalf("report %+v, audit %+v", p.Report, a)
				}
				readOnly := false
				for _, c := range a.Changes {
					readOnly = readOnly || c.Field == "root.readonly"
				}
				if !readOnly || p.Spec.Root.Readonly {
					t.Errorf("audit changes %+v should make the rootfs read-only, and the enforced spec should not (readonly %v)", a.Changes, p.Spec.Root.Readonly)
				}
			}},
		{name: "audit strict: its refusal reported, the container runs", pol: parsePolicy(t, "default_profile = \"baseline\"\naudit_profile = \"strict\"\n"),
			check: func(t *testing.T, p *Plan) {
				if a := p.Report.Audit; a == nil || !strings.Contains(a.Refused, "strict") || p.Spec == nil {
					t.Errorf("audit %+v, spec %v", a, p.Spec != nil)
				}
			}},
		{name: "host paths staged", pol: parsePolicy(t, "allow_host_path_prefixes = [{ prefix = \"/srv/\" }]\n"), edit: func(f *Facts) {
			f.Spec.Mounts = append(f.Spec.Mounts, specs.Mount{Type: "bind", Source: "/srv/data", Destination: "/data", Options: []string{"rbind", "rw"}})
		}, check: func(t *testing.T, p *Plan) {
			n := len(p.Spec.Mounts) - 1
			want := "/run/h/staging/default/example/"
			if p.Pins == nil || len(p.Pins.Items) != 1 || !strings.HasPrefix(p.Spec.Mounts[n].Source, want) || p.Hardened.Mounts[n].Source != "/srv/data" {
				t.Errorf("pins %+v, config.json source %q, hardened source %q", p.Pins, p.Spec.Mounts[n].Source, p.Hardened.Mounts[n].Source)
			}
			if err := p.JudgeSources(map[string]string{"/srv/data": "/etc"}, nil); err == nil || !strings.Contains(err.Error(), "/etc") {
				t.Errorf("a source resolving to /etc: %v", err)
			}
			if err := p.JudgeSources(map[string]string{"/srv/data": "/srv/data"}, nil); err != nil {
				t.Errorf("a source resolving to itself: %v", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := tc.spec
			if spec == "" {
				spec = "containerd-default.json"
			}
			f := facts(t, spec, tc.pol)
			if tc.edit != nil {
				tc.edit(&f)
			}
			p, err := Decide(f)
			if tc.kind != nil {
				if p != nil {
					t.Errorf("a plan with the refusal")
				}
				wantRefused(t, err, tc.kind, tc.names...)
				if tc.rule != "" {
					var re *hardening.RefusalError
					if !errors.As(err, &re) || re.Rule != tc.rule {
						t.Errorf("refusal %v: want a *hardening.RefusalError of rule %q, got %+v", err, tc.rule, re)
					}
				}
				if tc.name == "engine refusal keeps its cause" {
					var re *hardening.RefusalError
					if !errors.As(err, &re) {
						t.Errorf("the engine's RefusalError is not reachable with errors.As: %v", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.check != nil {
				tc.check(t, p)
			}
		})
	}
}

// decideProperties checks what holds of every decision: a refusal xor a
// plan; a plan's spec passes Validate; deciding twice gives the same plan;
// audit mode leaves config.json alone.
func decideProperties(t *testing.T, f Facts) {
	p, err := Decide(f)
	if (p == nil) == (err == nil) {
		t.Fatalf("plan %v and error %v", p != nil, err)
	}
	if err != nil {
		var de *Error
		if !errors.As(err, &de) {
			t.Fatalf("error %T is not a *decide.Error: %v", err, err)
		}
		return
	}
	if p.Mode == policy.ModeAudit && p.Spec != nil {
		t.Fatal("audit mode rewrites config.json")
	}
	if p.Spec != nil {
		if err := hardening.Validate(p.Hardened, p.Config); err != nil {
			t.Fatalf("a planned spec fails Validate: %v", err)
		}
	}
	again, err := Decide(f)
	if err != nil {
		t.Fatalf("second decision refused: %v", err)
	}
	a, _ := json.Marshal(p)
	b, _ := json.Marshal(again)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("not deterministic:\n%s\n%s", a, b)
	}
}

func FuzzDecide(f *testing.F) {
	for _, s := range []string{"containerd-default.json", "cri-container.json", "cri-privileged.json", "minimal.json"} {
		data, err := os.ReadFile(filepath.Join(specDir, s))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, false, "", "", "")
		f.Add(data, true, "gvisor", "strict", "runc")
	}
	f.Fuzz(func(t *testing.T, data []byte, audit bool, runtimeAnn, profileAnn, sandbox string) {
		var s specs.Spec
		if json.Unmarshal(data, &s) != nil {
			return
		}
		pol := policy.Default()
		if audit {
			pol.Mode = policy.ModeAudit
		}
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		if runtimeAnn != "" {
			s.Annotations["hardened.dev/runtime"] = runtimeAnn
		}
		if profileAnn != "" {
			s.Annotations["hardened.dev/profile"] = profileAnn
		}
		fx := Facts{ID: "example", Namespace: "default", Spec: &s, Containerd: Containerd{Asked: true},
			Policy:  Policy{Policy: pol, Profiles: profiles.Builtin(), Source: "fuzz"},
			Sandbox: Sandbox{Runtime: profiles.Runtime(sandbox)},
			Host: Host{RunDir: "/run/h", Runtimes: map[profiles.Runtime]Runtime{
				profiles.RuntimeRunc: {Binary: "/usr/bin/runc"}, profiles.RuntimeGVisor: {Binary: "/w"}}}}
		decideProperties(t, fx)
	})
}
