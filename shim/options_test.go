package shim

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	bootapi "github.com/containerd/containerd/api/runtime/bootstrap/v1"
	"github.com/containerd/containerd/api/types/runc/options"
	runtimeoptions "github.com/containerd/containerd/api/types/runtimeoptions/v1"
	"github.com/containerd/containerd/v2/pkg/protobuf/proto"
	"github.com/containerd/containerd/v2/pkg/shim"
	"github.com/containerd/errdefs"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
)

func TestSplitOptions(t *testing.T) {
	for _, tc := range []struct {
		name       string
		in         *anypb.Any
		wantPolicy *policySource
		wantRunc   bool
		wantErr    bool
	}{
		{name: "none", in: nil},
		{name: "empty any", in: &anypb.Any{}},
		{name: "config path", in: mustAny(t, &runtimeoptions.Options{ConfigPath: "/etc/hardened/policy.toml"}),
			wantPolicy: &policySource{Path: "/etc/hardened/policy.toml"}},
		{name: "config body", in: mustAny(t, &runtimeoptions.Options{ConfigBody: []byte("mode = \"audit\"\n")}),
			wantPolicy: &policySource{Body: []byte("mode = \"audit\"\n")}},
		// CRI with an empty options table: runtimeoptions with nothing set.
		{name: "empty runtimeoptions", in: mustAny(t, &runtimeoptions.Options{}), wantPolicy: &policySource{}},
		{name: "runc options", in: mustAny(t, &options.Options{IoUid: 3}), wantRunc: true},
		// All-zero runc options marshal to an empty value: still runc options.
		{name: "empty runc options", in: mustAny(t, &options.Options{}), wantRunc: true},
		{name: "other type", in: mustAny(t, &structpb.Struct{}), wantErr: true},
		{name: "unknown url", in: &anypb.Any{TypeUrl: "example.com/Nope", Value: []byte{1}}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splitOptions(tc.in)
			if tc.wantErr {
				if !errdefs.IsInvalidArgument(err) {
					t.Fatalf("err %v, want InvalidArgument", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (got.Runc != nil) != tc.wantRunc {
				t.Errorf("runc options %v, want %v", got.Runc, tc.wantRunc)
			}
			switch {
			case tc.wantPolicy == nil && got.Policy != nil:
				t.Errorf("policy %+v, want none", got.Policy)
			case tc.wantPolicy != nil && got.Policy == nil:
				t.Errorf("no policy, want %+v", tc.wantPolicy)
			case tc.wantPolicy != nil && (got.Policy.Path != tc.wantPolicy.Path || string(got.Policy.Body) != string(tc.wantPolicy.Body)):
				t.Errorf("policy %+v, want %+v", got.Policy, tc.wantPolicy)
			}
		})
	}
}

func TestPolicySourceString(t *testing.T) {
	for _, tc := range []struct {
		src  policySource
		want string
	}{
		{policySource{}, "built-in default"},
		{policySource{Path: "/etc/p.toml"}, "/etc/p.toml"},
		{policySource{Body: []byte("x=1")}, "runtime options (inline policy)"},
	} {
		if got := tc.src.String(); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.src, got, tc.want)
		}
	}
}

func TestTranslateBootstrap(t *testing.T) {
	// The stock manager's Start looks runc options up by type with
	// FindExtension; after translation it finds runc options, not a type it
	// does not know.
	p := &bootapi.BootstrapParams{InstanceID: "c", Namespace: "default"}
	if err := p.AddExtension(&runtimeoptions.Options{ConfigPath: "/etc/hardened/policy.toml"}); err != nil {
		t.Fatal(err)
	}
	other, _ := anypb.New(&structpb.Struct{})
	if err := p.AddExtension(other); err != nil {
		t.Fatal(err)
	}
	if err := translateBootstrap(p); err != nil {
		t.Fatal(err)
	}
	var ro runtimeoptions.Options
	if found, _ := p.FindExtension(&ro); found {
		t.Error("runtimeoptions extension left in place")
	}
	var opts options.Options
	found, err := p.FindExtension(&opts)
	if err != nil || !found {
		t.Fatalf("runc options not found after translation: %v %v", found, err)
	}
	if opts.ShimCgroup != "" || opts.BinaryName != "" {
		t.Errorf("translated options %+v, want empty", &opts)
	}
	if len(p.Extensions) != 2 || !p.Extensions[1].GetValue().MessageIs(&structpb.Struct{}) {
		t.Error("unrelated extension changed")
	}
	// Runc options sent directly stay as they are.
	p = &bootapi.BootstrapParams{}
	_ = p.AddExtension(&options.Options{ShimCgroup: "/pod"})
	_ = translateBootstrap(p)
	if found, _ := p.FindExtension(&opts); !found || opts.ShimCgroup != "/pod" {
		t.Errorf("runc options changed: %+v", &opts)
	}
}

func TestTranslateInfoOptions(t *testing.T) {
	policyPath := filepath.Join(t.TempDir(), "policy.toml")
	if err := os.WriteFile(policyPath, []byte(testPolicy("enforce", "")), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := proto.Marshal(mustAny(t, &runtimeoptions.Options{ConfigPath: policyPath}))
	if err != nil {
		t.Fatal(err)
	}
	out, err := translateInfoOptions(context.Background(), in, newPolicyCache())
	if err != nil {
		t.Fatal(err)
	}
	// What the stock Info does with its stdin.
	got, err := shim.ReadRuntimeOptions[*options.Options](bytesReader(out))
	if err != nil {
		t.Fatalf("stock reader rejects the translated options: %v", err)
	}
	if got.BinaryName != "/bin/true" || got.Root != "/run/test-runc" {
		t.Errorf("translated %+v, want the policy's runc", got)
	}

	// Without the translation the stock reader fails on runtimeoptions.
	if _, err := shim.ReadRuntimeOptions[*options.Options](bytesReader(in)); err == nil {
		t.Error("stock reader accepted runtimeoptions: the translation would be pointless")
	}

	// A broken policy fails Info with the policy's error.
	if _, err := translateInfoOptions(context.Background(), mustMarshal(t, &runtimeoptions.Options{ConfigBody: []byte("nope = 1")}), newPolicyCache()); !errdefs.IsInvalidArgument(err) {
		t.Errorf("broken policy: %v, want InvalidArgument", err)
	}
}

func bytesReader(b []byte) *bytes.Reader { return bytes.NewReader(b) }

func mustMarshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := proto.Marshal(mustAny(t, v))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
