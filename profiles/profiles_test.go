package profiles

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/hardened-dev/hardened/internal/golden"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*.err from the current messages")

func TestBuiltinLoads(t *testing.T) {
	s, err := loadBuiltin()
	if err != nil {
		t.Fatalf("built-in profiles do not load: %v", err)
	}
	if got, want := s.Names(), []string{"baseline", "hardened", "restricted", "strict"}; !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	for _, n := range s.Names() {
		if src := s.Source(n); src != "builtin/"+n+".toml" {
			t.Errorf("Source(%q) = %q", n, src)
		}
	}
	if Builtin() == nil {
		t.Fatal("Builtin() = nil")
	}
}

// TestBuiltinStrictness checks that each built-in profile is really
// stricter than the one below it, not just ranked higher.
func TestBuiltinStrictness(t *testing.T) {
	s := Builtin()
	names := s.Names()
	for i := 1; i < len(names); i++ {
		lo, _ := s.Get(names[i-1])
		hi, _ := s.Get(names[i])
		t.Run(lo.Name+"<"+hi.Name, func(t *testing.T) {
			if c, err := s.Compare(lo.Name, hi.Name); err != nil || c != -1 {
				t.Errorf("Compare = %d, %v; want -1", c, err)
			}
			if ok, _ := s.AtLeast(lo.Name, hi.Name); ok {
				t.Errorf("AtLeast(%s, %s) = true", lo.Name, hi.Name)
			}
			if ok, _ := s.AtLeast(hi.Name, lo.Name); !ok {
				t.Errorf("AtLeast(%s, %s) = false", hi.Name, lo.Name)
			}
			for _, c := range hi.Capabilities.Allowed {
				if !slices.Contains(lo.Capabilities.Allowed, c) {
					t.Errorf("%s allows %s, %s does not", hi.Name, c, lo.Name)
				}
			}
			// restricted is hardened plus non-root: nothing else grows.
			nonRootOnly := lo.Name == "hardened" && hi.Name == "restricted"
			if nonRootOnly && (!hi.Process.RunAsNonRoot || lo.Process.RunAsNonRoot) {
				t.Errorf("%s is not %s plus run_as_non_root", hi.Name, lo.Name)
			}
			if len(hi.Capabilities.Allowed) >= len(lo.Capabilities.Allowed) && !nonRootOnly {
				t.Errorf("%s allows as many capabilities as %s", hi.Name, lo.Name)
			}
			if hi.Pids.Limit <= 0 || hi.Pids.Limit > lo.Pids.Limit || hi.Pids.Limit == lo.Pids.Limit && !nonRootOnly {
				t.Errorf("pids limit %d (%s) not below %d (%s)", hi.Pids.Limit, hi.Name, lo.Pids.Limit, lo.Name)
			}
			for _, sc := range lo.Seccomp.Deny {
				if !slices.Contains(hi.Seccomp.Deny, sc) {
					t.Errorf("%s denies %s, %s does not", lo.Name, sc, hi.Name)
				}
			}
			if len(hi.Seccomp.Deny) <= len(lo.Seccomp.Deny) && !nonRootOnly {
				t.Errorf("%s denies no more syscalls than %s", hi.Name, lo.Name)
			}
			if hi.Seccomp.Base != SeccompBaseDefault {
				t.Errorf("%s has no seccomp base", hi.Name)
			}
			for _, b := range []struct {
				what   string
				lo, hi bool
			}{
				{"rootfs.read_only", lo.Rootfs.ReadOnly, hi.Rootfs.ReadOnly},
				{"capabilities.ambient (inverted)", !lo.Capabilities.Ambient, !hi.Capabilities.Ambient},
				{"process.run_as_non_root", lo.Process.RunAsNonRoot, hi.Process.RunAsNonRoot},
				{"process.deny_exec", lo.Process.DenyExec, hi.Process.DenyExec},
				{"process.no_core_dumps", lo.Process.NoCoreDumps, hi.Process.NoCoreDumps},
				{"seccomp.native_arch_only", lo.Seccomp.NativeArchOnly, hi.Seccomp.NativeArchOnly},
				{"namespaces.deny_host", lo.Namespaces.DenyHost, hi.Namespaces.DenyHost},
				{"namespaces.deny_privileged", lo.Namespaces.DenyPrivileged, hi.Namespaces.DenyPrivileged},
				{"mounts.standard_filesystems_only", lo.Mounts.StandardFilesystemsOnly, hi.Mounts.StandardFilesystemsOnly},
			} {
				if b.lo && !b.hi {
					t.Errorf("%s: %s has it, %s does not", b.what, lo.Name, hi.Name)
				}
			}
			for _, p := range lo.Paths.Masked {
				if !slices.Contains(hi.Paths.Masked, p) {
					t.Errorf("%s masks %s, %s does not", lo.Name, p, hi.Name)
				}
			}
			for _, p := range lo.Mounts.DenyHostPaths {
				if !slices.ContainsFunc(hi.Mounts.DenyHostPaths, func(d string) bool { return p == d || strings.HasPrefix(p, d+"/") && d != "/" }) {
					t.Errorf("%s denies host path %s, %s does not", lo.Name, p, hi.Name)
				}
			}
			for _, p := range hi.Mounts.AllowHostPathPrefixes {
				if !slices.Contains(lo.Mounts.AllowHostPathPrefixes, p) {
					t.Errorf("%s allows host paths under %s, %s does not", hi.Name, p, lo.Name)
				}
			}
			for _, d := range hi.Devices.Allowed {
				if !slices.Contains(lo.Devices.Allowed, d) {
					t.Errorf("%s allows device %s, %s does not", hi.Name, d, lo.Name)
				}
			}
		})
	}
	strict, _ := s.Get("strict")
	if strict.Runtime != RuntimeGVisor {
		t.Errorf("strict runtime = %q, want gvisor", strict.Runtime)
	}
	for _, sc := range strict.Rootfs.Scratch {
		if !sc.NoExec {
			t.Errorf("strict scratch %s is executable", sc.Path)
		}
	}
}

