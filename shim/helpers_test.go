package shim

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	taskAPI "github.com/containerd/containerd/api/runtime/task/v3"
	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/api/types/task"
	"github.com/containerd/containerd/v2/core/containers"
	"github.com/containerd/containerd/v2/pkg/namespaces"
	"github.com/containerd/containerd/v2/pkg/oci"
	"github.com/containerd/containerd/v2/pkg/protobuf/types"
	"github.com/containerd/log"
	"github.com/containerd/typeurl/v2"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/hardened-dev/hardened/internal/decide"
)

// testWrapperBinary is where the tests pretend the runsc wrapper binary is
// installed (nothing runs it: the stock service is a fake).
const testWrapperBinary = "/usr/local/bin/hardened-runsc"

func TestMain(m *testing.M) {
	// Quiet by default; captureLog reads it where a test checks it.
	log.L.Logger.SetOutput(io.Discard)
	os.Exit(m.Run())
}

// fakeInner stands in for containerd's runc task service: it records what
// reaches it.
type fakeInner struct {
	taskAPI.TTRPCTaskService // nil: any other call panics

	mu      sync.Mutex
	creates []*taskAPI.CreateTaskRequest
	execs   []*taskAPI.ExecProcessRequest
	updates []*taskAPI.UpdateTaskRequest
	starts  []*taskAPI.StartRequest
	// onCreate, when set, sees each Create as runc would (the bundle
	// written, the sources staged); createErr fails every Create.
	onCreate  func(*taskAPI.CreateTaskRequest)
	createErr error
}

func (f *fakeInner) Create(_ context.Context, r *taskAPI.CreateTaskRequest) (*taskAPI.CreateTaskResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.creates = append(f.creates, r)
	if f.onCreate != nil {
		f.onCreate(r)
	}
	if f.createErr != nil {
		return nil, f.createErr
	}
	return &taskAPI.CreateTaskResponse{Pid: 42}, nil
}

// State says no container is in the created state, so that the start-time
// check (start.go, tested against real processes in start_test.go) passes
// the Start through.
func (f *fakeInner) State(_ context.Context, r *taskAPI.StateRequest) (*taskAPI.StateResponse, error) {
	return &taskAPI.StateResponse{ID: r.ID, Status: task.Status_UNKNOWN}, nil
}

func (f *fakeInner) Start(_ context.Context, r *taskAPI.StartRequest) (*taskAPI.StartResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.starts = append(f.starts, r)
	return &taskAPI.StartResponse{Pid: 42}, nil
}

func (f *fakeInner) Exec(_ context.Context, r *taskAPI.ExecProcessRequest) (*types.Empty, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.execs = append(f.execs, r)
	return &types.Empty{}, nil
}

func (f *fakeInner) Update(_ context.Context, r *taskAPI.UpdateTaskRequest) (*types.Empty, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.updates = append(f.updates, r)
	return &types.Empty{}, nil
}

func (f *fakeInner) Delete(_ context.Context, r *taskAPI.DeleteRequest) (*taskAPI.DeleteResponse, error) {
	return &taskAPI.DeleteResponse{}, nil
}

// fakeLabels is a containerd that answers label lookups from maps.
type fakeLabels struct {
	info  map[string]*containerInfo // by container id
	err   error
	calls []string
}

func (f *fakeLabels) lookup(_ context.Context, id, sandboxID string) (*containerInfo, error) {
	f.calls = append(f.calls, id+"/"+sandboxID)
	if f.err != nil {
		return nil, f.err
	}
	if i, ok := f.info[id]; ok {
		return i, nil
	}
	return &containerInfo{}, nil
}

type testService struct {
	*Service
	inner   *fakeInner
	root    string // parent of the bundles
	gated   []string
	gateErr error
}

