package shim

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"

	"github.com/hardened-dev/hardened/internal/hostfacts"
	"github.com/hardened-dev/hardened/shim/runscwrap"
)

func TestCreateEnforceRewritesBundle(t *testing.T) {
	ts := newTestService(t, nil)
	orig := defaultSpec(t, "web", oci.WithProcessArgs("/bin/sh"), oci.WithAddedCapabilities([]string{"CAP_SYS_ADMIN"}))
	bundle := ts.bundle(t, "web", orig)
	origBytes, _ := os.ReadFile(filepath.Join(bundle, configFile))

	r, err := ts.create(t, "web", bundle, policyOpts(t, testPolicy("enforce", "")))
	if err != nil {
		t.Fatal(err)
	}
	if len(ts.inner.creates) != 1 {
		t.Fatalf("inner Create called %d times", len(ts.inner.creates))
	}
	o := passedOptions(t, r)
	if o.BinaryName != "/bin/true" || o.Root != "/run/test-runc" {
		t.Errorf("runc options %+v, want the policy's runc binary and root", o)
	}
	if !slices.Equal(ts.gated, []string{"/bin/true"}) {
		t.Errorf("gate saw %v, want the runc binary", ts.gated)
	}

	got := readSpecFile(t, filepath.Join(bundle, configFile))
	if slices.Contains(got.Process.Capabilities.Bounding, "CAP_SYS_ADMIN") || slices.Contains(got.Process.Capabilities.Effective, "CAP_CHOWN") {
		t.Errorf("config.json keeps capabilities the hardened profile drops: %v", got.Process.Capabilities.Bounding)
	}
	if got.Root == nil || !got.Root.Readonly {
		t.Error("config.json: rootfs not read-only under hardened")
	}
	if got.Linux.Resources == nil || got.Linux.Resources.Pids == nil || got.Linux.Resources.Pids.Limit == nil || *got.Linux.Resources.Pids.Limit != 1024 {
		t.Errorf("config.json: pids limit %+v, want 1024", got.Linux.Resources.Pids)
	}
	kept, err := os.ReadFile(filepath.Join(bundle, origConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(kept, origBytes) {
		t.Error("config.json.orig is not containerd's original")
	}

	rep := readReport(t, bundle)
	if rep.ContainerID != "web" || rep.Profile != "hardened" || rep.Runtime != "runc" || rep.Mode != "enforce" || rep.Binary != "/bin/true" {
		t.Errorf("report %+v", rep)
	}
	if len(rep.Changes) == 0 || rep.Refused != "" {
		t.Errorf("report: %d changes, refused %q", len(rep.Changes), rep.Refused)
	}
	if !containsSubstr(rep.Notes, "no containerd address") {
		t.Errorf("report notes %q do not say labels were not read", rep.Notes)
	}
	if _, err := os.Stat(filepath.Join(bundle, stateFile)); err != nil {
		t.Errorf("no state file: %v", err)
	}
	assertNoTempFiles(t, bundle)
}

func TestCreateRefusedLeavesNothing(t *testing.T) {
	ts := newTestService(t, nil)
	// Joining the host's network namespace: hardened denies it.
	orig := defaultSpec(t, "hostnet", oci.WithProcessArgs("/bin/sh"), oci.WithHostNamespace(specs.NetworkNamespace))
	bundle := ts.bundle(t, "hostnet", orig)
	before, _ := os.ReadFile(filepath.Join(bundle, configFile))

	_, err := ts.create(t, "hostnet", bundle, policyOpts(t, testPolicy("enforce", "")))
	wantCode(t, err, codes.FailedPrecondition, "hostnet", "hardened", "namespaces")
	if len(ts.inner.creates) != 0 {
		t.Error("inner Create called for a refused container")
	}
	after, _ := os.ReadFile(filepath.Join(bundle, configFile))
	if !bytes.Equal(before, after) {
		t.Error("refused Create changed config.json")
	}
	entries, _ := os.ReadDir(bundle)
	if len(entries) != 1 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("refused Create left files in the bundle: %v", names)
	}
}

func TestCreateAuditChangesAndRefusesNothing(t *testing.T) {
	ts := newTestService(t, nil)
	orig := defaultSpec(t, "hostnet", oci.WithProcessArgs("/bin/sh"), oci.WithHostNamespace(specs.NetworkNamespace))
	bundle := ts.bundle(t, "hostnet", orig)
	before, _ := os.ReadFile(filepath.Join(bundle, configFile))

	r, err := ts.create(t, "hostnet", bundle, policyOpts(t, testPolicy("audit", "")))
	if err != nil {
		t.Fatalf("audit mode refused: %v", err)
	}
	after, _ := os.ReadFile(filepath.Join(bundle, configFile))
	if !bytes.Equal(before, after) {
		t.Error("audit mode changed config.json")
	}
	if _, err := os.Stat(filepath.Join(bundle, origConfigFile)); err == nil {
		t.Error("audit mode wrote config.json.orig")
	}
	rep := readReport(t, bundle)
	if rep.Mode != "audit" || !strings.Contains(rep.Refused, "namespaces") {
		t.Errorf("audit report: mode %q, refused %q", rep.Mode, rep.Refused)
	}
	if o := passedOptions(t, r); o.BinaryName != "/bin/true" {
		t.Errorf("audit mode runs %q, want runc", o.BinaryName)
	}
}

func TestCreateAuditReportsChangesForAcceptedSpec(t *testing.T) {
	ts := newTestService(t, nil)
	bundle := ts.bundle(t, "a", defaultSpec(t, "a", oci.WithProcessArgs("/bin/sh")))
	if _, err := ts.create(t, "a", bundle, policyOpts(t, testPolicy("audit", ""))); err != nil {
		t.Fatal(err)
	}
	rep := readReport(t, bundle)
	if len(rep.Changes) == 0 || rep.Refused != "" {
		t.Errorf("audit report: %d changes (want the ones enforce makes), refused %q", len(rep.Changes), rep.Refused)
	}
}

func TestCreateGVisorUsesWrapper(t *testing.T) {
	ts := newTestService(t, nil)
	// The runc gate's verdict is a fact of every Create; it refuses only
	// containers that run on runc.
	ts.gateErr = errors.New("runc 1.1.11 has CVE-2024-21626")
	orig := defaultSpec(t, "g", oci.WithProcessArgs("/bin/sh"), oci.WithAnnotations(map[string]string{"hardened.dev/runtime": "gvisor"}))
	bundle := ts.bundle(t, "g", orig)
	r, err := ts.create(t, "g", bundle, policyOpts(t, testPolicy("enforce", "")))
	if err != nil {
		t.Fatal(err)
	}
	o := passedOptions(t, r)
	if filepath.Base(o.BinaryName) != runscwrap.Name || !strings.HasPrefix(o.BinaryName, filepath.Join(ts.runDir, "runsc")+"/") {
		t.Fatalf("BinaryName %q, want the runsc wrapper under %s", o.BinaryName, ts.runDir)
	}
	if o.Root != hostfacts.DefaultRunscRoot {
		t.Errorf("Root %q, want %q", o.Root, hostfacts.DefaultRunscRoot)
	}
	cfg, err := runscwrap.ReadConfig(filepath.Dir(o.BinaryName))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Path != "/bin/false" || !slices.Equal(cfg.Args, []string{"--network=none"}) {
		t.Errorf("runsc.json %+v", cfg)
	}
	rep := readReport(t, bundle)
	if rep.Runtime != "gvisor" || rep.RuntimeSource == "" {
		t.Errorf("report runtime %q (%q)", rep.Runtime, rep.RuntimeSource)
	}
	hasAppArmorGap := false
	for _, g := range rep.NotEnforced {
		hasAppArmorGap = hasAppArmorGap || g.Rule == "apparmor"
	}
	if !hasAppArmorGap {
		t.Errorf("gVisor report does not say AppArmor is not enforced: %+v", rep.NotEnforced)
	}
}

func TestCreateRuncGateRefusal(t *testing.T) {
	ts := newTestService(t, nil)
	ts.gateErr = errTest
	bundle := ts.bundle(t, "old", defaultSpec(t, "old", oci.WithProcessArgs("/bin/sh")))
	_, err := ts.create(t, "old", bundle, policyOpts(t, testPolicy("enforce", "")))
	wantCode(t, err, codes.FailedPrecondition, "runc /bin/true refused", errTest.Error())
	if len(ts.inner.creates) != 0 {
		t.Error("inner Create called with a refused runc")
	}
}

func TestCreateLabelsFailClosed(t *testing.T) {
	ts := newTestService(t, &fakeLabels{err: errTest})
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh")))
	_, err := ts.create(t, "c", bundle, policyOpts(t, testPolicy("enforce", "")))
	wantCode(t, err, codes.FailedPrecondition, "labels", errTest.Error())
	if len(ts.inner.creates) != 0 {
		t.Error("inner Create called without labels")
	}
	if _, err := os.Stat(filepath.Join(bundle, reportFile)); err == nil {
		t.Error("report written for a refused container")
	}
}

func TestCreateImageLabelPicksStricterProfile(t *testing.T) {
	labels := &fakeLabels{info: map[string]*containerInfo{
		"c": {ImageLabels: map[string]string{"hardened.dev/profile": "strict"}},
	}}
	ts := newTestService(t, labels)
	s := defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh"), oci.WithUIDGID(1000, 1000))
	bundle := ts.bundle(t, "c", s)
	r, err := ts.create(t, "c", bundle, policyOpts(t, testPolicy("enforce", "")))
	if err != nil {
		t.Fatal(err)
	}
	rep := readReport(t, bundle)
	if rep.Profile != "strict" || !strings.Contains(rep.ProfileSource, "image label") {
		t.Errorf("profile %q from %q, want strict from the image label", rep.Profile, rep.ProfileSource)
	}
	if rep.Runtime != "gvisor" || filepath.Base(passedOptions(t, r).BinaryName) != runscwrap.Name {
		t.Errorf("strict runs on %q (%s), want gvisor", rep.Runtime, passedOptions(t, r).BinaryName)
	}
	if !slices.Equal(labels.calls, []string{"c/"}) {
		t.Errorf("lookups %v", labels.calls)
	}
}

func TestCreateRouteOnPodLabel(t *testing.T) {
	labels := &fakeLabels{info: map[string]*containerInfo{
		"c": {Labels: map[string]string{"team": "untrusted"}},
	}}
	ts := newTestService(t, labels)
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh")))
	pol := testPolicy("enforce", "[[routes]]\nruntime = \"gvisor\"\n[routes.match.labels]\nteam = \"untrusted\"\n")
	if _, err := ts.create(t, "c", bundle, policyOpts(t, pol)); err != nil {
		t.Fatal(err)
	}
	if rep := readReport(t, bundle); rep.Runtime != "gvisor" {
		t.Errorf("route on a label: runtime %q (%s), want gvisor", rep.Runtime, rep.RuntimeSource)
	}
}

func TestCreateRuncOptionsGivenDirectly(t *testing.T) {
	// containerd sends task options instead of the runtime's options when
	// it has any: runc options (ctr --runc-*, CRI user namespaces). The
	// caller's IO settings stay; its binary and root do not.
	bin := t.TempDir()
	fakeRunc := filepath.Join(bin, "runc")
	if err := os.WriteFile(fakeRunc, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)

	ts := newTestService(t, nil)
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh")))
	caller := &options.Options{BinaryName: "/tmp/evil-runc", Root: "/tmp/evil-root", IoUid: 1000, IoGid: 1001, NoPivotRoot: true, SystemdCgroup: true}
	r, err := ts.create(t, "c", bundle, mustAny(t, caller))
	if err != nil {
		t.Fatal(err)
	}
	o := passedOptions(t, r)
	if o.BinaryName != fakeRunc || o.Root != "" {
		t.Errorf("binary %q root %q: want the default policy's runc from PATH (%s) and the stock root", o.BinaryName, o.Root, fakeRunc)
	}
	if o.IoUid != 1000 || o.IoGid != 1001 || !o.SystemdCgroup || o.NoPivotRoot {
		t.Errorf("caller settings not carried (or NoPivotRoot kept): %+v", o)
	}
	rep := readReport(t, bundle)
	if rep.Policy != "built-in default" {
		t.Errorf("policy %q, want the built-in default", rep.Policy)
	}
	for _, want := range []string{"BinaryName", "Root", "NoPivotRoot"} {
		if !containsSubstr(rep.Notes, want) {
			t.Errorf("notes %q do not mention the ignored %s", rep.Notes, want)
		}
	}
}

func TestCreateRuncOptionsPolicyFromRecord(t *testing.T) {
	// Task options carried runc options; the container record still holds
	// the runtime's runtimeoptions with the node policy.
	recOpts := mustAny(t, &runtimeoptions.Options{ConfigBody: []byte(testPolicy("enforce", ""))})
	ts := newTestService(t, &fakeLabels{info: map[string]*containerInfo{"c": {RuntimeOptions: recOpts}}})
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh")))
	r, err := ts.create(t, "c", bundle, mustAny(t, &options.Options{IoUid: 7}))
	if err != nil {
		t.Fatal(err)
	}
	if o := passedOptions(t, r); o.BinaryName != "/bin/true" || o.IoUid != 7 {
		t.Errorf("options %+v: want the record's policy binary and the task's IoUid", o)
	}
}

func TestCreateInvalidPolicy(t *testing.T) {
	ts := newTestService(t, nil)
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh")))
	_, err := ts.create(t, "c", bundle, policyOpts(t, "mode = \"enforce\"\nno_such_key = 1\n"))
	wantCode(t, err, codes.InvalidArgument, "no_such_key")
	_, err = ts.create(t, "c", bundle, mustAny(t, &runtimeoptions.Options{ConfigPath: "/nonexistent/policy.toml"}))
	wantCode(t, err, codes.InvalidArgument, "/nonexistent/policy.toml")
}

func TestCreateRetryStartsFromOriginal(t *testing.T) {
	ts := newTestService(t, nil)
	bundle := ts.bundle(t, "r", defaultSpec(t, "r", oci.WithProcessArgs("/bin/sh")))
	origBytes, _ := os.ReadFile(filepath.Join(bundle, configFile))
	opts := policyOpts(t, testPolicy("enforce", ""))
	if _, err := ts.create(t, "r", bundle, opts); err != nil {
		t.Fatal(err)
	}
	first := readReport(t, bundle)
	firstSpec, _ := os.ReadFile(filepath.Join(bundle, configFile))
	if _, err := ts.create(t, "r", bundle, opts); err != nil {
		t.Fatal(err)
	}
	second := readReport(t, bundle)
	if len(second.Changes) != len(first.Changes) {
		t.Errorf("retry made %d changes, first attempt %d: the retry did not start from the original", len(second.Changes), len(first.Changes))
	}
	kept, _ := os.ReadFile(filepath.Join(bundle, origConfigFile))
	if !bytes.Equal(kept, origBytes) {
		t.Error("retry replaced config.json.orig")
	}
	secondSpec, _ := os.ReadFile(filepath.Join(bundle, configFile))
	if !bytes.Equal(firstSpec, secondSpec) {
		t.Error("retry produced a different config.json")
	}
}

func TestCreatePolicyCached(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "policy.toml")
	if err := os.WriteFile(path, []byte(testPolicy("enforce", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	c := newPolicyCache()
	a, err := c.get(policySource{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.get(policySource{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Error("unchanged policy file parsed again")
	}
	// A change of content (and size) is seen.
	if err := os.WriteFile(path, []byte(testPolicy("audit", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := c.get(policySource{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if d == b || d.pol.Mode != "audit" {
		t.Errorf("changed policy not reloaded (mode %q)", d.pol.Mode)
	}
	// A broken file is an error, not the stale entry.
	if err := os.WriteFile(path, []byte("mode = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := c.get(policySource{Path: path}); err == nil {
		t.Error("broken policy served from the cache")
	}
}

func TestCreatePolicyCacheSeesNewProfile(t *testing.T) {
	profDir := t.TempDir()
	body := []byte(strings.Replace(testPolicy("enforce", ""), "/nonexistent/hardened-profiles", profDir, 1))
	c := newPolicyCache()
	np, err := c.get(policySource{Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if np.set.Has("custom") {
		t.Fatal("profile present before it was written")
	}
	prof := "name = \"custom\"\nextends = \"hardened\"\ndescription = \"test\"\n"
	if err := os.WriteFile(filepath.Join(profDir, "custom.toml"), []byte(prof), 0o644); err != nil {
		t.Fatal(err)
	}
	np, err = c.get(policySource{Body: body})
	if err != nil {
		t.Fatal(err)
	}
	if !np.set.Has("custom") {
		t.Error("new profile in profiles_dir not loaded")
	}
}

func containsSubstr(list []string, sub string) bool {
	for _, s := range list {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func assertNoTempFiles(t *testing.T, dir string) {
	t.Helper()
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file left: %s", e.Name())
		}
	}
}

func TestCreateLabelsFailureInAuditMode(t *testing.T) {
	ts := newTestService(t, &fakeLabels{err: errTest})
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh")))
	if _, err := ts.create(t, "c", bundle, policyOpts(t, testPolicy("audit", ""))); err != nil {
		t.Fatalf("audit mode refused: %v", err)
	}
	rep := readReport(t, bundle)
	if !strings.Contains(rep.Refused, "labels") || !containsSubstr(rep.Notes, "annotations only") {
		t.Errorf("audit report: refused %q, notes %q", rep.Refused, rep.Notes)
	}
}

func TestCreateLabelsFailureWithoutPolicyInRequest(t *testing.T) {
	// The policy would come from the record containerd did not give.
	ts := newTestService(t, &fakeLabels{err: errTest})
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh")))
	_, err := ts.create(t, "c", bundle, mustAny(t, &options.Options{IoUid: 1}))
	wantCode(t, err, codes.FailedPrecondition, "record", errTest.Error())
}
