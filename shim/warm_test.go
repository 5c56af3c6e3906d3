package shim

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/containerd/containerd/v2/pkg/oci"
)

// speculated starts and finishes the read-ahead for the container whose
// bundle is given, as NewService does for the bundle the shim runs in.
func (ts *testService) speculated(t *testing.T, bundle string) {
	t.Helper()
	ts.speculate(ts.startSpeculation("test", bundle))
}

func TestSpeculationInputsUsedByTheFirstCreate(t *testing.T) {
	labels := &fakeLabels{info: map[string]*containerInfo{
		"c": {ImageLabels: map[string]string{"hardened.dev/profile": "strict"}},
	}}
	ts := newTestService(t, labels)
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh"), oci.WithUIDGID(1000, 1000)))
	ts.speculated(t, bundle)
	if len(ts.inner.creates) != 0 {
		t.Fatal("the read-ahead created the container")
	}
	if _, err := os.Stat(filepath.Join(bundle, reportFile)); err == nil {
		t.Fatal("the read-ahead wrote the bundle")
	}
	if _, err := ts.create(t, "c", bundle, policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(labels.calls, []string{"c/"}) {
		t.Errorf("lookups %v, want the read-ahead's only", labels.calls)
	}
	if rep := readReport(t, bundle); rep.Profile != "strict" || rep.Runtime != "gvisor" {
		t.Errorf("profile %q on %q, want strict on gvisor (the image label read ahead)", rep.Profile, rep.Runtime)
	}
	// Used once: a second Create of the same container reads again.
	if _, err := ts.create(t, "c", bundle, policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}
	if len(labels.calls) != 2 {
		t.Errorf("lookups %v, want a new one for the second Create", labels.calls)
	}
}

func TestSpeculationDecisionUsedForTheRecordsOptions(t *testing.T) {
	// containerd sends the container record's runtime options: the
	// decision made ahead with them is the Create's.
	pol := policyOpts(t, testPolicy("enforce", ""))
	labels := &fakeLabels{info: map[string]*containerInfo{"c": {RuntimeOptions: pol}}}
	ts := newTestService(t, labels)
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh")))
	ts.speculated(t, bundle)
	if len(ts.gated) != 1 {
		t.Fatalf("gate runs %v, want the read-ahead's decision's", ts.gated)
	}
	r, err := ts.create(t, "c", bundle, policyOpts(t, testPolicy("enforce", "")))
	if err != nil {
		t.Fatal(err)
	}
	if len(ts.gated) != 1 || len(labels.calls) != 1 {
		t.Errorf("gate runs %v, lookups %v: decided again", ts.gated, labels.calls)
	}
	if got := passedOptions(t, r).BinaryName; got != "/bin/true" {
		t.Errorf("runc binary %q, want the policy's /bin/true", got)
	}
	if rep := readReport(t, bundle); rep.Profile != "hardened" || len(rep.Changes) == 0 {
		t.Errorf("report %+v", rep)
	}
	if got := readSpecFile(t, filepath.Join(bundle, configFile)); got.Process.NoNewPrivileges != true {
		t.Error("config.json not hardened")
	}
}

func TestSpeculationDecisionIsTheRequests(t *testing.T) {
	// The inputs are read ahead; the decision is the Create's own, with
	// the policy its request names.
	labels := &fakeLabels{}
	ts := newTestService(t, labels)
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh"), oci.WithUIDGID(1000, 1000)))
	ts.speculated(t, bundle)
	pol := "default_profile = \"strict\"\n" + testPolicy("enforce", "")
	if _, err := ts.create(t, "c", bundle, policyOpts(t, pol)); err != nil {
		t.Fatal(err)
	}
	if len(labels.calls) != 1 {
		t.Errorf("lookups %v, want the read-ahead's only", labels.calls)
	}
	if rep := readReport(t, bundle); rep.Profile != "strict" {
		t.Errorf("profile %q, want strict from the request's policy", rep.Profile)
	}
}

func TestSpeculationSpecChangedIsReadAgain(t *testing.T) {
	labels := &fakeLabels{}
	ts := newTestService(t, labels)
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh")))
	ts.speculated(t, bundle)
	// containerd rewrites the bundle's spec (the same path).
	ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh"),
		oci.WithAnnotations(map[string]string{"hardened.dev/profile": "strict"}), oci.WithUIDGID(1000, 1000)))
	if _, err := ts.create(t, "c", bundle, policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}
	if len(labels.calls) != 2 {
		t.Errorf("lookups %v, want the Create's own after the spec changed", labels.calls)
	}
	if rep := readReport(t, bundle); rep.Profile != "strict" {
		t.Errorf("profile %q, want strict from the changed spec", rep.Profile)
	}
}

func TestSpeculationOtherContainerReadsItsOwn(t *testing.T) {
	labels := &fakeLabels{info: map[string]*containerInfo{
		"a": {ImageLabels: map[string]string{"hardened.dev/profile": "strict"}},
	}}
	ts := newTestService(t, labels)
	a := ts.bundle(t, "a", defaultSpec(t, "a", oci.WithProcessArgs("/bin/sh")))
	b := ts.bundle(t, "b", defaultSpec(t, "b", oci.WithProcessArgs("/bin/sh")))
	ts.speculated(t, a)
	if _, err := ts.create(t, "b", b, policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(labels.calls, []string{"a/", "b/"}) {
		t.Errorf("lookups %v, want a's read-ahead then b's own", labels.calls)
	}
	if rep := readReport(t, b); rep.Profile != "hardened" {
		t.Errorf("b got profile %q: decided from a's inputs", rep.Profile)
	}
}

func TestSpeculationFailedLookupIsRetried(t *testing.T) {
	labels := &fakeLabels{err: errTest}
	ts := newTestService(t, labels)
	bundle := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh")))
	ts.speculated(t, bundle)
	labels.err = nil
	if _, err := ts.create(t, "c", bundle, policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatalf("Create refused on the read-ahead's failed lookup: %v", err)
	}
	if len(labels.calls) != 2 {
		t.Errorf("lookups %v, want the Create's own after the read-ahead's failed", labels.calls)
	}
}