func TestGet(t *testing.T) {
	s := Builtin()
	p, err := s.Get("hardened")
	if err != nil {
		t.Fatal(err)
	}
	if p.Extends != "baseline" || p.Rank != 20 || !p.Rootfs.ReadOnly || p.AppArmor.Profile != "hardened-default" {
		t.Errorf("hardened = %+v", p)
	}
	// Get returns a copy: changing it does not change the set.
	p.Capabilities.Allowed[0] = "CAP_SYS_ADMIN"
	p.Pids.Limit = 0
	again, _ := s.Get("hardened")
	if again.Capabilities.Allowed[0] != "CAP_NET_BIND_SERVICE" || again.Pids.Limit != 1024 {
		t.Errorf("Get shares memory with the set: %+v", again)
	}

	_, err = s.Get("nope")
	if !errors.Is(err, ErrUnknownProfile) {
		t.Fatalf("Get(nope) = %v, want ErrUnknownProfile", err)
	}
	if want := `unknown profile "nope" (known: baseline, hardened, restricted, strict)`; err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
	if _, err := s.Compare("strict", "nope"); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("Compare(strict, nope) = %v", err)
	}
	if _, err := s.AtLeast("nope", "strict"); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("AtLeast(nope, strict) = %v", err)
	}
	if ok, err := s.AtLeast("hardened", "hardened"); !ok || err != nil {
		t.Errorf("AtLeast(hardened, hardened) = %v, %v", ok, err)
	}
	var nilSet *Set
	if _, err := nilSet.Get("x"); !errors.Is(err, ErrUnknownProfile) {
		t.Errorf("nil set Get = %v", err)
	}
}

