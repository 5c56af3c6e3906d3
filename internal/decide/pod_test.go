package decide

import (
	"strings"
	"testing"
)

func TestPodMember(t *testing.T) {
	for _, tc := range []struct {
		name    string
		id      string
		ann     map[string]string
		want    string
		wantErr bool
	}{
		{name: "standalone", id: "c", ann: nil},
		{name: "sandbox", id: "sb", ann: map[string]string{AnnContainerType: "sandbox", AnnSandboxID: "sb"}},
		{name: "container", id: "c", ann: map[string]string{AnnContainerType: "container", AnnSandboxID: "sb"}, want: "sb"},
		{name: "sandbox id is self", id: "sb", ann: map[string]string{AnnSandboxID: "sb"}},
		{name: "path in sandbox id", id: "c", ann: map[string]string{AnnContainerType: "container", AnnSandboxID: "../etc"}, wantErr: true},
		{name: "slash in sandbox id", id: "c", ann: map[string]string{AnnContainerType: "container", AnnSandboxID: "a/b"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PodMember(tc.id, tc.ann)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err %v, want error %v", err, tc.wantErr)
			}
			if got != tc.want {
				t.Errorf("sandbox %q, want %q", got, tc.want)
			}
		})
	}
}

func TestCRIIdentity(t *testing.T) {
	ann := func(typ, sb string) map[string]string {
		return map[string]string{AnnContainerType: typ, AnnSandboxID: sb}
	}
	for _, tt := range []struct {
		name string
		id   string
		ann  map[string]string
		rec  CRIRecord
		want string // "" accepted
	}{
		{"not a CRI container", "c", nil, CRIRecord{}, ""},
		{"a sandbox", "sb", ann("sandbox", "sb"), CRIRecord{Kind: "sandbox"}, ""},
		{"an app container", "c", ann("container", "sb"), CRIRecord{Kind: "container", SandboxID: "sb"}, ""},
		{"another pod's sandbox claimed", "c", ann("container", "other"), CRIRecord{Kind: "container", SandboxID: "sb"}, `recorded the container in pod sandbox "sb"`},
		{"an app container posing as a sandbox", "c", ann("sandbox", "c"), CRIRecord{Kind: "container", SandboxID: "sb"}, "recorded an app container"},
		{"a sandbox joining another", "sb", ann("sandbox", "other"), CRIRecord{Kind: "sandbox"}, "recorded pod sandbox sb"},
		{"a sandbox posing as an app container", "sb", ann("container", "x"), CRIRecord{Kind: "sandbox"}, "recorded a pod sandbox"},
		{"no metadata", "c", ann("container", "sb"), CRIRecord{Kind: "container"}, `recorded the container in pod sandbox ""`},
		{"unknown kind", "c", nil, CRIRecord{Kind: "vm"}, "unknown kind"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := criIdentityProblem(tt.id, tt.ann, tt.rec)
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}
