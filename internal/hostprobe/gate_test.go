package hostprobe

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// fakeRunc writes a shell script at path that appends a line to count on
// every run and prints `runc --version` output for version.
func fakeRunc(t *testing.T, path, count, version string) {
	t.Helper()
	script := fmt.Sprintf(`#!/bin/sh
echo run >> %q
[ "$1" = "--version" ] || exit 2
cat <<'EOF'
runc version %s
commit: v%s-0-gdeadbeef
spec: 1.3.0
go: go1.26.8
libseccomp: 2.5.4
EOF
`, count, version, version)
	writeScript(t, path, script)
}

func writeScript(t *testing.T, path, script string) {
	t.Helper()
	// Write to a temp name and rename, as package managers do: the old
	// inode stays intact for anyone running it.
	tmp := path + ".new"
	if err := os.WriteFile(tmp, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func runs(t *testing.T, count string) int {
	t.Helper()
	data, err := os.ReadFile(count)
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(data), "run\n")
}

func TestGateRuncVersions(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		version string
		refused bool
	}{
		{"1.1.11", true},
		{"1.1.12", true},
		{"1.2.7", true},
		{"1.3.2", true},
		{"1.2.8", false},
		{"1.3.3", false},
		{"1.4.0", false},
		{"1.5.2", false},
	} {
		t.Run(tc.version, func(t *testing.T) {
			dir := t.TempDir()
			bin, count := filepath.Join(dir, "runc"), filepath.Join(dir, "count")
			fakeRunc(t, bin, count, tc.version)
			info, err := (Prober{}).GateRunc(ctx, bin, "")
			if info == nil || info.Version != tc.version || info.Path != bin || info.Semver == nil ||
				!strings.HasPrefix(info.Raw, "runc version "+tc.version+"\n") {
				t.Fatalf("info = %+v (err %v)", info, err)
			}
			if tc.refused {
				if !errors.Is(err, ErrVulnerableRuntime) || !strings.Contains(err.Error(), "upgrade to runc") {
					t.Errorf("not refused: %v", err)
				}
			} else if err != nil {
				t.Errorf("refused: %v", err)
			}
			// No cache: every call runs the binary.
			(Prober{}).GateRunc(ctx, bin, "")
			if n := runs(t, count); n != 2 {
				t.Errorf("%d runs without a cache, want 2", n)
			}
		})
	}
}

