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

func TestCheckPidsUpdate(t *testing.T) {
	for _, tc := range []struct {
		name        string
		res         specs.LinuxResources
		cur, orig   *int64
		profile     int64
		want        *int64
		wantClamped bool
		wantErr     bool
	}{
		{name: "no pids", res: specs.LinuxResources{}, cur: i64(100), profile: 1024},
		{name: "pids without limit", res: specs.LinuxResources{Pids: &specs.LinuxPids{}}, cur: i64(100)},
		{name: "lower", res: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(50)}}, cur: i64(100), profile: 1024, want: i64(50)},
		{name: "same", res: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(100)}}, cur: i64(100), want: i64(100)},
		{name: "raise above current", res: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(200)}}, cur: i64(100), profile: 1024, wantErr: true},
		{name: "raise above profile", res: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(2000)}}, profile: 1024, wantErr: true},
		{name: "remove (0)", res: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(0)}}, cur: i64(100), wantErr: true},
		{name: "remove (-1)", res: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}}, profile: 256, wantErr: true},
		{name: "no limit anywhere", res: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}}, want: i64(-1)},
		{name: "CRI resends original", res: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(4096)}}, cur: i64(1024), orig: i64(4096), profile: 1024, want: i64(1024), wantClamped: true},
		{name: "CRI resends original unlimited", res: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}}, cur: i64(1024), orig: i64(-1), want: i64(1024), wantClamped: true},
		{name: "not the original", res: specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(4097)}}, cur: i64(1024), orig: i64(4096), wantErr: true},
		{name: "unified pids.max", res: specs.LinuxResources{Unified: map[string]string{"pids.max": "max"}}, cur: i64(100), wantErr: true},
		{name: "unified other", res: specs.LinuxResources{Unified: map[string]string{"memory.high": "1G"}}, cur: i64(100)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, clamped, err := checkPidsUpdate(&tc.res, tc.cur, tc.orig, tc.profile)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if clamped != tc.wantClamped {
				t.Errorf("clamped %v, want %v", clamped, tc.wantClamped)
			}
			switch {
			case (got == nil) != (tc.want == nil):
				t.Errorf("limit %v, want %v", got, tc.want)
			case got != nil && *got != *tc.want:
				t.Errorf("limit %d, want %d", *got, *tc.want)
			}
		})
	}
}

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
	// containerd's stored spec carries a pids limit above restricted's 1024.
	orig := defaultSpec(t, "u", oci.WithProcessArgs("/bin/sh"), oci.WithPidsLimit(4096))
	if _, err := ts.create(t, "u", ts.bundle(t, "u", orig), policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}

	// Lowering passes unchanged, and becomes the new ceiling.
	if _, err := ts.Update(testCtx(), updateRequest(t, "u", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(500)}})); err != nil {
		t.Fatal(err)
	}
	_, err := ts.Update(testCtx(), updateRequest(t, "u", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(800)}}))
	wantCode(t, err, codes.FailedPrecondition, "pids limit 800 is above the container's limit of 500")

	// Removing the limit is refused.
	_, err = ts.Update(testCtx(), updateRequest(t, "u", &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: i64(-1)}}))
	wantCode(t, err, codes.FailedPrecondition, "removes the limit")

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