// TestClone fills every slice of a Profile (found by reflection, so a
// field added later is covered) and checks the clone shares none.
func TestClone(t *testing.T) {
	p := &Profile{}
	var fill func(v reflect.Value)
	fill = func(v reflect.Value) {
		switch v.Kind() {
		case reflect.Struct:
			for i := range v.NumField() {
				fill(v.Field(i))
			}
		case reflect.Slice:
			v.Set(reflect.MakeSlice(v.Type(), 1, 1))
			fill(v.Index(0))
		case reflect.String:
			v.SetString("x")
		case reflect.Map:
			v.Set(reflect.MakeMapWithSize(v.Type(), 1))
			k, e := reflect.New(v.Type().Key()).Elem(), reflect.New(v.Type().Elem()).Elem()
			fill(k)
			fill(e)
			v.SetMapIndex(k, e)
		case reflect.Pointer:
			t.Fatalf("Profile has a %s field: teach Clone about it", v.Kind())
		}
	}
	fill(reflect.ValueOf(p).Elem())
	c := p.Clone()
	if !reflect.DeepEqual(p, c) {
		t.Fatal("clone differs")
	}
	var check func(a, b reflect.Value, path string)
	check = func(a, b reflect.Value, path string) {
		switch a.Kind() {
		case reflect.Struct:
			for i := range a.NumField() {
				check(a.Field(i), b.Field(i), path+"."+a.Type().Field(i).Name)
			}
		case reflect.Slice:
			if a.Pointer() == b.Pointer() {
				t.Errorf("%s is shared", path)
			}
			check(a.Index(0), b.Index(0), path+"[0]")
		case reflect.Map:
			if a.Pointer() == b.Pointer() {
				t.Errorf("%s is shared", path)
			}
		}
	}
	check(reflect.ValueOf(p).Elem(), reflect.ValueOf(c).Elem(), "Profile")
	if (*Profile)(nil).Clone() != nil {
		t.Error("nil Clone")
	}
}

