package reports

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hardened-dev/hardened/internal/decide"
)

func TestKeepAndRead(t *testing.T) {
	dir := t.TempDir()
	if err := Keep(dir, "k8s.io", &decide.Report{ContainerID: "c1", Profile: "hardened", Mode: "enforce"}); err != nil {
		t.Fatal(err)
	}
	r, err := Read(dir, "k8s.io", "c1")
	if err != nil || r.Profile != "hardened" {
		t.Fatalf("read %+v, %v", r, err)
	}
	for _, bad := range [][2]string{{"../x", "c"}, {"ns", "../../etc/passwd"}, {"ns", ""}} {
		if err := Keep(dir, bad[0], &decide.Report{ContainerID: bad[1]}); err == nil {
			t.Errorf("namespace %q, id %q: kept", bad[0], bad[1])
		}
	}
}

// The newest Count, none older than Age.
func TestPrune(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	for i := range 6 {
		p := filepath.Join(dir, fmt.Sprintf("c%d.json", i))
		if err := os.WriteFile(p, []byte("{}"), 0o644); err != nil {
			t.Fatal(err)
		}
		mod := now.Add(-time.Duration(i) * time.Hour)
		if err := os.Chtimes(p, mod, mod); err != nil {
			t.Fatal(err)
		}
	}
	if err := prune(dir, 4, 150*time.Minute, now); err != nil {
		t.Fatal(err)
	}
	ents, _ := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	// c0, c1, c2 are within 150 minutes; c3 is among the newest 4 but too old.
	if fmt.Sprint(names) != "[c0.json c1.json c2.json]" {
		t.Errorf("kept %v, want c0 c1 c2", names)
	}
}
