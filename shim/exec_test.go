package shim

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/log"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/types/known/anypb"
)

const processTypeURL = "types.containerd.io/opencontainers/runtime-spec/1/Process"

// execRequest builds what containerd sends: the process from its stored,
// unhardened spec, with the exec's args.
func execRequest(t *testing.T, id, execID string, base *specs.Spec, args ...string) *taskAPI.ExecProcessRequest {
	t.Helper()
	p := *base.Process
	p.Args = args
	p.Env = append(slices.Clone(p.Env), "SECRET_TOKEN=hunter2")
	data, err := json.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	return &taskAPI.ExecProcessRequest{ID: id, ExecID: execID, Spec: &anypb.Any{TypeUrl: processTypeURL, Value: data}}
}

func execProcess(t *testing.T, r *taskAPI.ExecProcessRequest) *specs.Process {
	t.Helper()
	var p specs.Process
	if err := json.Unmarshal(r.Spec.GetValue(), &p); err != nil {
		t.Fatal(err)
	}
	return &p
}

func captureLog(t *testing.T) *bytes.Buffer {
	t.Helper()
	var buf bytes.Buffer
	l := log.L.Logger
	old := l.Out
	l.SetOutput(&buf)
	t.Cleanup(func() { l.SetOutput(old) })
	return &buf
}

func TestExecHardened(t *testing.T) {
	ts := newTestService(t, nil)
	orig := defaultSpec(t, "web", oci.WithProcessArgs("/bin/sh"), oci.WithAddedCapabilities([]string{"CAP_SYS_ADMIN"}))
	bundle := ts.bundle(t, "web", orig)
	if _, err := ts.create(t, "web", bundle, policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}
	logs := captureLog(t)

	req := execRequest(t, "web", "e1", orig, "/bin/ps", "aux")
	if _, err := ts.Exec(testCtx(), req); err != nil {
		t.Fatal(err)
	}
	if len(ts.inner.execs) != 1 {
		t.Fatalf("inner Exec called %d times", len(ts.inner.execs))
	}
	got := ts.inner.execs[0]
	if got.Spec.GetTypeUrl() != processTypeURL {
		t.Errorf("type url %q changed", got.Spec.GetTypeUrl())
	}
	p := execProcess(t, got)
	hardened := readSpecFile(t, bundle+"/"+configFile)
	for _, set := range [][]string{p.Capabilities.Bounding, p.Capabilities.Effective, p.Capabilities.Permitted} {
		for _, c := range set {
			if !slices.Contains(hardened.Process.Capabilities.Bounding, c) {
				t.Errorf("exec keeps %s, which the container's init process does not have", c)
			}
		}
	}
	if !p.NoNewPrivileges {
		t.Error("exec without no_new_privileges")
	}
	if !slices.Equal(p.Args, []string{"/bin/ps", "aux"}) {
		t.Errorf("args changed: %v", p.Args)
	}

	out := logs.String()
	if !strings.Contains(out, "argv0=/bin/ps") || !strings.Contains(out, "exec=e1") || !strings.Contains(out, "id=web") {
		t.Errorf("exec log line missing fields: %s", out)
	}
	if strings.Contains(out, "hunter2") {
		t.Error("exec log leaks an environment value")
	}
}

func TestExecRefusedByStrict(t *testing.T) {
	ts := newTestService(t, nil)
	orig := defaultSpec(t, "s", oci.WithProcessArgs("/bin/sh"), oci.WithUIDGID(1000, 1000),
		oci.WithAnnotations(map[string]string{"hardened.dev/profile": "strict"}))
	bundle := ts.bundle(t, "s", orig)
	if _, err := ts.create(t, "s", bundle, policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}
	pub := &fakePublisher{}
	ts.events = pub
	_, err := ts.Exec(testCtx(), execRequest(t, "s", "e1", orig, "/bin/sh"))
	wantCode(t, err, codes.FailedPrecondition, "exec e1 (/bin/sh) in container s refused by profile strict")
	if len(ts.inner.execs) != 0 {
		t.Error("refused exec reached the runtime")
	}
	// The refusal is an event too, naming the exec, the rule and the field.
	if ev := pub.wait(t, TopicRefused); ev["container_id"] != "s" || ev["exec_id"] != "e1" || ev["rule"] != "exec" || ev["reason"] == "" {
		t.Errorf("refused exec event %v", ev)
	}
}

func TestExecAuditUnchanged(t *testing.T) {
	ts := newTestService(t, nil)
	orig := defaultSpec(t, "a", oci.WithProcessArgs("/bin/sh"), oci.WithUIDGID(1000, 1000),
		oci.WithAnnotations(map[string]string{"hardened.dev/profile": "strict"}))
	bundle := ts.bundle(t, "a", orig)
	if _, err := ts.create(t, "a", bundle, policyOpts(t, testPolicy("audit", ""))); err != nil {
		t.Fatal(err)
	}
	req := execRequest(t, "a", "e1", orig, "/bin/sh")
	sent := slices.Clone(req.Spec.GetValue())
	if _, err := ts.Exec(testCtx(), req); err != nil {
		t.Fatalf("audit mode refused an exec: %v", err)
	}
	if !bytes.Equal(ts.inner.execs[0].Spec.GetValue(), sent) {
		t.Error("audit mode changed the exec's process")
	}
}

func TestExecAfterShimRestart(t *testing.T) {
	first := newTestService(t, nil)
	orig := defaultSpec(t, "web", oci.WithProcessArgs("/bin/sh"), oci.WithAddedCapabilities([]string{"CAP_SYS_ADMIN"}))
	bundle := first.bundle(t, "web", orig)
	if _, err := first.create(t, "web", bundle, policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}

	// A new process with no memory of the container; its working
	// directory is a sibling bundle, as a grouped shim's is.
	second := newTestService(t, nil)
	t.Chdir(first.bundle(t, "other", defaultSpec(t, "other")))
	if _, err := second.Exec(testCtx(), execRequest(t, "web", "e1", orig, "/bin/sh")); err != nil {
		t.Fatal(err)
	}
	p := execProcess(t, second.inner.execs[0])
	if slices.Contains(p.Capabilities.Effective, "CAP_SYS_ADMIN") || !p.NoNewPrivileges {
		t.Errorf("exec after restart not hardened: caps %v nnp %v", p.Capabilities.Effective, p.NoNewPrivileges)
	}

	// A container the shim has no record of: refused.
	_, err := second.Exec(testCtx(), execRequest(t, "other", "e2", orig, "/bin/sh"))
	wantCode(t, err, codes.FailedPrecondition, "no hardening record")
}

func TestExecBadSpec(t *testing.T) {
	ts := newTestService(t, nil)
	orig := defaultSpec(t, "web", oci.WithProcessArgs("/bin/sh"))
	if _, err := ts.create(t, "web", ts.bundle(t, "web", orig), policyOpts(t, testPolicy("enforce", ""))); err != nil {
		t.Fatal(err)
	}
	_, err := ts.Exec(testCtx(), &taskAPI.ExecProcessRequest{ID: "web", ExecID: "e", Spec: &anypb.Any{TypeUrl: processTypeURL, Value: []byte("{")}})
	wantCode(t, err, codes.InvalidArgument, "process spec")
}
