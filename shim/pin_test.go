package shim

import (
	"bufio"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"

	"github.com/hardened-dev/hardened/internal/decide"
)

// pinService is a test service for pinning, which mounts: root only (the
// unit tests run as root in CI). Whatever a failing test leaves mounted
// under its run directory is detached before the temp dirs are removed
// (RemoveAll would descend into a staged source).
func pinService(t *testing.T, labels labelSource) *testService {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIPPED: pinning mount sources needs root (bind mounts); CI runs the unit tests as root")
	}
	ts := newTestService(t, labels)
	t.Cleanup(func() {
		for _, m := range mountsUnder(t, ts.runDir) {
			_ = unix.Mount("", m, "", unix.MS_PRIVATE|unix.MS_REC, "")
			_ = unix.Unmount(m, unix.MNT_DETACH)
		}
	})
	return ts
}

// mountsUnder lists the mount points under dir in this process's mount
// namespace.
func mountsUnder(t *testing.T, dir string) []string {
	t.Helper()
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) > 4 && (fields[4] == dir || strings.HasPrefix(fields[4], dir+"/")) {
			out = append(out, fields[4])
		}
	}
	return out
}

func isMountPoint(t *testing.T, p string) bool {
	t.Helper()
	return slices.Contains(mountsUnder(t, p), p)
}

// assertNothingStaged checks that no staging mount or directory is left.
func assertNothingStaged(t *testing.T, ts *testService) {
	t.Helper()
	if m := mountsUnder(t, ts.runDir); len(m) > 0 {
		t.Errorf("mounts left under the run dir: %v", m)
	}
	if _, err := os.Stat(filepath.Join(ts.runDir, decide.StagingSubdir, "test")); !errors.Is(err, os.ErrNotExist) {
		ents, _ := os.ReadDir(filepath.Join(ts.runDir, decide.StagingSubdir, "test"))
		t.Errorf("the namespace's staging directory is left (%v): %v", err, ents)
	}
}