func TestParseGood(t *testing.T) {
	files, _ := filepath.Glob("testdata/good/*.toml")
	if len(files) == 0 {
		t.Fatal("no testdata")
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := Parse(data, f, nil); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestParseInherits(t *testing.T) {
	p, err := Parse([]byte("name = \"inherit\"\nextends = \"strict\"\n"), "x.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	strict, _ := Builtin().Get("strict")
	strict.Name, strict.Extends = "inherit", "strict"
	if !reflect.DeepEqual(p, strict) {
		t.Errorf("got %+v\nwant %+v", p, strict)
	}

	// Lists replace, tables merge key by key, rank is inherited or set.
	p, err = Parse([]byte(`name = "web"
extends = "hardened"
rank = 25
[rootfs]
scratch = [{ path = "/cache" }]
[seccomp]
deny = ["bpf"]
`), "web.toml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Rootfs.ReadOnly || len(p.Rootfs.Scratch) != 1 || p.Rootfs.Scratch[0].Path != "/cache" {
		t.Errorf("rootfs = %+v", p.Rootfs)
	}
	if !slices.Equal(p.Seccomp.Deny, []string{"bpf"}) || !p.Seccomp.NativeArchOnly || p.Seccomp.Base != "default" {
		t.Errorf("seccomp = %+v", p.Seccomp)
	}
	if p.Rank != 25 || p.Pids.Limit != 1024 {
		t.Errorf("rank %d pids %d", p.Rank, p.Pids.Limit)
	}
	// The base is untouched.
	r, _ := Builtin().Get("hardened")
	if len(r.Rootfs.Scratch) != 2 || len(r.Seccomp.Deny) < 10 {
		t.Errorf("base changed: %+v", r)
	}
}

// TestParseBad checks each bad file's message against its golden .err file
// (go test -run TestParseBad -update rewrites them).
func TestParseBad(t *testing.T) {
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
			_, err = Parse(data, filepath.Base(f), nil)
			if err == nil {
				t.Fatal("no error")
			}
			if !errors.Is(err, ErrInvalidProfile) {
				t.Errorf("error does not wrap ErrInvalidProfile: %v", err)
			}
			var pe *Error
			if !errors.As(err, &pe) || pe.File != filepath.Base(f) {
				t.Errorf("error does not name the file: %v", err)
			}
			golden.Check(t, strings.TrimSuffix(f, ".toml")+".err", []byte(err.Error()+"\n"), *update)
		})
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		names []string // want, on success
		err   string   // want, on failure (dir replaced by DIR)
	}{
		{
			name:  "no files",
			names: []string{"baseline", "hardened", "restricted", "strict"},
		},
		{
			name: "chain in any order",
			files: map[string]string{
				"a.toml":       "name = \"web-strict\"\nextends = \"web\"\nrank = 22\n[pids]\nlimit = 300\n",
				"b.toml":       "name = \"web\"\nextends = \"hardened\"\n[pids]\nlimit = 500\n",
				"notes.txt":    "not a profile",
				"c.toml.orig":  "not = a profile",
				"zz-base.toml": "name = \"loose\"\nrank = 1\n",
			},
			names: []string{"loose", "baseline", "hardened", "web", "web-strict", "restricted", "strict"},
		},
		{
			name:  "cycle",
			files: map[string]string{"a.toml": "name = \"a\"\nextends = \"b\"\n", "b.toml": "name = \"b\"\n\nextends = \"a\"\n"},
			err:   "DIR/a.toml:2: extends cycle: a -> b -> a",
		},
		{
			name:  "duplicate name",
			files: map[string]string{"a.toml": "name = \"x\"\n", "b.toml": "# again\nname = \"x\"\n"},
			err:   "DIR/b.toml:2: profile \"x\" is already defined in DIR/a.toml",
		},
		{
			name:  "built-in name",
			files: map[string]string{"strict.toml": "name = \"strict\"\nrank = 99\n"},
			err:   "DIR/strict.toml:1: profile \"strict\" is already defined in builtin/strict.toml",
		},
		{
			name:  "unknown base",
			files: map[string]string{"a.toml": "name = \"a\"\nextends = \"b\"\n"},
			err:   "DIR/a.toml:2: extends unknown profile \"b\" (known: baseline, hardened, restricted, strict)",
		},
		{
			name:  "invalid base",
			files: map[string]string{"a.toml": "name = \"a\"\nextends = \"b\"\n", "b.toml": "name = \"b\"\n[pids]\nlimit = -1\n"},
			err:   "DIR/b.toml:3: pids limit -1 is negative (0 means no limit)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := writeFiles(t, tc.files)
			s, err := Load(dir)
			if tc.err != "" {
				if err == nil {
					t.Fatalf("no error; names %v", s.Names())
				}
				if got := strings.ReplaceAll(err.Error(), dir, "DIR"); got != tc.err {
					t.Errorf("error %q\nwant  %q", got, tc.err)
				}
				if !errors.Is(err, ErrInvalidProfile) {
					t.Errorf("does not wrap ErrInvalidProfile")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := s.Names(); !slices.Equal(got, tc.names) {
				t.Errorf("Names() = %v, want %v", got, tc.names)
			}
		})
	}

	// The chain's values are inherited along it.
	dir := writeFiles(t, map[string]string{
		"a.toml": "name = \"web-strict\"\nextends = \"web\"\n[pids]\nlimit = 300\n",
		"b.toml": "name = \"web\"\nextends = \"hardened\"\nrank = 21\n[capabilities]\nallowed = []\n",
	})
	s, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := s.Get("web-strict")
	if p.Rank != 21 || len(p.Capabilities.Allowed) != 0 || p.Pids.Limit != 300 || !p.Rootfs.ReadOnly || p.Extends != "web" {
		t.Errorf("web-strict = %+v", p)
	}
	if s.Source("web-strict") != filepath.Join(dir, "a.toml") {
		t.Errorf("Source = %q", s.Source("web-strict"))
	}
	// Built-ins still there and unchanged.
	if ok, _ := s.AtLeast("strict", "web-strict"); !ok {
		t.Error("strict below web-strict")
	}
}

func TestLoadDirs(t *testing.T) {
	s, err := Load(filepath.Join(t.TempDir(), "missing"))
	if err != nil || len(s.Names()) != 4 {
		t.Errorf("missing dir: %v, %v", s, err)
	}
	s, err = Load("")
	if err != nil || len(s.Names()) != 4 {
		t.Errorf("empty dir name: %v, %v", s, err)
	}
	s, err = Load("testdata/good")
	if err != nil {
		t.Fatalf("testdata/good: %v", err)
	}
	if got, want := s.Names(), []string{"standalone", "baseline", "hardened", "inherit", "restricted", "web", "sandboxed", "strict"}; !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}

	if os.Geteuid() == 0 {
		t.Log("running as root: the unreadable-file case cannot be tested")
	} else {
		dir := writeFiles(t, map[string]string{"a.toml": "name = \"a\"\n"})
		if err := os.Chmod(filepath.Join(dir, "a.toml"), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := Load(dir); !errors.Is(err, ErrInvalidProfile) || !errors.Is(err, os.ErrPermission) {
			t.Errorf("unreadable file: %v", err)
		}
	}
	// A directory named *.toml is skipped; a file that is not a dir is an error.
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "x.toml"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(dir); err != nil {
		t.Errorf("dir named x.toml: %v", err)
	}
	if _, err := Load("testdata/good/web.toml"); !errors.Is(err, ErrInvalidProfile) {
		t.Errorf("Load(file) = %v", err)
	}
	// An oversized file is refused.
	big := writeFiles(t, map[string]string{"big.toml": "name = \"big\"\n#" + strings.Repeat("x", maxFileSize) + "\n"})
	if _, err := Load(big); !errors.Is(err, ErrInvalidProfile) {
		t.Errorf("big file: %v", err)
	}
}

// TestBuiltinHostPaths: every built-in profile denies at least these host
// paths (each a way to the node's root seen or known: procfs and sysfs
// (core_pattern), device nodes, the host's root, boot, the runtimes' and
// the kubelet's state and sockets), and lets through what containerd's CRI
// binds into a pod.
func TestBuiltinHostPaths(t *testing.T) {
	for _, name := range Builtin().Names() {
		p, _ := Builtin().Get(name)
		for _, d := range []string{"/", "/proc", "/sys", "/dev", "/boot", "/etc", "/root", "/usr", "/run", "/var/run", "/var/lib/kubelet", "/var/lib/containerd", "/var/lib/docker"} {
			if !slices.Contains(p.Mounts.DenyHostPaths, d) {
				t.Errorf("%s does not deny %s", name, d)
			}
		}
		for _, a := range []string{"/var/lib/kubelet/pods/{pod-uid}/", "/var/lib/containerd/io.containerd.grpc.v1.cri/sandboxes/{sandbox-id}/", "/run/containerd/io.containerd.grpc.v1.cri/sandboxes/{sandbox-id}/"} {
			if !slices.Contains(p.Mounts.AllowHostPathPrefixes, a) {
				t.Errorf("%s does not allow %s", name, a)
			}
		}
		if !p.Mounts.StandardFilesystemsOnly || len(p.Devices.Allowed) != 0 {
			t.Errorf("%s: mounts %+v devices %+v", name, p.Mounts, p.Devices)
		}
	}
	r, _ := Builtin().Get("hardened")
	for _, d := range []string{"/home", "/var/log", "/lib", "/bin", "/sbin", "/lib64"} {
		if !slices.Contains(r.Mounts.DenyHostPaths, d) {
			t.Errorf("hardened does not deny %s", d)
		}
	}
}

func TestParseDevice(t *testing.T) {
	for in, want := range map[string]Device{
		"c 1:3":       {'c', 1, 3},
		"c 195:*":     {'c', 195, -1},
		"b 8:16":      {'b', 8, 16},
		"c 4095:0":    {'c', 4095, 0},
		"b 0:1048575": {'b', 0, 1048575},
	} {
		if got, err := ParseDevice(in); err != nil || got != want {
			t.Errorf("ParseDevice(%q) = %+v, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "c", "c 1", "c *:*", "c *:3", "a 1:3", "p 1:3", "c 1:3 rwm", "c -1:3", "c 1:-1", "c 1:1048576", "c +1:3", " c 1:3", "c  1:3"} {
		if _, err := ParseDevice(in); err == nil {
			t.Errorf("ParseDevice(%q) accepted", in)
		}
	}
}

func TestKnownCapabilities(t *testing.T) {
	caps := KnownCapabilities()
	if len(caps) < 41 {
		t.Errorf("%d capabilities known, want at least 41", len(caps))
	}
	for _, c := range []string{"CAP_CHOWN", "CAP_SYS_ADMIN", "CAP_BPF", "CAP_CHECKPOINT_RESTORE", "CAP_PERFMON"} {
		if !slices.Contains(caps, c) {
			t.Errorf("%s not known", c)
		}
	}
}

func TestIsKnownSyscall(t *testing.T) {
	for name, want := range map[string]bool{
		"read": true, "io_uring_setup": true, "umount": true, "memfd_create": true,
		"": false, "not_a_syscall": false, "READ": false, "read\x00x": false, "read ": false,
	} {
		if got := IsKnownSyscall(name); got != want {
			t.Errorf("IsKnownSyscall(%q) = %v", name, got)
		}
	}
}
