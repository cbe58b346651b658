package main

// unpack: the image's layers extracted into a directory, as a container runtime
// would lay out its root filesystem (owners and modes kept; the smoke test in
// scripts/image runs the binary chrooted into it).

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

func runUnpack(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: oci-image unpack IMAGE DIR")
	}
	img, err := LoadImage(args[0])
	if err != nil {
		return err
	}
	n, err := Unpack(img, args[1])
	if err != nil {
		return err
	}
	fmt.Printf("unpacked %d entries into %s\n", n, args[1])
	return nil
}

// Unpack extracts the flattened filesystem of img into dir, which must be
// empty or absent. Only directories, regular files and symlinks are accepted,
// and no entry may point outside dir. Owners are kept when running as root.
func Unpack(img v1.Image, dir string) (int, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return 0, fmt.Errorf("%s is not empty", dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, err
	}
	rc := mutate.Extract(img)
	defer rc.Close()
	return extractTar(rc, dir)
}

func extractTar(r io.Reader, dir string) (int, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return 0, err
	}
	asRoot := os.Geteuid() == 0
	type dirTime struct {
		path string
		t    time.Time
	}
	var dirTimes []dirTime
	tr := tar.NewReader(r)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return n, err
		}
		rel := filepath.Clean(filepath.FromSlash(strings.TrimPrefix(h.Name, "/")))
		if rel == "." {
			continue
		}
		if rel == ".." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) {
			return n, fmt.Errorf("entry %q points outside the root filesystem", h.Name)
		}
		target := filepath.Join(root, rel)
		mode := h.FileInfo().Mode() & (os.ModePerm | os.ModeSetuid | os.ModeSetgid | os.ModeSticky)
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(target, 0o700); err != nil {
				return n, err
			}
			dirTimes = append(dirTimes, dirTime{target, h.ModTime})
		case tar.TypeReg:
			if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
				return n, err
			}
			f, err := os.OpenFile(target, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
			if err != nil {
				return n, err
			}
			if _, err := io.Copy(f, tr); err != nil {
				f.Close()
				return n, err
			}
			if err := f.Close(); err != nil {
				return n, err
			}
		case tar.TypeSymlink:
			if filepath.IsAbs(h.Linkname) || strings.HasPrefix(filepath.Clean(filepath.Join(filepath.Dir(rel), h.Linkname)), "..") {
				return n, fmt.Errorf("symlink %q -> %q points outside the root filesystem", h.Name, h.Linkname)
			}
			if err := os.Symlink(h.Linkname, target); err != nil {
				return n, err
			}
			n++
			continue
		default:
			return n, fmt.Errorf("entry %q: type %q is not a directory, file or symlink", h.Name, string(h.Typeflag))
		}
		if asRoot {
			if err := os.Lchown(target, h.Uid, h.Gid); err != nil {
				return n, err
			}
		}
		// Chmod after chown: chown clears setuid bits (which inspect refuses anyway).
		if err := os.Chmod(target, mode); err != nil {
			return n, err
		}
		if h.Typeflag == tar.TypeReg {
			if err := os.Chtimes(target, h.ModTime, h.ModTime); err != nil {
				return n, err
			}
		}
		n++
	}
	// Directory times last: creating their entries changed them.
	for i := len(dirTimes) - 1; i >= 0; i-- {
		if err := os.Chtimes(dirTimes[i].path, dirTimes[i].t, dirTimes[i].t); err != nil {
			return n, err
		}
	}
	return n, nil
}
