//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hardened-dev/hardened/integration/harness"
)

// swapHook is the shim's after-pin hook (harness.TestHookEnv): when the
// file swap-target in dir names a directory, it moves that directory
// aside, puts a symlink to / in its place (what a container that can write
// the parent directory could do between the shim's check and runc's
// mount), and records the container id in hook-ran. Otherwise it does
// nothing.
const swapHook = `#!/bin/sh
set -e
dir=%q
[ -f "$dir/swap-target" ] || exit 0
vol=$(cat "$dir/swap-target")
rm "$dir/swap-target"
mv "$vol" "$vol.orig"
ln -s / "$vol"
echo "$1" >> "$dir/hook-ran"
`

// TestPinnedSourceSwapped: `ctr run --mount` of a directory that is swapped
// for a symlink to / after the shim pinned it and right before runc (or
// runsc) mounts it. The container sees the directory that was checked, not
// the host's root, and nothing of the staging is left behind.
func TestPinnedSourceSwapped(t *testing.T) {
	hookDir, err := os.MkdirTemp("", "hd-hook-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(hookDir) })
	hook := filepath.Join(hookDir, "after-pin")
	if err := os.WriteFile(hook, []byte(fmt.Sprintf(swapHook, hookDir)), 0o755); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, harness.TestHookEnv+"="+hook)
	for _, tc := range []struct {
		name  string
		flags []string
	}{
		{"runc", nil},
		{"gvisor", []string{"--annotation", harness.AnnotationRuntime + "=gvisor"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			vol := filepath.Join(e.d.Dir, "vol-"+tc.name)
			if err := os.Mkdir(vol, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(vol, "MARKER"), []byte("checked-"+tc.name+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(hookDir, "swap-target"), []byte(vol), 0o644); err != nil {
				t.Fatal(err)
			}
			id := e.id("swap-" + tc.name)
			res := ctrRunWithMount(t, e, id, vol, tc.flags, "ls -a /data; cat /data/MARKER")
			ran, _ := os.ReadFile(filepath.Join(hookDir, "hook-ran"))
			if !strings.Contains(string(ran), id) {
				t.Fatalf("the shim's after-pin hook did not run for %s (hook-ran: %q): is the shim built with the %s tag?\n%s", id, ran, harness.TestHookTag, res.Stderr)
			}
			if target, err := os.Readlink(vol); err != nil || target != "/" {
				t.Fatalf("%s was not swapped for a symlink to /: %q, %v", vol, target, err)
			}
			if res.ExitCode != 0 {
				t.Fatalf("ctr run (exit %d):\n%s%s", res.ExitCode, res.Stdout, res.Stderr)
			}
			t.Logf("the container's /data after the swap:\n%s\nstderr: %s", res.Stdout, res.Stderr)
			if got := strings.Fields(res.Stdout); strings.Join(got, " ") != ". .. MARKER checked-"+tc.name {
				t.Errorf("/data lists %q, want the checked directory (. .. MARKER, reading checked-%s), not the host's root", got, tc.name)
			}
			if left := e.d.Leftovers(context.Background(), e.ns); len(left) > 0 {
				t.Errorf("left behind after the run:\n  %s", strings.Join(left, "\n  "))
			}
		})
	}
}

// TestPinnedSourceSymlinkRefused: a bind source with a symlink in it is
// refused by the shim, naming the spec field and why, and nothing is
// staged.
func TestPinnedSourceSymlinkRefused(t *testing.T) {
	e := newEnv(t)
	data := filepath.Join(e.d.Dir, "parent", "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range [][2]string{{"link", data}, {"plink", filepath.Dir(data)}} {
		if err := os.Symlink(l[1], filepath.Join(e.d.Dir, l[0])); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ src, names string }{
		{filepath.Join(e.d.Dir, "link"), filepath.Join(e.d.Dir, "link") + " -> " + data},
		{filepath.Join(e.d.Dir, "plink", "data"), filepath.Join(e.d.Dir, "plink") + " -> " + filepath.Dir(data)},
	} {
		res := ctrRunWithMount(t, e, e.id("symlink"), tc.src, nil, "true")
		t.Logf("ctr run with source %s: exit %d, stderr: %s", tc.src, res.ExitCode, strings.TrimSpace(res.Stderr))
		if res.ExitCode == 0 {
			t.Fatalf("a bind source with a symlink in it (%s) ran", tc.src)
		}
		assertShimRefusal(t, "bind source "+tc.src, fmt.Errorf("%s", res.Stderr), "mounts[", "].source", "symlink", tc.names, "resolve it in the pod spec")
	}
	if left := e.d.Leftovers(context.Background(), e.ns); len(left) > 0 {
		t.Errorf("left behind after the refusals:\n  %s", strings.Join(left, "\n  "))
	}
}

// ctrRunWithMount is `ctr run --rm` of busybox through the hardened shim
// with src bind-mounted read-only at /data, running script, under a node
// policy that consents to read-only host paths in the test's temp dir
// (without it, the source is refused before it is pinned).
func ctrRunWithMount(t *testing.T, e *env, id, src string, flags []string, script string) harness.CtrResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, 2*time.Minute)
	defer cancel()
	pol := e.policy(fmt.Sprintf("allow_host_path_prefixes = [{ prefix = %q, read_only = true }]\n", e.d.Dir+"/"))
	args := append([]string{"--runtime", harness.RuntimeHardened, "--runtime-config-path", pol,
		"--mount", "type=bind,src=" + src + ",dst=/data,options=rbind:ro"}, flags...)
	res, err := e.d.CtrRun(ctx, e.ns, args, harness.ImageBusybox, id, "sh", "-c", script)
	if err != nil {
		t.Fatalf("ctr run: %v", err)
	}
	return res
}