func TestGateRuncCache(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bin, count := filepath.Join(dir, "runc"), filepath.Join(dir, "count")
	cache := filepath.Join(dir, "cache", "gate")
	fakeRunc(t, bin, count, "1.5.2")

	for i := range 3 {
		info, err := (Prober{}).GateRunc(ctx, bin, cache)
		if err != nil || info.Version != "1.5.2" {
			t.Fatalf("call %d: %+v, %v", i, info, err)
		}
	}
	if n := runs(t, count); n != 1 {
		t.Fatalf("%d runs for 3 calls with a cache, want 1", n)
	}
	files, _ := filepath.Glob(filepath.Join(cache, "runc-*.json"))
	if len(files) != 1 {
		t.Fatalf("cache files: %v", files)
	}
	if fi, err := os.Stat(files[0]); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("cache file mode: %v %v", fi.Mode(), err)
	}
	if fi, err := os.Stat(cache); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("cache dir mode: %v %v", fi.Mode(), err)
	}
	if leftovers, _ := filepath.Glob(filepath.Join(cache, ".runc-*")); len(leftovers) != 0 {
		t.Errorf("temp files left: %v", leftovers)
	}

	// A new binary (an upgrade gone wrong) is probed again and refused.
	fakeRunc(t, bin, count, "1.1.11")
	_, err := (Prober{}).GateRunc(ctx, bin, cache)
	if !errors.Is(err, ErrVulnerableRuntime) || runs(t, count) != 2 {
		t.Fatalf("changed binary: %v, %d runs", err, runs(t, count))
	}
	// The refusal is cached too, and still a refusal.
	info, err := (Prober{}).GateRunc(ctx, bin, cache)
	if !errors.Is(err, ErrVulnerableRuntime) || info == nil || info.Version != "1.1.11" || runs(t, count) != 2 {
		t.Fatalf("cached refusal: %+v, %v, %d runs", info, err, runs(t, count))
	}

	// Same inode and size, rewritten in place: probed again.
	fakeRunc(t, bin, count, "1.5.2")
	(Prober{}).GateRunc(ctx, bin, cache) // 3
	data, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(bin, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(strings.ReplaceAll(string(data), "1.5.2", "1.2.7")), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := (Prober{}).GateRunc(ctx, bin, cache); !errors.Is(err, ErrVulnerableRuntime) || runs(t, count) != 4 {
		t.Fatalf("rewritten in place: %v, %d runs", err, runs(t, count))
	}

	// A cache file others can write is not trusted.
	fakeRunc(t, bin, count, "1.5.2")
	(Prober{}).GateRunc(ctx, bin, cache) // 5
	files, _ = filepath.Glob(filepath.Join(cache, "runc-*.json"))
	if err := os.Chmod(files[0], 0o666); err != nil {
		t.Fatal(err)
	}
	(Prober{}).GateRunc(ctx, bin, cache) // 6: ignored the cache, rewrote it
	(Prober{}).GateRunc(ctx, bin, cache) // cached again
	if n := runs(t, count); n != 6 {
		t.Fatalf("%d runs, want 6", n)
	}

	// A forged cache entry for another key does not apply.
	if err := os.WriteFile(files[0], []byte(`{"schema":1,"key":{"path":"/x"},"raw":"runc version 9.9.9\n"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if info, _ := (Prober{}).GateRunc(ctx, bin, cache); info.Version != "1.5.2" || runs(t, count) != 7 {
		t.Fatalf("forged cache: %+v, %d runs", info, runs(t, count))
	}
	// Garbage in the cache: probed again.
	if err := os.WriteFile(files[0], []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (Prober{}).GateRunc(ctx, bin, cache); err != nil || runs(t, count) != 8 {
		t.Fatalf("garbage cache: %v, %d runs", err, runs(t, count))
	}
	// An unwritable cache dir costs a probe per call, nothing else.
	if _, err := (Prober{}).GateRunc(ctx, bin, filepath.Join(bin, "not-a-dir")); err != nil || runs(t, count) != 9 {
		t.Fatalf("unwritable cache: %v, %d runs", err, runs(t, count))
	}
}

func TestGateRuncLookup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	bin, count := filepath.Join(dir, "runc-1.5.2"), filepath.Join(dir, "count")
	fakeRunc(t, bin, count, "1.5.2")
	binDir := filepath.Join(dir, "bin")
	if err := os.Mkdir(binDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(binDir, "runc")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", binDir+string(os.PathListSeparator)+os.Getenv("PATH"))
	cache := filepath.Join(dir, "cache")

	info, err := (Prober{}).GateRunc(ctx, "runc", cache)
	if err != nil || info.Path != bin {
		t.Fatalf("by name: %+v, %v", info, err)
	}
	// The symlink and the name share the resolved binary's cache entry.
	if info, err := (Prober{}).GateRunc(ctx, filepath.Join(binDir, "runc"), cache); err != nil || info.Path != bin || runs(t, count) != 1 {
		t.Fatalf("by symlink: %+v, %v, %d runs", info, err, runs(t, count))
	}

	for _, bad := range []string{"./runc", "bin/runc", "", "no-such-runc", filepath.Join(dir, "missing")} {
		if _, err := (Prober{}).GateRunc(ctx, bad, cache); !errors.Is(err, ErrProbe) {
			t.Errorf("GateRunc(%q) = %v, want ErrProbe", bad, err)
		}
	}
}

func TestProbeFailures(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cache := filepath.Join(dir, "cache")

	fails := filepath.Join(dir, "fails")
	writeScript(t, fails, "#!/bin/sh\necho 'something broke' >&2\nexit 3\n")
	_, err := (Prober{}).GateRunc(ctx, fails, cache)
	if !errors.Is(err, ErrProbe) || !strings.Contains(err.Error(), "something broke") || !strings.Contains(err.Error(), "exit status 3") {
		t.Errorf("failing binary: %v", err)
	}
	if files, _ := filepath.Glob(filepath.Join(cache, "*")); len(files) != 0 {
		t.Errorf("a failed probe was cached: %v", files)
	}

	garbage := filepath.Join(dir, "garbage")
	writeScript(t, garbage, "#!/bin/sh\necho 'crun version 1.14'\n")
	if _, err := (Prober{}).ProbeRunc(ctx, garbage); !errors.Is(err, ErrBadVersion) {
		t.Errorf("not runc: %v", err)
	}

	slow := filepath.Join(dir, "slow")
	writeScript(t, slow, "#!/bin/sh\nexec sleep 30\n")
	tctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = (Prober{}).ProbeRunc(tctx, slow)
	if !errors.Is(err, ErrProbe) || !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("slow binary: %v after %v", err, time.Since(start))
	}

	runsc := filepath.Join(dir, "runsc")
	writeScript(t, runsc, "#!/bin/sh\nprintf 'runsc version release-20260105.0\\nspec: 1.1.0-rc.1\\n'\n")
	info, err := (Prober{}).ProbeRunsc(ctx, runsc)
	if err != nil || info.Version != "release-20260105.0" || info.Semver != nil || info.Path != runsc {
		t.Errorf("runsc: %+v, %v", info, err)
	}
	if _, err := (Prober{}).ProbeRunsc(ctx, garbage); !errors.Is(err, ErrBadVersion) {
		t.Errorf("runsc garbage: %v", err)
	}
	if _, err := (Prober{}).ProbeRunsc(ctx, filepath.Join(dir, "missing")); !errors.Is(err, ErrProbe) {
		t.Errorf("runsc missing: %v", err)
	}
}
