package main

// inspect: the config JSON, a listing of every layer, and the checks an image
// of Portcullis must pass, one PASS or FAIL line each (details under a FAIL):
//
//   - user: numeric UID[:GID], neither root (Kubernetes' runAsNonRoot needs a
//     number; an image that names no user runs as root);
//   - entrypoint: set, absolute, a regular file in the layers that the user may
//     execute, and a statically linked ELF executable for the config's
//     architecture (no interpreter, no shared libraries: there is no libc);
//   - no shell: no sh, bash, busybox or other shell by name, and no executable
//     besides the entrypoint (a renamed busybox is an executable too);
//   - not writable: nothing writable by others, owned by the image's user or
//     group-writable by its group (the root filesystem needs no writable path);
//   - no setuid: no setuid or setgid bit;
//   - file types: directories, regular files and symlinks only (no devices,
//     no whiteouts);
//   - ca certificates: /etc/ssl/certs/ca-certificates.crt holds PEM
//     certificates that parse (TLS to the IdP verifies against them);
//   - passwd: /etc/passwd and /etc/group name the image's user and group;
//   - labels: title, version, revision and created (OCI annotations) are set.

import (
	"archive/tar"
	"bytes"
	"crypto/x509"
	"debug/elf"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"path"
	"regexp"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// CABundle is where the image's CA certificates are, and where
// rustls-native-certs (openssl-probe) looks first on Linux.
const CABundle = "/etc/ssl/certs/ca-certificates.crt"

// shells are names that must not be in the image, wherever they are.
var shells = map[string]bool{
	"sh": true, "bash": true, "ash": true, "dash": true, "zsh": true, "ksh": true, "mksh": true,
	"csh": true, "tcsh": true, "fish": true, "busybox": true, "toybox": true,
}

var userPattern = regexp.MustCompile(`^([0-9]+)(?::([0-9]+))?$`)

var requiredLabels = []string{"org.opencontainers.image.title", labelVersion, labelRevision, labelCreated}

// Entry is one entry of a layer.
type Entry struct {
	Layer    int
	Name     string // absolute: /etc/passwd
	Type     byte
	Mode     int64 // permission, setuid, setgid and sticky bits, as in tar
	UID, GID int
	Size     int64
	Linkname string
	ModTime  time.Time
	Data     []byte // regular files only
}

// Layer is one layer's descriptor and entries.
type Layer struct {
	Digest, DiffID v1.Hash
	Size           int64
	Entries        []Entry
}

// CheckResult is one check: OK text when it passed, else its problems.
type CheckResult struct {
	Name     string
	OK       string
	Problems []string
}

func runInspect(args []string) (int, error) {
	img, err := oneImageArg("inspect", args)
	if err != nil {
		return 0, err
	}
	digest, err := img.Digest()
	if err != nil {
		return 0, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return 0, err
	}
	layers, err := ReadLayers(img)
	if err != nil {
		return 0, err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, raw, "", "  "); err != nil {
		return 0, err
	}
	cfgName, err := img.ConfigName()
	if err != nil {
		return 0, err
	}
	fmt.Printf("== image %s\n== config %s\n%s\n", digest, cfgName, pretty.String())
	for i, l := range layers {
		fmt.Printf("== layer %d/%d %s (%d bytes compressed, diff_id %s)\n", i+1, len(layers), l.Digest, l.Size, l.DiffID)
		for _, e := range l.Entries {
			fmt.Println(listingLine(e))
		}
	}
	fmt.Println("== checks")
	failed := 0
	for _, r := range Check(cf, layers) {
		if len(r.Problems) == 0 {
			fmt.Printf("PASS %s: %s\n", r.Name, r.OK)
			continue
		}
		failed++
		fmt.Printf("FAIL %s: %d problem(s)\n", r.Name, len(r.Problems))
		for _, p := range r.Problems {
			fmt.Printf("       - %s\n", p)
		}
	}
	fmt.Printf("inspect: %d checks failed\n", failed)
	if failed > 0 {
		return 1, nil
	}
	return 0, nil
}

func listingLine(e Entry) string {
	h := tar.Header{Typeflag: e.Type, Mode: e.Mode, Name: e.Name}
	line := fmt.Sprintf("%s %5d:%-5d %9d %s %s", h.FileInfo().Mode(), e.UID, e.GID, e.Size, e.ModTime.UTC().Format(time.RFC3339), e.Name)
	if e.Type == tar.TypeSymlink || e.Type == tar.TypeLink {
		line += " -> " + e.Linkname
	}
	return line
}

// ReadLayers lists every layer of img, keeping the contents of regular files.
func ReadLayers(img v1.Image) ([]Layer, error) {
	ls, err := img.Layers()
	if err != nil {
		return nil, err
	}
	var out []Layer
	for i, l := range ls {
		var layer Layer
		if layer.Digest, err = l.Digest(); err != nil {
			return nil, err
		}
		if layer.DiffID, err = l.DiffID(); err != nil {
			return nil, err
		}
		if layer.Size, err = l.Size(); err != nil {
			return nil, err
		}
		rc, err := l.Uncompressed()
		if err != nil {
			return nil, err
		}
		layer.Entries, err = readEntries(rc, i+1)
		rc.Close()
		if err != nil {
			return nil, fmt.Errorf("layer %d: %w", i+1, err)
		}
		out = append(out, layer)
	}
	return out, nil
}

func readEntries(r io.Reader, layer int) ([]Entry, error) {
	var entries []Entry
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return entries, nil
		}
		if err != nil {
			return nil, err
		}
		e := Entry{
			Layer: layer, Name: "/" + strings.TrimSuffix(strings.TrimPrefix(path.Clean("/"+h.Name), "/"), "/"),
			Type: h.Typeflag, Mode: h.Mode, UID: h.Uid, GID: h.Gid, Size: h.Size,
			Linkname: h.Linkname, ModTime: h.ModTime,
		}
		if h.Typeflag == tar.TypeReg {
			if e.Data, err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		}
		entries = append(entries, e)
	}
}

