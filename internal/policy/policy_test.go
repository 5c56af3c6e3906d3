package policy

import (
	"errors"
	"flag"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/hardened-dev/hardened/internal/golden"
	"github.com/hardened-dev/hardened/profiles"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.err from the current messages")

func TestDefaultIsValid(t *testing.T) {
	p := Default()
	if err := p.validate(); err != nil {
		t.Fatalf("Default() does not validate: %v", err)
	}
	if err := p.Check(profiles.Builtin()); err != nil {
		t.Fatalf("Default() does not fit the built-in profiles: %v", err)
	}
}

func TestParseEmptyIsDefault(t *testing.T) {
	p, err := Parse(nil, "empty.toml")
	if err != nil {
		t.Fatal(err)
	}
	p.source, p.idx = "", nil
	if !reflect.DeepEqual(p, Default()) {
		t.Errorf("got %+v\nwant %+v", p, Default())
	}
}

func TestParseExample(t *testing.T) {
	p, err := Load("testdata/good/example.toml")
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(profiles.Builtin()); err != nil {
		t.Fatal(err)
	}
	want := Default()
	want.Runtimes[profiles.RuntimeGVisor] = Runtime{Path: "runsc", Args: []string{}}
	want.Routes = []Route{
		{Match: Match{Annotations: map[string]string{"example.com/untrusted": "true"}}, Runtime: "gvisor"},
		{Match: Match{Labels: map[string]string{"untrusted": "true"}}, Runtime: "gvisor"},
	}
	want.source, want.idx = p.source, p.idx
	if !reflect.DeepEqual(p, want) {
		t.Errorf("got  %+v\nwant %+v", p, want)
	}
	if p.Source() != "testdata/good/example.toml" {
		t.Errorf("Source() = %q", p.Source())
	}
}

func TestParseKeepsDefaults(t *testing.T) {
	p, err := Load("testdata/good/runc-only.toml")
	if err != nil {
		t.Fatal(err)
	}
	if p.MinimumProfile != "baseline" || p.ProfilesDir != "/etc/hardened/profiles" {
		t.Errorf("defaults lost: %+v", p)
	}
	if p.DefaultProfile != "baseline" || p.Mode != ModeAudit || p.AppArmor != profiles.AppArmorRequired {
		t.Errorf("file values lost: %+v", p)
	}
	// A [runtimes] table replaces the default runtimes.
	if got := p.RuntimeNames(); !reflect.DeepEqual(got, []profiles.Runtime{profiles.RuntimeRunc}) {
		t.Errorf("runtimes = %v", got)
	}
	if p.UsesRuntime(profiles.RuntimeGVisor) {
		t.Error("UsesRuntime(gvisor) on a runc-only policy")
	}
	r, _ := Load("testdata/good/routes.toml")
	if !r.UsesRuntime(profiles.RuntimeGVisor) || !Default().UsesRuntime(profiles.RuntimeGVisor) || !Default().UsesRuntime(profiles.RuntimeRunc) {
		t.Error("UsesRuntime")
	}
	if len(r.Routes) != 2 || r.Routes[0].Match.Annotations["example.com/tenant"] != "external" ||
		r.Routes[0].Match.Labels["tier"] != "untrusted" || r.Routes[1].Match.Labels["app.kubernetes.io/name"] != "build" {
		t.Errorf("routes = %+v", r.Routes)
	}
	// Parsing does not change Default().
	if len(Default().Runtimes) != 2 {
		t.Error("Default() changed")
	}
}

func TestGood(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.toml")
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			p, err := Load(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := p.Check(profiles.Builtin()); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestBad checks each bad file's message against its golden .err file
// (go test -run TestBad -update rewrites them).
func TestBad(t *testing.T) {
	files, _ := filepath.Glob("testdata/bad/*.toml")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = Parse(data, filepath.Base(f))
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Errorf("does not wrap ErrInvalidPolicy: %v", err)
			}
			golden.Check(t, strings.TrimSuffix(f, ".toml")+".err", []byte(err.Error()+"\n"), *update)
		})
	}
}

func TestLoadErrors(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "missing.toml"))
	if !errors.Is(err, ErrInvalidPolicy) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	if !strings.HasPrefix(err.Error(), filepath.Join(t.TempDir(), "..")[:0]) || !strings.Contains(err.Error(), "failed to read policy") {
		t.Errorf("message: %v", err)
	}
	big := filepath.Join(t.TempDir(), "big.toml")
	if err := os.WriteFile(big, []byte("#"+strings.Repeat("x", maxFileSize)), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(big); !errors.Is(err, ErrInvalidPolicy) {
		t.Errorf("big file: %v", err)
	}
}

