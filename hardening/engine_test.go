package hardening

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/hardened-dev/hardened/profiles"
)

func TestMalformed(t *testing.T) {
	cfg := cfgFor(t, "hardened")
	tests := []struct {
		name  string
		spec  *specs.Spec
		field string
	}{
		{"nil", nil, ""},
		{"no process", &specs.Spec{Root: &specs.Root{Path: "rootfs"}}, "process"},
		{"no root", &specs.Spec{Process: &specs.Process{Cwd: "/"}}, "root"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Harden(tt.spec, cfg)
			re := refusal(t, err)
			if re.Rule != RuleSpec || re.Field != tt.field || !strings.HasPrefix(re.Reason, "malformed spec") {
				t.Errorf("got %+v", re)
			}
			if re := refusal(t, Validate(tt.spec, cfg)); re.Rule != RuleSpec {
				t.Errorf("validate: got %+v", re)
			}
		})
	}
	// No linux section: no mount namespace, and runc would make the
	// container's mounts in the host's.
	s := baseSpec()
	s.Linux = nil
	// A profile that allows the node's pid, ipc and network namespaces
	// still refuses sharing its mount namespace.
	cfg = cfgFor(t, "baseline")
	cfg.Profile.Namespaces.DenyHost = false
	_, _, err := Harden(s, cfg)
	if re := refusal(t, err); re.Rule != RuleNamespaces || !strings.Contains(re.Reason, "no mount namespace") {
		t.Errorf("no linux section: %+v", re)
	}
}

func TestInvalidConfig(t *testing.T) {
	good := cfgFor(t, "baseline")
	for name, mutate := range map[string]func(*Config){
		"no profile":    func(c *Config) { c.Profile = nil },
		"apparmor mode": func(c *Config) { c.AppArmorMode = "sometimes" },
		"backend":       func(c *Config) { c.Runtime = "kata" },
		"seccomp base":  func(c *Config) { c.Profile = c.Profile.Clone(); c.Profile.Seccomp.Base = "docker" },
	} {
		cfg := good
		mutate(&cfg)
		if _, _, err := Harden(baseSpec(), cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Harden: %v", name, err)
		}
		if _, _, err := HardenExec(baseSpec().Process, baseSpec(), cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: HardenExec: %v", name, err)
		}
		if err := Validate(baseSpec(), cfg); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: Validate: %v", name, err)
		}
	}
}

