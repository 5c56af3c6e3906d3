package decide

import (
	"testing"

	"github.com/containerd/containerd/api/types/runc/options"
	gproto "google.golang.org/protobuf/proto"
)

func TestRuncOptionsNeverTakeCallerBinary(t *testing.T) {
	caller := &options.Options{
		BinaryName: "/tmp/x", Root: "/tmp/root", NoPivotRoot: true, NoNewKeyring: true,
		ShimCgroup: "/shim", IoUid: 1, IoGid: 2, SystemdCgroup: true, CriuImagePath: "/i", CriuWorkPath: "/w",
	}
	got, notes := RuncOptions(caller, "/usr/bin/runc", "/run/r")
	want := &options.Options{
		BinaryName: "/usr/bin/runc", Root: "/run/r", NoNewKeyring: true,
		ShimCgroup: "/shim", IoUid: 1, IoGid: 2, SystemdCgroup: true, CriuImagePath: "/i", CriuWorkPath: "/w",
	}
	if !gproto.Equal(got, want) {
		t.Errorf("got %+v\nwant %+v", got, want)
	}
	if len(notes) != 3 {
		t.Errorf("notes %q, want one per ignored setting (binary, root, no_pivot_root)", notes)
	}
	got, notes = RuncOptions(nil, "/usr/bin/runc", "")
	if !gproto.Equal(got, &options.Options{BinaryName: "/usr/bin/runc"}) || notes != nil {
		t.Errorf("no caller: %+v %q", got, notes)
	}
}
