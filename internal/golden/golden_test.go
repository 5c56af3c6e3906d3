package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// recorder captures failures instead of failing the test.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Helper()               {}
func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }

func TestCheck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "out.golden")
	Check(t, path, []byte("v1\n"), true)
	if data, _ := os.ReadFile(path); string(data) != "v1\n" {
		t.Fatalf("update wrote %q", data)
	}
	r := &recorder{TB: t}
	Check(r, path, []byte("v1\n"), false)
	if r.failed {
		t.Fatal("equal output reported as different")
	}
	Check(r, path, []byte("v2\n"), false)
	if !r.failed {
		t.Fatal("different output not reported")
	}
	r = &recorder{TB: t}
	Check(r, path+".missing", []byte("x"), false)
	if !r.failed {
		t.Fatal("missing golden file not reported")
	}
}