// dataDir makes dir/name holding a MARKER file.
func dataDir(t *testing.T, dir, name string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(p, "MARKER"), []byte(name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func withMounts(ms ...specs.Mount) oci.SpecOpts { return oci.WithMounts(ms) }

func bindOf(src, dst string, opts ...string) specs.Mount {
	return specs.Mount{Type: "bind", Source: src, Destination: dst, Options: append([]string{"rbind"}, opts...)}
}

// stagedSources returns config.json's sources of the mounts at the given
// destinations.
func stagedSources(t *testing.T, bundle string, dsts ...string) []string {
	t.Helper()
	s := readSpecFile(t, filepath.Join(bundle, configFile))
	var out []string
	for _, d := range dsts {
		for _, m := range s.Mounts {
			if m.Destination == d {
				out = append(out, m.Source)
			}
		}
	}
	if len(out) != len(dsts) {
		t.Fatalf("config.json mounts %v, want %v", s.Mounts, dsts)
	}
	return out
}

func TestPinRefusesSymlinks(t *testing.T) {
	ts := pinService(t, nil)
	dir := t.TempDir()
	data := dataDir(t, dir, "data")
	for name, target := range map[string]string{"last": data, "proc": "/proc", "parent": dir} {
		if err := os.Symlink(target, filepath.Join(dir, "link-"+name)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct{ name, src, link string }{
		{"last element, to an allowed directory", filepath.Join(dir, "link-last"), "link-last"},
		{"last element, to /proc", filepath.Join(dir, "link-proc"), "link-proc -> /proc"},
		{"middle element", filepath.Join(dir, "link-parent", "data"), "link-parent -> " + dir},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := "c" + strings.NewReplacer(" ", "", ",", "", "/", "").Replace(tc.name)
			bundle := ts.bundle(t, id, defaultSpec(t, id, oci.WithProcessArgs("/bin/sh"), withMounts(bindOf(tc.src, "/data"))))
			before, _ := os.ReadFile(filepath.Join(bundle, configFile))
			_, err := ts.create(t, id, bundle, policyOpts(t, pinPolicy("enforce")))
			wantCode(t, err, codes.FailedPrecondition, "mounts[", "].source", tc.link, "symlink", "swapped between the check and runc's mount", "resolve it in the pod spec")
			if len(ts.inner.creates) != 0 {
				t.Error("the stock Create ran")
			}
			after, _ := os.ReadFile(filepath.Join(bundle, configFile))
			if string(before) != string(after) {
				t.Error("config.json rewritten for a refused container")
			}
			assertNothingStaged(t, ts)
		})
	}
}

func TestPinRefusesMissingSource(t *testing.T) {
	ts := pinService(t, nil)
	missing := filepath.Join(t.TempDir(), "nope", "data")
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh"), withMounts(bindOf(missing, "/data"))))
	_, err := ts.create(t, "c", bundle, policyOpts(t, pinPolicy("enforce")))
	wantCode(t, err, codes.FailedPrecondition, "mounts[", missing, "does not exist")
	if len(ts.inner.creates) != 0 {
		t.Error("the stock Create ran")
	}
	assertNothingStaged(t, ts)
}

func TestPinStagesDirectoriesFilesAndRoot(t *testing.T) {
	ts := pinService(t, nil)
	dir := t.TempDir()
	data := dataDir(t, dir, "data")
	rootfs := dataDir(t, dir, "rootfs")
	file := filepath.Join(dir, "hosts")
	if err := os.WriteFile(file, []byte("127.0.0.1 pinned\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	spec := defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh"), oci.WithRootFSPath(rootfs), withMounts(
		bindOf(data, "/a"), bindOf(data, "/b", "ro"),
		specs.Mount{Type: "bind", Source: file, Destination: "/etc/hosts", Options: []string{"bind", "ro"}},
	))
	bundle := ts.bundle(t, "c", spec)
	var staged []string
	ts.inner.onCreate = func(*taskAPI.CreateTaskRequest) {
		staged = stagedSources(t, bundle, "/a", "/b", "/etc/hosts")
		s := readSpecFile(t, filepath.Join(bundle, configFile))
		staged = append(staged, s.Root.Path)
		for i, want := range []string{"data\n", "data\n", "127.0.0.1 pinned\n", "rootfs\n"} {
			p := staged[i]
			if !strings.HasPrefix(p, filepath.Join(ts.runDir, decide.StagingSubdir, "test", "c")+"/") || !isMountPoint(t, p) {
				t.Errorf("source %q is not a staging mount", p)
			}
			if i != 2 {
				p = filepath.Join(p, "MARKER")
			}
			if got, err := os.ReadFile(p); err != nil || string(got) != want {
				t.Errorf("%s reads %q (%v), want %q", p, got, err, want)
			}
		}
	}
	if _, err := ts.create(t, "c", bundle, policyOpts(t, pinPolicy("enforce"))); err != nil {
		t.Fatal(err)
	}
	if len(staged) != 4 {
		t.Fatal("the stock Create did not run")
	}
	rep := readReport(t, bundle)
	var pinned []string
	for _, p := range rep.Pinned {
		pinned = append(pinned, p.Field+"="+p.Source)
		if !slices.Contains(staged, p.Staged) {
			t.Errorf("report: %s staged at %q, config.json names %v", p.Field, p.Staged, staged)
		}
	}
	if len(pinned) != 4 || pinned[0] != "root.path="+rootfs {
		t.Errorf("report pinned %v, want root.path and the three binds", pinned)
	}
	assertNothingStaged(t, ts)
}

// The worst moment: the source's parent is writable by someone else, who
// swaps the checked directory for a symlink to / after the shim checked
// it and before runc mounts it. The staging mount still shows the
// directory that was checked.
func TestPinSwapAfterPinningChangesNothing(t *testing.T) {
	ts := pinService(t, nil)
	dir := t.TempDir()
	data := dataDir(t, dir, "data")
	var fi os.FileInfo
	testHookAfterPin = func(context.Context, string, string) error {
		var err error
		if fi, err = os.Stat(data); err != nil {
			return err
		}
		if err := os.Rename(data, data+".orig"); err != nil {
			return err
		}
		return os.Symlink("/", data)
	}
	t.Cleanup(func() { testHookAfterPin = nil })
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh"), withMounts(bindOf(data, "/data"))))
	checked := false
	ts.inner.onCreate = func(*taskAPI.CreateTaskRequest) {
		checked = true
		if target, err := os.Readlink(data); err != nil || target != "/" {
			t.Fatalf("the hook did not swap the source: %q, %v", target, err)
		}
		p := stagedSources(t, bundle, "/data")[0]
		ents, err := os.ReadDir(p)
		if err != nil || len(ents) != 1 || ents[0].Name() != "MARKER" {
			t.Errorf("staged %s lists %v (%v), want the checked directory's MARKER only", p, ents, err)
		}
		if got, err := os.Stat(p); err != nil || !os.SameFile(got, fi) {
			t.Errorf("staged %s is not the checked directory (%v)", p, err)
		}
	}
	if _, err := ts.create(t, "c", bundle, policyOpts(t, pinPolicy("enforce"))); err != nil {
		t.Fatal(err)
	}
	if !checked {
		t.Fatal("the stock Create did not run")
	}
	assertNothingStaged(t, ts)
}

func TestPinCleanedUpOnFailure(t *testing.T) {
	dir := t.TempDir()
	a, b := dataDir(t, dir, "a"), dataDir(t, dir, "b")
	twoBinds := func(t *testing.T, ts *testService, id string) string {
		return ts.bundle(t, id, defaultSpec(t, id, oci.WithProcessArgs("/bin/sh"), withMounts(bindOf(a, "/a"), bindOf(b, "/b"))))
	}
	t.Run("stock Create fails", func(t *testing.T) {
		ts := pinService(t, nil)
		ts.inner.createErr = errTest
		staged := false
		ts.inner.onCreate = func(*taskAPI.CreateTaskRequest) { staged = len(mountsUnder(t, ts.runDir)) == 2 }
		if _, err := ts.create(t, "c", twoBinds(t, ts, "c"), policyOpts(t, pinPolicy("enforce"))); !errors.Is(err, errTest) {
			t.Fatalf("Create: %v, want the stock Create's error", err)
		}
		if !staged {
			t.Error("the sources were not staged when the stock Create ran")
		}
		assertNothingStaged(t, ts)
	})
	t.Run("refused after pinning", func(t *testing.T) {
		ts := pinService(t, nil)
		testHookAfterPin = func(context.Context, string, string) error { return errTest }
		t.Cleanup(func() { testHookAfterPin = nil })
		_, err := ts.create(t, "c", twoBinds(t, ts, "c"), policyOpts(t, pinPolicy("enforce")))
		wantCode(t, err, codes.FailedPrecondition, "test hook")
		if len(ts.inner.creates) != 0 {
			t.Error("the stock Create ran")
		}
		assertNothingStaged(t, ts)
	})
	t.Run("second staging mount fails", func(t *testing.T) {
		ts := pinService(t, nil)
		calls := 0
		bindMount = func(src, target, fstype string, flags uintptr, data string) error {
			if calls++; calls == 2 {
				return unix.EPERM
			}
			return unix.Mount(src, target, fstype, flags, data)
		}
		t.Cleanup(func() { bindMount = unix.Mount })
		_, err := ts.create(t, "c", twoBinds(t, ts, "c"), policyOpts(t, pinPolicy("enforce")))
		if err == nil || !strings.Contains(err.Error(), "failed to stage") {
			t.Fatalf("Create: %v, want a staging failure", err)
		}
		if len(ts.inner.creates) != 0 {
			t.Error("the stock Create ran")
		}
		assertNothingStaged(t, ts)
	})
}

// A gVisor pod's app container: runsc's gofer opens its sources in
// `runsc start`, so they stay staged until Start returns (or Delete).
func TestPinGVisorAppContainerHeldUntilStart(t *testing.T) {
	ts := pinService(t, nil)
	data := dataDir(t, t.TempDir(), "data")
	opts := policyOpts(t, pinPolicy("enforce"))
	gvisor := map[string]string{"hardened.dev/runtime": "gvisor"}
	sb := ts.bundle(t, "sb", defaultSpec(t, "sb", oci.WithProcessArgs("/pause"), oci.WithAnnotations(podAnn("sandbox", "sb", gvisor)), withMounts(bindOf(data, "/data"))))
	if _, err := ts.create(t, "sb", sb, opts); err != nil {
		t.Fatal(err)
	}
	if rep := readReport(t, sb); rep.Runtime != "gvisor" {
		t.Fatalf("sandbox runs on %q, want gvisor", rep.Runtime)
	}
	assertNothingStaged(t, ts) // the sandbox (runsc's root container): released at create

	for _, id := range []string{"started", "deleted"} {
		c := ts.bundle(t, id, defaultSpec(t, id, oci.WithProcessArgs("/bin/sh"), oci.WithAnnotations(podAnn("container", "sb", gvisor)), withMounts(bindOf(data, "/data"))))
		if _, err := ts.create(t, id, c, opts); err != nil {
			t.Fatal(err)
		}
		p := stagedSources(t, c, "/data")[0]
		if !isMountPoint(t, p) {
			t.Fatalf("%s: %s not staged after Create", id, p)
		}
		if id == "started" {
			_, err := ts.Start(testCtx(), &taskAPI.StartRequest{ID: id})
			if err != nil {
				t.Fatal(err)
			}
		} else if _, err := ts.Delete(testCtx(), &taskAPI.DeleteRequest{ID: id}); err != nil {
			t.Fatal(err)
		}
		assertNothingStaged(t, ts)
	}
}

func TestPinAuditModeChecksWithoutStaging(t *testing.T) {
	ts := pinService(t, nil)
	dir := t.TempDir()
	data := dataDir(t, dir, "data")
	link := filepath.Join(dir, "link")
	if err := os.Symlink(data, link); err != nil {
		t.Fatal(err)
	}
	audit := policyOpts(t, pinPolicy("audit"))
	for _, tc := range []struct{ id, src, refused string }{{"plain", data, ""}, {"link", link, "symlink"}} {
		bundle := ts.bundle(t, tc.id, defaultSpec(t, tc.id, oci.WithProcessArgs("/bin/sh"), withMounts(bindOf(tc.src, "/data"))))
		before, _ := os.ReadFile(filepath.Join(bundle, configFile))
		if _, err := ts.create(t, tc.id, bundle, audit); err != nil {
			t.Fatalf("%s: audit mode refused: %v", tc.id, err)
		}
		if after, _ := os.ReadFile(filepath.Join(bundle, configFile)); string(after) != string(before) {
			t.Errorf("%s: audit mode rewrote config.json", tc.id)
		}
		rep := readReport(t, bundle)
		if tc.refused == "" && rep.Refused != "" || !strings.Contains(rep.Refused, tc.refused) {
			t.Errorf("%s: report refused %q, want %q", tc.id, rep.Refused, tc.refused)
		}
		if len(rep.Pinned) != 1 || rep.Pinned[0].Source != tc.src || rep.Pinned[0].Staged != "" {
			t.Errorf("%s: report pinned %+v, want the source, not staged", tc.id, rep.Pinned)
		}
		if !containsSubstr(rep.Notes, "audit mode: host paths are opened without following symlinks") {
			t.Errorf("%s: notes %q do not say what audit mode does with host paths", tc.id, rep.Notes)
		}
	}
	if len(ts.inner.creates) != 2 {
		t.Errorf("inner creates %d, want both", len(ts.inner.creates))
	}
	assertNothingStaged(t, ts)
}

// The read-ahead decides (and encodes config.json) before the Create; the
// Create still pins, so a source swapped in between is refused.
func TestPinSpeculatedPlanStillPins(t *testing.T) {
	pol := policyOpts(t, pinPolicy("enforce"))
	ts := pinService(t, &fakeLabels{info: map[string]*containerInfo{"c": {RuntimeOptions: pol}}})
	dir := t.TempDir()
	data := dataDir(t, dir, "data")
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh"), withMounts(bindOf(data, "/data"))))
	ts.speculated(t, bundle)
	if err := os.Rename(data, data+".orig"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/proc", data); err != nil {
		t.Fatal(err)
	}
	_, err := ts.create(t, "c", bundle, pol)
	wantCode(t, err, codes.FailedPrecondition, "symlink", "/proc")
	if len(ts.gated) != 1 {
		t.Errorf("gate runs %v: the Create did not take the read-ahead's plan", ts.gated)
	}
	if len(ts.inner.creates) != 0 {
		t.Error("the stock Create ran")
	}
	assertNothingStaged(t, ts)
}

// A staged rbind of a shared mount is in the source's peer group: its
// unmount must not take the host's submounts of the source with it.
func TestPinReleaseKeepsHostSubmounts(t *testing.T) {
	ts := pinService(t, nil)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.Mkdir(src, 0o755); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(src, "sub")
	mustMount(t, "tmpfs", src, "tmpfs", 0)
	mustMount(t, "", src, "", unix.MS_SHARED)
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	mustMount(t, "tmpfs", sub, "tmpfs", 0)
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh"), withMounts(bindOf(src, "/data"))))
	ts.inner.onCreate = func(*taskAPI.CreateTaskRequest) {
		if p := stagedSources(t, bundle, "/data")[0]; !isMountPoint(t, filepath.Join(p, "sub")) {
			t.Errorf("the rbind staging of %s lacks its submount", src)
		}
	}
	if _, err := ts.create(t, "c", bundle, policyOpts(t, pinPolicy("enforce"))); err != nil {
		t.Fatal(err)
	}
	if !isMountPoint(t, sub) {
		t.Errorf("the host's submount %s went with the staging mount", sub)
	}
	assertNothingStaged(t, ts)
}

func mustMount(t *testing.T, src, target, fstype string, flags uintptr) {
	t.Helper()
	if err := unix.Mount(src, target, fstype, flags, ""); err != nil {
		t.Fatalf("mount %s: %v", target, err)
	}
	if flags == 0 {
		t.Cleanup(func() { _ = unix.Unmount(target, unix.MNT_DETACH) })
	}
}

// pinPolicy is testPolicy with the node's consent to mount host paths
// under the temp directory, where the tests make their sources.
func pinPolicy(mode string) string {
	return "allow_host_path_prefixes = [{ prefix = \"" + filepath.Clean(os.TempDir()) + "/\" }]\n" + testPolicy(mode, "")
}
