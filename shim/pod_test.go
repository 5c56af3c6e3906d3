package shim

import (
	"path/filepath"
	"testing"

	containersapi "github.com/containerd/containerd/api/services/containers/v1"
	"github.com/containerd/containerd/v2/pkg/oci"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hardened-dev/hardened/internal/decide"
	"github.com/hardened-dev/hardened/shim/runscwrap"
)

func podAnn(kind, sandboxID string, extra map[string]string) map[string]string {
	m := map[string]string{decide.AnnContainerType: kind, decide.AnnSandboxID: sandboxID}
	for k, v := range extra {
		m[k] = v
	}
	return m
}

func TestPodOneBackend(t *testing.T) {
	ts := newTestService(t, nil)
	opts := policyOpts(t, testPolicy("enforce", ""))
	gvisor := map[string]string{"hardened.dev/runtime": "gvisor"}

	sb := ts.bundle(t, "sb1", defaultSpec(t, "sb1", oci.WithProcessArgs("/pause"), oci.WithAnnotations(podAnn("sandbox", "sb1", gvisor))))
	if _, err := ts.create(t, "sb1", sb, opts); err != nil {
		t.Fatal(err)
	}
	if rep := readReport(t, sb); rep.Runtime != "gvisor" {
		t.Fatalf("sandbox runs on %q", rep.Runtime)
	}

	// A container that asks for gVisor too joins.
	c1 := ts.bundle(t, "c1", defaultSpec(t, "c1", oci.WithProcessArgs("/bin/sh"), oci.WithAnnotations(podAnn("container", "sb1", gvisor))))
	r, err := ts.create(t, "c1", c1, opts)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(passedOptions(t, r).BinaryName) != runscwrap.Name {
		t.Errorf("c1 binary %q, want the runsc wrapper", passedOptions(t, r).BinaryName)
	}

	// One that would run on runc is refused, naming both sides.
	c2 := ts.bundle(t, "c2", defaultSpec(t, "c2", oci.WithProcessArgs("/bin/sh"), oci.WithAnnotations(podAnn("container", "sb1", nil))))
	_, err = ts.create(t, "c2", c2, opts)
	wantCode(t, err, codes.FailedPrecondition, "pod sandbox sb1 runs on gvisor; container c2 would run on runc")
	if len(ts.inner.creates) != 2 {
		t.Errorf("inner Create called %d times, want 2 (sandbox, c1)", len(ts.inner.creates))
	}
}

func TestPodRuncSandboxRefusesGVisorContainer(t *testing.T) {
	ts := newTestService(t, nil)
	opts := policyOpts(t, testPolicy("enforce", ""))
	sb := ts.bundle(t, "sb", defaultSpec(t, "sb", oci.WithProcessArgs("/pause"), oci.WithAnnotations(podAnn("sandbox", "sb", nil))))
	if _, err := ts.create(t, "sb", sb, opts); err != nil {
		t.Fatal(err)
	}
	c := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh"),
		oci.WithAnnotations(podAnn("container", "sb", map[string]string{"hardened.dev/runtime": "gvisor"}))))
	_, err := ts.create(t, "c", c, opts)
	wantCode(t, err, codes.FailedPrecondition, "pod sandbox sb runs on runc; container c would run on gvisor")
}

func TestPodSandboxWithoutRecord(t *testing.T) {
	ts := newTestService(t, nil)
	c := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh"), oci.WithAnnotations(podAnn("container", "ghost", nil))))
	_, err := ts.create(t, "c", c, policyOpts(t, testPolicy("enforce", "")))
	wantCode(t, err, codes.FailedPrecondition, "pod sandbox ghost has no hardening record")
}

func TestPodAuditFollowsSandbox(t *testing.T) {
	ts := newTestService(t, nil)
	audit := policyOpts(t, testPolicy("audit", ""))
	sb := ts.bundle(t, "sb", defaultSpec(t, "sb", oci.WithProcessArgs("/pause"), oci.WithAnnotations(podAnn("sandbox", "sb", map[string]string{"hardened.dev/runtime": "gvisor"}))))
	if _, err := ts.create(t, "sb", sb, audit); err != nil {
		t.Fatal(err)
	}
	rep := readReport(t, sb)
	if rep.Runtime != "runc" || !containsSubstr(rep.Notes, "enforce would run this container on gvisor") {
		t.Errorf("audit sandbox: runtime %q, notes %q", rep.Runtime, rep.Notes)
	}
	c := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh"), oci.WithAnnotations(podAnn("container", "sb", nil))))
	r, err := ts.create(t, "c", c, audit)
	if err != nil {
		t.Fatal(err)
	}
	if passedOptions(t, r).BinaryName != "/bin/true" {
		t.Errorf("audit container runs %q, want the sandbox's runc", passedOptions(t, r).BinaryName)
	}
}

func TestPodLookupAsksForSandboxLabels(t *testing.T) {
	labels := &fakeLabels{}
	ts := newTestService(t, labels)
	opts := policyOpts(t, testPolicy("enforce", ""))
	sb := ts.bundle(t, "sb", defaultSpec(t, "sb", oci.WithProcessArgs("/pause"), oci.WithAnnotations(podAnn("sandbox", "sb", nil))))
	if _, err := ts.create(t, "sb", sb, opts); err != nil {
		t.Fatal(err)
	}
	c := ts.bundle(t, "c", defaultSpec(t, "c", oci.WithProcessArgs("/bin/sh"), oci.WithAnnotations(podAnn("container", "sb", nil))))
	if _, err := ts.create(t, "c", c, opts); err != nil {
		t.Fatal(err)
	}
	if len(labels.calls) != 2 || labels.calls[0] != "sb/" || labels.calls[1] != "c/sb" {
		t.Errorf("lookups %v, want the sandbox alone, then the container with its sandbox", labels.calls)
	}
}

func TestReadCRIRecord(t *testing.T) {
	c := &containersapi.Container{ID: "c", Labels: map[string]string{criKindLabel: "container"},
		Extensions: map[string]*anypb.Any{criContainerMetadata: {TypeUrl: "x", Value: []byte(`{"Version":"v1","Metadata":{"ID":"c","SandboxID":"sb"}}`)}}}
	r, err := readCRIRecord(c)
	if err != nil || r != (decide.CRIRecord{Kind: "container", SandboxID: "sb"}) {
		t.Fatalf("%+v %v", r, err)
	}
	c.Extensions[criContainerMetadata].Value = []byte("{")
	if _, err := readCRIRecord(c); err == nil {
		t.Error("malformed metadata accepted")
	}
}
