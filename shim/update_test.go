package shim

import (
	"encoding/json"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"
)

func i64(v int64) *int64 { return &v }

func updateRequest(t *testing.T, id string, res *specs.LinuxResources) *taskAPI.UpdateTaskRequest {
	t.Helper()
	data, err := json.Marshal(res)
	if err != nil {
		t.Fatal(err)
	}
	return &taskAPI.UpdateTaskRequest{ID: id, Resources: &anypb.Any{TypeUrl: "types.containerd.io/opencontainers/runtime-spec/1/LinuxResources", Value: data}}
}

func TestUpdateThroughService(t *testing.T) {
	ts := newTestService(t, nil)
	// containerd's stored spec carries a pids limit above hardened's 1024.
	orig := defaultSpec(t, "u", oci.WithProcessArgs("/bin/sh"), oci.WithPidsLimit(4096))
	if _, err := ts.create(t, "u", ts.bundle(t, "u", orig), policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}

	// Lowering passes unchanged, and becomes the new ceiling.
	if _, err := ts.Update(testCtx(), updateRequest(t, "u", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(500)}})); err != nil {
		t.Fatal(err)
	}
	_, err := ts.Update(testCtx(), updateRequest(t, "u", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(800)}}))
	wantCode(t, err, codes.FailedPrecondition, "800 is above the container's limit of 500")

	// Removing the limit is refused.
	_, err = ts.Update(testCtx(), updateRequest(t, "u", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}}))
	wantCode(t, err, codes.FailedPrecondition, "removes the container's limit")

	// CRI re-sending the stored spec's 4096 with a memory change keeps 500.
	mem := int64(64 << 20)
	if _, err := ts.Update(testCtx(), updateRequest(t, "u", &specs.LinuxResources{
		Memory: &specs.LinuxMemory{Limit: &mem},
		Pids:   &specs.LinuxPids{Limit: i64(4096)},
	})); err != nil {
		t.Fatal(err)
	}
	if len(ts.inner.updates) != 2 {
		t.Fatalf("inner Update called %d times, want 2", len(ts.inner.updates))
	}
	var got specs.LinuxResources
	if err := json.Unmarshal(ts.inner.updates[1].Resources.GetValue(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Pids == nil || got.Pids.Limit == nil || *got.Pids.Limit != 500 {
		t.Errorf("pids sent to runc: %+v, want 500", got.Pids)
	}
	if got.Memory == nil || got.Memory.Limit == nil || *got.Memory.Limit != mem {
		t.Errorf("memory change lost: %+v", got.Memory)
	}
}

func TestUpdateAuditPasses(t *testing.T) {
	ts := newTestService(t, nil)
	orig := defaultSpec(t, "u", oci.WithProcessArgs("/bin/sh"))
	if _, err := ts.create(t, "u", ts.bundle(t, "u", orig), policyOpts(t, testPolicy("audit", ""))); err != nil {
		t.Fatal(err)
	}
	if _, err := ts.Update(testCtx(), updateRequest(t, "u", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}})); err != nil {
		t.Fatalf("audit mode refused an update: %v", err)
	}
	if len(ts.inner.updates) != 1 {
		t.Error("audit update did not reach the runtime")
	}
}
