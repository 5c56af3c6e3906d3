package hardening

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hardened-dev/hardened/profiles"
)

// The built-ins are in order: each is at least as strict as every profile
// ranked below it, on every reference spec.
func TestBuiltinProfilesOrdered(t *testing.T) {
	set := profiles.Builtin()
	outs := map[string][]refOutcome{}
	for _, n := range set.Names() {
		outs[n] = hardenReferences(mustProfile(t, n))
	}
	names := set.Names()
	for i, lo := range names {
		for _, hi := range names[i+1:] {
			if why := looserProfile(outs[hi], outs[lo]); why != "" {
				t.Errorf("%s is looser than %s: %s", hi, lo, why)
			}
			// And the order is strict somewhere: the lower profile is
			// looser than the higher one on some reference.
			if looserProfile(outs[lo], outs[hi]) == "" {
				t.Errorf("%s and %s are equally strict on every reference spec", lo, hi)
			}
		}
	}
	// Every reference spec is accepted by some built-in, else it compares
	// nothing between them; "host path", "host network" and "sysctls" are
	// for operator profiles that allow more host paths, the node's
	// namespaces or more sysctls than Pod Security's baseline.
	operatorOnly := map[string]bool{"host path": true, "host network": true, "sysctls": true}
	for i, ref := range referenceSpecs() {
		if !operatorOnly[ref.name] && outs["baseline"][i].refused && outs["hardened"][i].refused && outs["strict"][i].refused {
			t.Errorf("reference %q is refused by every built-in", ref.name)
		}
	}
}

func loadOrderSet(t *testing.T, files map[string]string) (*profiles.Set, error) {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	set, err := profiles.Load(dir)
	if err != nil {
		t.Fatal(err)
	}
	return set, CheckProfileOrder(set)
}

func TestCheckProfileOrder(t *testing.T) {
	for _, tt := range []struct {
		name string
		body string
		want string // "" accepted; else in the error
	}{
		{"same as its base", "name = \"web\"\nextends = \"hardened\"\n", ""},
		{"stricter, between restricted and strict", "name = \"web\"\nextends = \"restricted\"\nrank = 27\n[pids]\nlimit = 512\n", ""},
		{"stricter but ranked below hardened", "name = \"web\"\nextends = \"hardened\"\nrank = 15\n[pids]\nlimit = 512\n",
			`profile "hardened" (rank 20) ranks at or above "web" (rank 15) but is looser: reference spec "container": the pids limit is above 512`},
		{"a device at hardened's rank", "name = \"gpu\"\nextends = \"hardened\"\n[devices]\nallowed = [\"c 195:*\"]\n",
			`profile "gpu" (rank 20) ranks at or above "baseline" (rank 10) but is looser: reference spec "gpu"`},
		{"a capability at hardened's rank", "name = \"net\"\nextends = \"hardened\"\n[capabilities]\nallowed = [\"CAP_NET_BIND_SERVICE\", \"CAP_NET_ADMIN\"]\n",
			"capabilities hold CAP_NET_ADMIN"},
		{"a higher pids limit at strict's rank", "name = \"big\"\nextends = \"strict\"\n[pids]\nlimit = 4096\n",
			"the pids limit is above 256"},
		{"writable rootfs ranked above hardened", "name = \"rw\"\nextends = \"hardened\"\nrank = 25\n[rootfs]\nread_only = false\n",
			"the rootfs is writable"},
		{"exec allowed at strict's rank", "name = \"dbg\"\nextends = \"strict\"\n[process]\ndeny_exec = false\n",
			"allows exec into the container"},
		{"runc at strict's rank", "name = \"fast\"\nextends = \"strict\"\nruntime = \"runc\"\n",
			"prefers gVisor"},
		{"a learned syscall at baseline's rank", "name = \"web\"\nextends = \"baseline\"\n[seccomp]\nbase = \"default\"\nallow = [\"unshare\"]\n",
			"unshare"},
		{"a learned syscall ranked below baseline", "name = \"web\"\nextends = \"baseline\"\nrank = 9\n[seccomp]\nbase = \"default\"\nallow = [\"unshare\"]\n", ""},
		{"a looser profile ranked below baseline", "name = \"open\"\nextends = \"baseline\"\nrank = 5\n[devices]\nallowed = [\"c 195:*\"]\n", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := loadOrderSet(t, map[string]string{"p.toml": tt.body})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want %q", err, tt.want)
			}
			if !errors.Is(err, profiles.ErrInvalidProfile) || !strings.Contains(err.Error(), "p.toml") {
				t.Errorf("error does not name the file or wrap ErrInvalidProfile: %v", err)
			}
		})
	}
}
