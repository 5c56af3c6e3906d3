package hostprobe

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hardened-dev/hardened/internal/atomicfile"
)

// cacheSchema changes when the cache file's meaning changes.
const cacheSchema = 1

// binaryKey identifies one binary's content without reading it: a changed,
// replaced or touched binary gets a new key.
type binaryKey struct {
	Path    string `json:"path"`
	Dev     uint64 `json:"dev"`
	Ino     uint64 `json:"ino"`
	Size    int64  `json:"size"`
	MtimeNs int64  `json:"mtime_ns"`
	CtimeNs int64  `json:"ctime_ns"`
}

// cacheEntry is the file stored per binary. Only Key and Raw are trusted
// on reading; the verdict is computed again from Raw, so a shim with a
// newer advisory table never trusts an old verdict.
type cacheEntry struct {
	Schema  int       `json:"schema"`
	Key     binaryKey `json:"key"`
	Raw     string    `json:"raw"`
	Version string    `json:"version"` // for people reading the file
	Verdict string    `json:"verdict"` // for people reading the file
}

// GateRunc returns the runc at path's info and nil if its version has no
// known escape, or an error wrapping ErrVulnerableRuntime (with the info)
// or ErrProbe (without). So that the shim does not run runc on every
// container start, the probe result is cached in cacheDir ("" for no
// cache), keyed by the binary's resolved path, device, inode, size, mtime
// and ctime: a changed binary is probed again. The cache file is written
// atomically and ignored unless it is a regular file owned by this user
// and writable by nobody else.
func (p Prober) GateRunc(ctx context.Context, path, cacheDir string) (*RuntimeInfo, error) {
	abs, err := resolveBinary(path)
	if err != nil {
		return nil, err
	}
	before, err := statKey(abs)
	if err != nil {
		return nil, err
	}
	cacheFile := ""
	if cacheDir != "" {
		sum := sha256.Sum256([]byte(abs))
		cacheFile = filepath.Join(cacheDir, "runc-"+hex.EncodeToString(sum[:8])+".json")
		if info, ok := readCache(cacheFile, before); ok {
			return info, CheckRunc(*info.Semver)
		}
	}
	info, err := p.probeRunc(ctx, abs)
	if err != nil {
		return nil, err
	}
	verdictErr := CheckRunc(*info.Semver)
	// Cache only if the binary did not change while it was probed.
	if after, err := statKey(abs); err == nil && after == before && cacheFile != "" {
		verdict := "ok"
		if verdictErr != nil {
			verdict = verdictErr.Error()
		}
		// A cache that cannot be written costs a probe next time, no more.
		_ = writeCache(cacheFile, cacheEntry{
			Schema: cacheSchema, Key: before, Raw: info.Raw, Version: info.Version, Verdict: verdict,
		})
	}
	return info, verdictErr
}

func statKey(abs string) (binaryKey, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(abs, &st); err != nil {
		return binaryKey{}, fmt.Errorf("%w: %w", ErrProbe, &os.PathError{Op: "stat", Path: abs, Err: err})
	}
	return binaryKey{
		Path:    abs,
		Dev:     uint64(st.Dev),
		Ino:     st.Ino,
		Size:    st.Size,
		MtimeNs: st.Mtim.Nano(),
		CtimeNs: st.Ctim.Nano(),
	}, nil
}

func readCache(name string, key binaryKey) (*RuntimeInfo, bool) {
	f, err := os.Open(name)
	if err != nil {
		return nil, false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !trustedFile(fi) {
		return nil, false
	}
	data, err := io.ReadAll(io.LimitReader(f, maxOutput*2))
	if err != nil {
		return nil, false
	}
	var e cacheEntry
	if err := json.Unmarshal(data, &e); err != nil || e.Schema != cacheSchema || e.Key != key {
		return nil, false
	}
	v, err := ParseRuncVersion(e.Raw)
	if err != nil {
		return nil, false
	}
	return &RuntimeInfo{Path: key.Path, Version: v.String(), Semver: &v, Raw: e.Raw}, true
}

// trustedFile: a regular file of ours that nobody else may write. A cache
// someone else can write could claim any version.
func trustedFile(fi os.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && fi.Mode().IsRegular() && fi.Mode().Perm()&0o022 == 0 && int(st.Uid) == os.Geteuid()
}

func writeCache(name string, e cacheEntry) error {
	dir := filepath.Dir(name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("failed to create gate cache dir: %w", err)
	}
	data, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode gate cache: %w", err)
	}
	if err := atomicfile.Write(name, append(data, '\n'), 0o600); err != nil {
		return fmt.Errorf("failed to write gate cache: %w", err)
	}
	return nil
}
