// Package golden compares test output with a golden file, or rewrites the
// file when the test runs with its package's -update flag.
package golden

import (
	"os"
	"testing"
)

// Check fails t unless got equals the content of the golden file at path;
// with update, it writes got to path instead (review the diff, then commit).
func Check(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test with -update to create it)", err)
	}
	if string(got) != string(want) {
		t.Errorf("%s differs (run go test with -update and review the diff):\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}