// Check runs every check on an image's config and layers.
func Check(cf *v1.ConfigFile, layers []Layer) []CheckResult {
	var all []Entry
	for _, l := range layers {
		all = append(all, l.Entries...)
	}
	files := map[string]Entry{} // the last layer's entry wins, as in the flattened image
	for _, e := range all {
		files[e.Name] = e
	}
	uid, gid, userResult := checkUser(cf.Config.User)
	entry, entryResult := checkEntrypoint(cf, files, uid)
	return []CheckResult{
		userResult,
		entryResult,
		checkNoShell(all, entry),
		checkNotWritable(all, uid, gid),
		checkNoSetuid(all),
		checkFileTypes(all),
		checkCABundle(files),
		checkPasswd(files, uid, gid),
		checkLabels(cf.Config.Labels),
	}
}

func checkUser(user string) (uid, gid int, r CheckResult) {
	r.Name = "user"
	uid, gid = -1, -1
	m := userPattern.FindStringSubmatch(user)
	switch {
	case user == "":
		r.Problems = append(r.Problems, "no user: the container runs as root")
		return
	case m == nil:
		r.Problems = append(r.Problems, fmt.Sprintf("user %q is not numeric UID[:GID] (runAsNonRoot cannot verify a name)", user))
		return
	}
	uid, _ = strconv.Atoi(m[1])
	if m[2] != "" {
		gid, _ = strconv.Atoi(m[2])
	}
	if uid == 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("user %q is root", user))
	}
	if gid == 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("user %q has the root group", user))
	}
	r.OK = fmt.Sprintf("%s (numeric, not root)", user)
	return
}

var elfMachines = map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}

