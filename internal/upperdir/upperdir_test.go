package upperdir

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"golang.org/x/sys/unix"
)

func TestWritten(t *testing.T) {
	up := t.TempDir()
	mk := func(p string) {
		full := filepath.Join(up, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mk("var/lib/nginx/body/0001")
	mk("var/log/nginx/error.log")
	mk("tmp/x")                                                                    // scratch: excluded
	mk("etc/hostname")                                                             // a mount destination: excluded
	mk(".ash_history")                                                             // at the top
	if err := os.MkdirAll(filepath.Join(up, "var/cache/new"), 0o755); err != nil { // an empty directory made
		t.Fatal(err)
	}
	// A whiteout: the image's /etc/motd deleted.
	if err := unix.Mknod(filepath.Join(up, "etc/motd"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	got, truncated, err := Written(up, []string{"/tmp", "/etc/hostname"})
	if err != nil || truncated {
		t.Fatal(err, truncated)
	}
	want := []string{"/.ash_history", "/etc", "/var/cache/new", "/var/lib/nginx", "/var/log/nginx"}
	if !slices.Equal(got, want) {
		t.Errorf("written %v, want %v", got, want)
	}
	if Upper([]string{"index=off", "upperdir=/s/2/fs", "lowerdir=/s/1/fs"}) != "/s/2/fs" || Upper([]string{"ro"}) != "" {
		t.Error("Upper")
	}
}