func newTestService(t *testing.T, labels labelSource) *testService {
	t.Helper()
	inner := &fakeInner{}
	ts := &testService{inner: inner, root: t.TempDir()}
	s := NewService(inner, Config{RunDir: filepath.Join(t.TempDir(), "run")})
	s.labels = labels
	s.policies = newPolicyCache()
	s.appArmor = func() bool { return false }
	s.wrapper = func() (string, error) { return testWrapperBinary, nil }
	s.reportsDir = filepath.Join(ts.root, "reports")
	// Before the temp dirs go: the writes a Create leaves running.
	t.Cleanup(s.background.Wait)
	s.gate = func(_ context.Context, path string) error {
		ts.gated = append(ts.gated, path)
		return ts.gateErr
	}
	ts.Service = s
	return ts
}

func testCtx() context.Context {
	return namespaces.WithNamespace(context.Background(), "test")
}

// defaultSpec is the spec containerd generates for `ctr run` (its own
// defaults), with extra opts.
func defaultSpec(t *testing.T, id string, opts ...oci.SpecOpts) *specs.Spec {
	t.Helper()
	s, err := oci.GenerateSpec(testCtx(), nil, &containers.Container{ID: id}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// bundle writes a bundle for id under the service's root.
func (ts *testService) bundle(t *testing.T, id string, s *specs.Spec) string {
	t.Helper()
	dir := filepath.Join(ts.root, id)
	if err := os.MkdirAll(dir, 0o711); err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, configFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// policyOpts returns runtimeoptions carrying an inline policy.
func policyOpts(t *testing.T, body string) *anypb.Any {
	t.Helper()
	return mustAny(t, &runtimeoptions.Options{ConfigBody: []byte(body)})
}

func mustAny(t *testing.T, v any) *anypb.Any {
	t.Helper()
	a, err := typeurl.MarshalAnyToProto(v)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// testPolicy is a policy whose runtimes exist on any machine (the gate is
// faked, runsc is never run).
func testPolicy(mode string, extra string) string {
	return `mode = "` + mode + `"
profiles_dir = "/nonexistent/hardened-profiles"
[runtimes.runc]
path = "/bin/true"
root = "/run/test-runc"
[runtimes.gvisor]
path = "/bin/false"
args = ["--network=none"]
` + extra
}

func (ts *testService) create(t *testing.T, id, bundle string, opts *anypb.Any) (*taskAPI.CreateTaskRequest, error) {
	t.Helper()
	r := &taskAPI.CreateTaskRequest{ID: id, Bundle: bundle, Options: opts}
	_, err := ts.Create(testCtx(), r)
	return r, err
}

// passedOptions returns the runc options the inner service received.
func passedOptions(t *testing.T, r *taskAPI.CreateTaskRequest) *options.Options {
	t.Helper()
	v, err := typeurl.UnmarshalAny(r.Options)
	if err != nil {
		t.Fatal(err)
	}
	o, ok := v.(*options.Options)
	if !ok {
		t.Fatalf("inner Create got %T, want runc options", v)
	}
	return o
}

func readReport(t *testing.T, bundle string) *decide.Report {
	t.Helper()
	var r decide.Report
	if err := readJSON(filepath.Join(bundle, reportFile), &r); err != nil {
		t.Fatal(err)
	}
	return &r
}

func readSpecFile(t *testing.T, path string) *specs.Spec {
	t.Helper()
	var s specs.Spec
	if err := readJSON(path, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

// wantCode checks a TTRPC error's status code and message.
func wantCode(t *testing.T, err error, code codes.Code, substrs ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want %v", code)
	}
	st, ok := status.FromError(err)
	if !ok {
		t.Fatalf("error %v is not a status", err)
	}
	if st.Code() != code {
		t.Fatalf("code %v (%v), want %v", st.Code(), err, code)
	}
	for _, s := range substrs {
		if !strings.Contains(st.Message(), s) {
			t.Errorf("message %q does not contain %q", st.Message(), s)
		}
	}
}

var errTest = errors.New("test error")