func checkEntrypoint(cf *v1.ConfigFile, files map[string]Entry, uid int) (string, CheckResult) {
	r := CheckResult{Name: "entrypoint"}
	ep := cf.Config.Entrypoint
	if len(ep) == 0 {
		r.Problems = append(r.Problems, "no entrypoint")
		return "", r
	}
	if !path.IsAbs(ep[0]) {
		r.Problems = append(r.Problems, fmt.Sprintf("entrypoint %q is not an absolute path (no PATH lookup without a shell)", ep[0]))
		return "", r
	}
	name := path.Clean(ep[0])
	e, ok := files[name]
	if !ok || e.Type != tar.TypeReg {
		r.Problems = append(r.Problems, fmt.Sprintf("entrypoint %s is not a regular file in the layers", name))
		return name, r
	}
	exec := e.Mode & 0o001
	if e.UID == uid {
		exec = e.Mode & 0o100
	}
	if exec == 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("entrypoint %s (mode %#o) is not executable by the image's user", name, e.Mode&0o7777))
	}
	f, err := elf.NewFile(bytes.NewReader(e.Data))
	if err != nil {
		r.Problems = append(r.Problems, fmt.Sprintf("entrypoint %s is not an ELF executable: %v", name, err))
		return name, r
	}
	defer f.Close()
	if want, ok := elfMachines[cf.Architecture]; !ok || f.Machine != want {
		r.Problems = append(r.Problems, fmt.Sprintf("entrypoint %s is built for %s, the config says %s", name, f.Machine, cf.Architecture))
	}
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			interp, _ := io.ReadAll(p.Open())
			r.Problems = append(r.Problems, fmt.Sprintf("entrypoint %s is dynamically linked (interpreter %s), and the image has no libc", name, strings.TrimRight(string(interp), "\x00")))
		}
	}
	if libs, _ := f.ImportedLibraries(); len(libs) > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("entrypoint %s needs shared libraries: %s", name, strings.Join(libs, ", ")))
	}
	r.OK = fmt.Sprintf("%s, static %s ELF, mode %#o, %d bytes; cmd %q", name, f.Machine, e.Mode&0o7777, e.Size, cf.Config.Cmd)
	return name, r
}

func checkNoShell(all []Entry, entrypoint string) CheckResult {
	r := CheckResult{Name: "no shell"}
	for _, e := range all {
		if shells[path.Base(e.Name)] && e.Type != tar.TypeDir {
			r.Problems = append(r.Problems, fmt.Sprintf("%s: a shell", e.Name))
			continue
		}
		if (e.Type == tar.TypeSymlink || e.Type == tar.TypeLink) && shells[path.Base(e.Linkname)] {
			r.Problems = append(r.Problems, fmt.Sprintf("%s -> %s: a link to a shell", e.Name, e.Linkname))
			continue
		}
		if e.Type == tar.TypeReg && e.Mode&0o111 != 0 && e.Name != entrypoint {
			r.Problems = append(r.Problems, fmt.Sprintf("%s (mode %#o): an executable besides the entrypoint", e.Name, e.Mode&0o7777))
		}
	}
	r.OK = "no shell or busybox, no executable but the entrypoint"
	return r
}

func checkNotWritable(all []Entry, uid, gid int) CheckResult {
	r := CheckResult{Name: "not writable"}
	for _, e := range all {
		if e.Type == tar.TypeSymlink || e.Type == tar.TypeLink {
			continue
		}
		switch {
		case e.Mode&0o002 != 0:
			r.Problems = append(r.Problems, fmt.Sprintf("%s (mode %#o) is writable by others", e.Name, e.Mode&0o7777))
		case uid > 0 && e.UID == uid:
			r.Problems = append(r.Problems, fmt.Sprintf("%s is owned by the image's user %d", e.Name, uid))
		case gid > 0 && e.GID == gid && e.Mode&0o020 != 0:
			r.Problems = append(r.Problems, fmt.Sprintf("%s (mode %#o) is writable by the image's group %d", e.Name, e.Mode&0o7777, gid))
		}
	}
	r.OK = "nothing writable by others or by the image's user and group"
	return r
}