func TestCheck(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "web.toml"), []byte("name = \"web\"\nextends = \"hardened\"\nrank = 15\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	set, err := profiles.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, policy string
		err          string
		unknown      bool
	}{
		{name: "defaults", policy: ""},
		{name: "custom profile", policy: "default_profile = \"web\"\nminimum_profile = \"web\"\n"},
		{
			name:    "unknown default",
			policy:  "mode = \"audit\"\ndefault_profile = \"strictest\"\n",
			err:     `p.toml:2: default_profile: unknown profile "strictest" (known: baseline, web, hardened, restricted, strict)`,
			unknown: true,
		},
		{
			name:    "unknown minimum",
			policy:  "minimum_profile = \"x\"\n",
			err:     `p.toml:1: minimum_profile: unknown profile "x" (known: baseline, web, hardened, restricted, strict)`,
			unknown: true,
		},
		{
			name:   "default below minimum",
			policy: "default_profile = \"baseline\"\nminimum_profile = \"web\"\n",
			err:    `p.toml:1: default_profile "baseline" is less strict than minimum_profile "web"`,
		},
		{
			name:   "route below minimum",
			policy: "minimum_profile = \"hardened\"\n[[routes]]\nmatch = {}\nprofile = \"strict\"\n[[routes]]\nmatch = { labels = { a = \"b\" } }\nprofile = \"web\"\n",
			err:    `p.toml:7: route #2 profile "web" is less strict than minimum_profile "hardened"`,
		},
		{name: "audit profiles", policy: "default_profile = \"baseline\"\naudit_profile = \"hardened\"\n[[routes]]\nmatch = { labels = { a = \"b\" } }\naudit_profile = \"strict\"\n"},
		{
			name:    "unknown audit profile",
			policy:  "audit_profile = \"nope\"\n",
			err:     `p.toml:1: audit_profile: unknown profile "nope" (known: baseline, web, hardened, restricted, strict)`,
			unknown: true,
		},
		{
			name:    "unknown route audit profile",
			policy:  "[[routes]]\naudit_profile = \"nope\"\n",
			err:     `p.toml:2: route #1 audit_profile: unknown profile "nope" (known: baseline, web, hardened, restricted, strict)`,
			unknown: true,
		},
		{
			name:    "unknown route profile",
			policy:  "[[routes]]\nprofile = \"nope\"\n",
			err:     `p.toml:2: route #1 profile: unknown profile "nope" (known: baseline, web, hardened, restricted, strict)`,
			unknown: true,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.policy), "p.toml")
			if err != nil {
				t.Fatal(err)
			}
			err = p.Check(set)
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || err.Error() != tc.err {
				t.Fatalf("error %v\nwant  %s", err, tc.err)
			}
			if !errors.Is(err, ErrInvalidPolicy) {
				t.Error("does not wrap ErrInvalidPolicy")
			}
			if errors.Is(err, profiles.ErrUnknownProfile) != tc.unknown {
				t.Errorf("wraps ErrUnknownProfile: %v, want %v", !tc.unknown, tc.unknown)
			}
		})
	}
	// Default() (no source, no index) still says what is wrong.
	p := Default()
	p.DefaultProfile = "gone"
	if err := p.Check(profiles.Builtin()); err == nil || !strings.HasPrefix(err.Error(), "default_profile: unknown profile \"gone\"") {
		t.Errorf("Default() check: %v", err)
	}
}

func TestParseHostPaths(t *testing.T) {
	p, err := Load("testdata/good/host-paths.toml")
	if err != nil {
		t.Fatal(err)
	}
	want := []profiles.HostPathPrefix{
		{Prefix: "/srv/data/"},
		{Prefix: "/srv/models/", ReadOnly: true},
		{Prefix: "/data/containerd/io.containerd.grpc.v1.cri/sandboxes/{sandbox-id}/"},
	}
	if !reflect.DeepEqual(p.AllowHostPathPrefixes, want) {
		t.Errorf("got %+v", p.AllowHostPathPrefixes)
	}
	if len(Default().AllowHostPathPrefixes) != 0 {
		t.Error("the default policy consents to host paths")
	}
}
