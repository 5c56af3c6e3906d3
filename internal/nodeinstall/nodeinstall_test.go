package nodeinstall

import (
	"context"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, c := range []struct {
		in           string
		major, minor int
		ok           bool
	}{
		{"v2.4.2", 2, 4, true},
		{"2.3.0-rc.1", 2, 3, true},
		{"v2.4.2-12-gabcdef0", 2, 4, true},
		{"v2.10-beta.0", 2, 10, true},
		{"v1.7.27", 1, 7, true},
		{"2", 0, 0, false},
		{"vX.Y", 0, 0, false},
		{"", 0, 0, false},
	} {
		major, minor, ok := parseVersion(c.in)
		if ok != c.ok || (ok && (major != c.major || minor != c.minor)) {
			t.Errorf("parseVersion(%q) = %d, %d, %v; want %d, %d, %v", c.in, major, minor, ok, c.major, c.minor, c.ok)
		}
	}
}

// The installer's account may only touch hardened.dev/ labels; the client
// refuses anything else before asking (the admission policy would too).
func TestSetLabelsOnlyHardenedKeys(t *testing.T) {
	k := &Kube{server: "https://127.0.0.1:1", tokenFile: "/nonexistent"}
	v := "x"
	err := k.SetLabels(context.Background(), "n", map[string]*string{"team": &v})
	if err == nil || !strings.Contains(err.Error(), "only hardened.dev/ labels") {
		t.Fatalf("SetLabels(team=x) = %v", err)
	}
}

func TestNewKubeNeedsServer(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	t.Setenv("KUBERNETES_SERVICE_PORT", "")
	if _, err := NewKube(KubeConfig{}); err == nil || !strings.Contains(err.Error(), "KUBERNETES_SERVICE_HOST") {
		t.Errorf("NewKube without a server: %v", err)
	}
	if _, err := NewKube(KubeConfig{Server: "http://x:1"}); err == nil || !strings.Contains(err.Error(), "https") {
		t.Errorf("NewKube with http: %v", err)
	}
}