func checkNoSetuid(all []Entry) CheckResult {
	r := CheckResult{Name: "no setuid"}
	for _, e := range all {
		if e.Type != tar.TypeDir && e.Mode&(0o4000|0o2000) != 0 {
			r.Problems = append(r.Problems, fmt.Sprintf("%s (mode %#o) is setuid or setgid", e.Name, e.Mode&0o7777))
		}
	}
	r.OK = "no setuid or setgid bit"
	return r
}

func checkFileTypes(all []Entry) CheckResult {
	r := CheckResult{Name: "file types"}
	for _, e := range all {
		switch {
		case strings.HasPrefix(path.Base(e.Name), ".wh."):
			r.Problems = append(r.Problems, fmt.Sprintf("%s is a whiteout (build the image as one flat layer)", e.Name))
		case e.Type != tar.TypeDir && e.Type != tar.TypeReg && e.Type != tar.TypeSymlink && e.Type != tar.TypeLink:
			r.Problems = append(r.Problems, fmt.Sprintf("%s has tar type %q (a device, fifo or unknown)", e.Name, string(e.Type)))
		}
	}
	r.OK = fmt.Sprintf("%d entries: directories, regular files and links only", len(all))
	return r
}

func checkCABundle(files map[string]Entry) CheckResult {
	r := CheckResult{Name: "ca certificates"}
	e, ok := files[CABundle]
	if !ok || e.Type != tar.TypeReg {
		r.Problems = append(r.Problems, fmt.Sprintf("no %s: TLS to the IdP would trust nothing", CABundle))
		return r
	}
	certs, bad := 0, 0
	rest := e.Data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			bad++
		} else {
			certs++
		}
	}
	if certs == 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%s holds no certificate that parses", CABundle))
	}
	if bad > 0 {
		r.Problems = append(r.Problems, fmt.Sprintf("%s: %d certificates do not parse", CABundle, bad))
	}
	r.OK = fmt.Sprintf("%s: %d certificates", CABundle, certs)
	return r
}

// idNames maps the ids of an /etc/passwd or /etc/group file (third field) to names.
func idNames(data []byte) map[int]string {
	out := map[int]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Split(line, ":")
		if len(f) < 3 {
			continue
		}
		if id, err := strconv.Atoi(f[2]); err == nil {
			out[id] = f[0]
		}
	}
	return out
}

func checkPasswd(files map[string]Entry, uid, gid int) CheckResult {
	r := CheckResult{Name: "passwd"}
	var names []string
	for _, f := range []struct {
		file string
		id   int
	}{{"/etc/passwd", uid}, {"/etc/group", gid}} {
		if f.id < 0 {
			continue
		}
		e, ok := files[f.file]
		if !ok {
			r.Problems = append(r.Problems, fmt.Sprintf("no %s", f.file))
			continue
		}
		n, ok := idNames(e.Data)[f.id]
		if !ok {
			r.Problems = append(r.Problems, fmt.Sprintf("%s has no entry for %d", f.file, f.id))
			continue
		}
		names = append(names, fmt.Sprintf("%s %d = %s", f.file, f.id, n))
	}
	r.OK = strings.Join(names, ", ")
	return r
}

func checkLabels(labels map[string]string) CheckResult {
	r := CheckResult{Name: "labels"}
	for _, k := range requiredLabels {
		if labels[k] == "" {
			r.Problems = append(r.Problems, fmt.Sprintf("label %s is not set", k))
		}
	}
	r.OK = fmt.Sprintf("%d labels (%s=%s, %s=%s)", len(labels), labelVersion, labels[labelVersion], labelRevision, labels[labelRevision])
	return r
}