func TestReport(t *testing.T) {
	cfg := cfgFor(t, "hardened")
	cfg.Runtime = ""
	_, rep, err := Harden(baseSpec(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Profile != "hardened" || rep.Runtime != profiles.RuntimeRunc {
		t.Errorf("report %+v", rep)
	}
	cfg.Runtime = profiles.RuntimeGVisor
	_, rep, err = Harden(baseSpec(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Runtime != profiles.RuntimeGVisor || len(rep.NotEnforced) != 2 {
		t.Errorf("report %+v", rep)
	}
	for _, c := range rep.Changes {
		if c.Rule == "" || c.Field == "" {
			t.Errorf("change without rule or field: %+v", c)
		}
	}
}

// TestInputNotMutated hardens every test spec under every profile and
// checks the input is byte-for-byte what it was.
func TestInputNotMutated(t *testing.T) {
	for _, name := range testSpecNames(t) {
		for _, prof := range profileNames {
			in := loadSpec(t, name)
			before := mustJSON(t, in)
			out, _, err := Harden(in, cfgFor(t, prof))
			if mustJSON(t, in) != before {
				t.Fatalf("%s/%s: input mutated", name, prof)
			}
			if err != nil {
				continue
			}
			// The output shares nothing with the input either.
			mutateAll(reflect.ValueOf(out).Elem(), 0)
			if mustJSON(t, in) != before {
				t.Fatalf("%s/%s: output aliases the input", name, prof)
			}
		}
	}
}

func TestHardenExec(t *testing.T) {
	container, _, err := Harden(loadSpec(t, "cri-container"), cfgFor(t, "hardened"))
	if err != nil {
		t.Fatal(err)
	}
	// containerd builds the exec process from its stored, unhardened spec.
	stored := loadSpec(t, "cri-container").Process
	stored.Args = []string{"sh"}

	t.Run("tightened like the init process", func(t *testing.T) {
		in := deepCopy(stored)
		in.ApparmorProfile = "unconfined"
		in.Capabilities.Ambient = []string{"CAP_NET_BIND_SERVICE"}
		before := mustJSON(t, in)
		out, rep, err := HardenExec(in, container, cfgFor(t, "hardened"))
		if err != nil {
			t.Fatal(err)
		}
		if mustJSON(t, in) != before {
			t.Fatal("input mutated")
		}
		if !out.NoNewPrivileges || out.ApparmorProfile != container.Process.ApparmorProfile {
			t.Errorf("nnp %v apparmor %q", out.NoNewPrivileges, out.ApparmorProfile)
		}
		for _, set := range capSets {
			if got, want := *set.get(out.Capabilities), *set.get(container.Process.Capabilities); !slices.Equal(got, want) {
				t.Errorf("%s: %v, want the container's %v", set.name, got, want)
			}
		}
		if rep.Profile != "hardened" || len(rep.Changes) == 0 {
			t.Errorf("report %+v", rep)
		}
		// Idempotent.
		again, rep2, err := HardenExec(out, container, cfgFor(t, "hardened"))
		if err != nil || mustJSON(t, again) != mustJSON(t, out) || len(rep2.Changes) != 0 {
			t.Errorf("not idempotent: %v %+v", err, rep2)
		}
	})
	t.Run("no wider than the container", func(t *testing.T) {
		narrow := deepCopy(container)
		narrow.Process.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"CAP_NET_BIND_SERVICE"}}
		out, _, err := HardenExec(deepCopy(stored), narrow, cfgFor(t, "hardened"))
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Capabilities.Effective) != 0 || len(out.Capabilities.Permitted) != 0 || !slices.Equal(out.Capabilities.Bounding, []string{"CAP_NET_BIND_SERVICE"}) {
			t.Errorf("caps %+v", out.Capabilities)
		}
		narrow.Process.Capabilities = nil
		out, _, err = HardenExec(deepCopy(stored), narrow, cfgFor(t, "hardened"))
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(normCaps(out.Capabilities), &specs.LinuxCapabilities{}) {
			t.Errorf("caps %+v with a container without capabilities", out.Capabilities)
		}
	})
	t.Run("rlimit core", func(t *testing.T) {
		strictC, _, err := Harden(loadSpec(t, "cri-container"), cfgFor(t, "strict"))
		if err != nil {
			t.Fatal(err)
		}
		cfg := cfgFor(t, "strict")
		cfg.Profile = cfg.Profile.Clone()
		cfg.Profile.Process.DenyExec = false
		out, _, err := HardenExec(deepCopy(stored), strictC, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(out.Rlimits, specs.POSIXRlimit{Type: "RLIMIT_CORE"}) {
			t.Errorf("rlimits %+v", out.Rlimits)
		}
	})
	refusals := []struct {
		name   string
		prof   string
		mutate func(*specs.Process)
		rule   string
		reason string
	}{
		{"deny exec", "strict", func(*specs.Process) {}, RuleExec, "exec into the container is denied under profile strict"},
		{"root under non-root", "strict-exec", func(p *specs.Process) { p.User.UID = 0 }, RuleProcess, "non-root"},
		{"cwd through fd", "hardened", func(p *specs.Process) { p.Cwd = "/proc/self/fd/9" }, RuleFDHygiene, "CVE-2024-21626"},
		{"LD_PRELOAD", "hardened", func(p *specs.Process) { p.Env = append(p.Env, "LD_PRELOAD=/proc/self/fd/3") }, RuleFDHygiene, "LD_PRELOAD"},
	}
	for _, tt := range refusals {
		t.Run(tt.name, func(t *testing.T) {
			cfg := cfgFor(t, strings.TrimSuffix(tt.prof, "-exec"))
			if strings.HasSuffix(tt.prof, "-exec") {
				cfg.Profile = cfg.Profile.Clone()
				cfg.Profile.Process.DenyExec = false
			}
			p := deepCopy(stored)
			tt.mutate(p)
			_, _, err := HardenExec(p, container, cfg)
			re := refusal(t, err)
			if re.Rule != tt.rule || !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("got %v, want %s %q", err, tt.rule, tt.reason)
			}
		})
	}
	t.Run("malformed", func(t *testing.T) {
		cfg := cfgFor(t, "hardened")
		for _, c := range []struct {
			p *specs.Process
			s *specs.Spec
		}{{nil, container}, {stored, nil}, {stored, &specs.Spec{}}} {
			if re := refusal(t, func() error { _, _, err := HardenExec(c.p, c.s, cfg); return err }()); re.Rule != RuleSpec {
				t.Errorf("got %+v", re)
			}
		}
	})
}

// TestConcurrent hardens specs from many goroutines at once: the shim
// serves containers concurrently, and the engine's caches are shared.
func TestConcurrent(t *testing.T) {
	names := testSpecNames(t)
	want := map[string]string{}
	for _, n := range names {
		for _, p := range profileNames {
			out, _, err := Harden(loadSpec(t, n), cfgFor(t, p))
			if err == nil {
				want[n+"/"+p] = mustJSON(t, out)
			}
		}
	}
	errs := make(chan error, 8)
	for g := range 8 {
		go func() {
			var err error
			for i := range 50 {
				n, p := names[(g+i)%len(names)], profileNames[i%len(profileNames)]
				out, _, herr := Harden(loadSpec(t, n), cfgFor(t, p))
				if w, ok := want[n+"/"+p]; ok && (herr != nil || mustJSON(t, out) != w) {
					err = errors.New(n + "/" + p + ": output differs under concurrency")
					break
				}
			}
			errs <- err
		}()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
