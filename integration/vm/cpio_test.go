//go:build integration

package vm

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// writeCpio writes the tree under root as an uncompressed "newc" cpio
// archive, the format the kernel unpacks an initramfs from: directories,
// regular files and symlinks, owned by root, paths relative to root.
func writeCpio(w io.Writer, root string) error {
	bw := bufio.NewWriterSize(w, 1<<20)
	ino := uint32(1)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil || rel == "." {
			return err
		}
		info, err := os.Lstat(path)
		if err != nil {
			return err
		}
		var mode uint32
		var data []byte
		switch {
		case info.Mode().IsDir():
			mode = 0o040000
		case info.Mode()&fs.ModeSymlink != 0:
			mode = 0o120000
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			data = []byte(target)
		case info.Mode().IsRegular():
			mode = 0o100000
		default:
			return fmt.Errorf("%s: not a directory, regular file or symlink", path)
		}
		mode |= uint32(info.Mode().Perm())
		size := int64(len(data))
		if info.Mode().IsRegular() {
			size = info.Size()
		}
		if err := cpioHeader(bw, ino, mode, size, rel); err != nil {
			return err
		}
		ino++
		switch {
		case data != nil:
			if _, err := bw.Write(data); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			n, err := io.Copy(bw, f)
			f.Close()
			if err != nil {
				return err
			}
			if n != size {
				return fmt.Errorf("%s changed while archived", path)
			}
		}
		return pad4(bw, size)
	})
	if err != nil {
		return err
	}
	if err := cpioHeader(bw, 0, 0, 0, "TRAILER!!!"); err != nil {
		return err
	}
	return bw.Flush()
}

// cpioHeader writes a newc header and the NUL-terminated name, padded.
func cpioHeader(w io.Writer, ino, mode uint32, size int64, name string) error {
	nlink := 1
	if mode&0o170000 == 0o040000 {
		nlink = 2
	}
	// magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor,
	// devminor, rdevmajor, rdevminor, namesize, check
	h := fmt.Sprintf("070701%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x%08x",
		ino, mode, 0, 0, nlink, 0, size, 0, 0, 0, 0, len(name)+1, 0)
	if _, err := io.WriteString(w, h+name+"\x00"); err != nil {
		return err
	}
	return pad4(w, int64(len(h)+len(name)+1))
}

func pad4(w io.Writer, n int64) error {
	if r := n % 4; r != 0 {
		_, err := io.WriteString(w, strings.Repeat("\x00", int(4-r)))
		return err
	}
	return nil
}
