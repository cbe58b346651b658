package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func TestGoodImagePassesEveryCheck(t *testing.T) {
	for _, r := range checkImage(t, buildGood(t, testEpoch)) {
		if len(r.Problems) > 0 {
			t.Errorf("%s: %v", r.Name, r.Problems)
		}
	}
}

func TestBuildIsReproducible(t *testing.T) {
	a, err := buildGood(t, testEpoch).Digest()
	if err != nil {
		t.Fatal(err)
	}
	// Another directory, fresh files a second later: same digest.
	time.Sleep(1100 * time.Millisecond)
	b, err := buildGood(t, testEpoch).Digest()
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Fatalf("two builds of the same inputs: %s and %s", a, b)
	}
	c, err := buildGood(t, testEpoch.Add(time.Second)).Digest()
	if err != nil {
		t.Fatal(err)
	}
	if c == a {
		t.Fatal("the epoch does not reach the image")
	}
}

func TestLayerHeadersComeFromTheSpec(t *testing.T) {
	spec, bin := writeSpec(t)
	// The host's mode and time of the binary must not matter.
	if err := os.Chmod(bin, 0o700); err != nil {
		t.Fatal(err)
	}
	data, err := LayerTar(spec, bin, testEpoch)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := readEntries(bytes.NewReader(data), 1)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name)
		if e.UID != 0 || e.GID != 0 || !e.ModTime.Equal(testEpoch) {
			t.Errorf("%s: owner %d:%d, time %s", e.Name, e.UID, e.GID, e.ModTime)
		}
		if e.Name == "/portcullis" && e.Mode != 0o755 {
			t.Errorf("/portcullis has mode %#o, the spec says 0755", e.Mode)
		}
	}
	want := "/etc /etc/group /etc/passwd /etc/ssl /etc/ssl/certs /etc/ssl/certs/ca-certificates.crt /portcullis"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("entries %s, want %s", got, want)
	}
}

// expectProblems requires each (check, substring) pair among the results.
func expectProblems(t *testing.T, results []CheckResult, want map[string][]string) {
	t.Helper()
	got := map[string]string{}
	for _, r := range results {
		got[r.Name] = strings.Join(r.Problems, "\n")
	}
	for check, subs := range want {
		for _, s := range subs {
			if !strings.Contains(got[check], s) {
				t.Errorf("check %q: no problem containing %q; got:\n%s", check, s, got[check])
			}
		}
	}
	for check, problems := range got {
		if _, expected := want[check]; !expected && problems != "" {
			t.Errorf("check %q failed unexpectedly:\n%s", check, problems)
		}
	}
}

func TestBrokenImageFailsEveryCheck(t *testing.T) {
	cfg := v1.Config{User: "nonroot", Entrypoint: []string{"/portcullis"}, Labels: map[string]string{"org.opencontainers.image.title": "x"}}
	img := imageFromEntries(t, cfg, []tarEntry{
		{name: "bin/", typ: tar.TypeDir, mode: 0o755},
		{name: "bin/sh", mode: 0o755, data: []byte("#!")},
		{name: "bin/ls", typ: tar.TypeSymlink, mode: 0o777, link: "busybox"},
		{name: "usr/local/bin/tool", mode: 0o755, data: []byte("renamed busybox")},
		{name: "portcullis", mode: 0o755, data: fakeELF(elf.EM_X86_64, "/lib64/ld-linux-x86-64.so.2")},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
		{name: "etc/passwd", mode: 0o646, data: []byte("root:x:0:0::/:/bin/sh\n")},
		{name: "etc/sudo", mode: 0o4755 &^ 0o111, data: []byte("s")},
		{name: "dev/null", typ: tar.TypeChar, mode: 0o666},
		{name: "etc/.wh.group", mode: 0o644},
	})
	expectProblems(t, checkImage(t, img), map[string][]string{
		"user":            {`user "nonroot" is not numeric`},
		"entrypoint":      {"dynamically linked (interpreter /lib64/ld-linux-x86-64.so.2)"},
		"no shell":        {"/bin/sh: a shell", "/usr/local/bin/tool (mode 0755): an executable besides the entrypoint", "/bin/ls"},
		"not writable":    {"/tmp (mode 01777) is writable by others", "/etc/passwd (mode 0646) is writable by others", "/dev/null"},
		"no setuid":       {"/etc/sudo (mode 04644) is setuid or setgid"},
		"file types":      {"/dev/null has tar type", "/etc/.wh.group is a whiteout"},
		"ca certificates": {"no /etc/ssl/certs/ca-certificates.crt"},
		"labels":          {"label org.opencontainers.image.version is not set", "label org.opencontainers.image.created is not set"},
	})
}

func TestRootUserAndMissingEntrypoint(t *testing.T) {
	_, bin := writeSpec(t)
	ca, err := os.ReadFile(filepath.Join(filepath.Dir(bin), "ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]string{}
	for _, k := range requiredLabels {
		labels[k] = "set"
	}
	base := []tarEntry{
		{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: ca},
		{name: "etc/passwd", mode: 0o644, data: []byte("nonroot:x:65532:65532::/:/sbin/nologin\n")},
		{name: "etc/group", mode: 0o644, data: []byte("nonroot:x:65532:\n")},
	}
	cases := []struct {
		name    string
		cfg     v1.Config
		entries []tarEntry
		want    map[string][]string
	}{
		{"root user", v1.Config{User: "0:0", Entrypoint: []string{"/portcullis"}, Labels: labels},
			append([]tarEntry{{name: "portcullis", mode: 0o755, data: fakeELF(elf.EM_X86_64, "")}}, base...),
			map[string][]string{"user": {`user "0:0" is root`, "root group"}, "passwd": {"/etc/passwd has no entry for 0", "/etc/group has no entry for 0"}}},
		{"no user", v1.Config{Entrypoint: []string{"/portcullis"}, Labels: labels},
			append([]tarEntry{{name: "portcullis", mode: 0o755, data: fakeELF(elf.EM_X86_64, "")}}, base...),
			map[string][]string{"user": {"no user: the container runs as root"}}},
		{"no entrypoint", v1.Config{User: "65532:65532", Cmd: []string{"/portcullis"}, Labels: labels}, base,
			map[string][]string{"entrypoint": {"no entrypoint"}}},
		{"relative entrypoint", v1.Config{User: "65532:65532", Entrypoint: []string{"portcullis"}, Labels: labels},
			append([]tarEntry{{name: "portcullis", mode: 0o755, data: fakeELF(elf.EM_X86_64, "")}}, base...),
			map[string][]string{"entrypoint": {"not an absolute path"}, "no shell": {"an executable besides the entrypoint"}}},
		{"entrypoint not in the layers", v1.Config{User: "65532:65532", Entrypoint: []string{"/portcullis"}, Labels: labels}, base,
			map[string][]string{"entrypoint": {"/portcullis is not a regular file in the layers"}}},
		{"wrong machine, not executable, owned by the user", v1.Config{User: "65532:65532", Entrypoint: []string{"/portcullis"}, Labels: labels},
			append([]tarEntry{{name: "portcullis", mode: 0o744, uid: 65532, data: fakeELF(elf.EM_AARCH64, "")}}, base...),
			map[string][]string{
				"entrypoint":   {"is built for EM_AARCH64, the config says amd64"},
				"not writable": {"/portcullis is owned by the image's user 65532"},
			}},
		{"group-writable by the image's group, not executable by others", v1.Config{User: "65532:65532", Entrypoint: []string{"/portcullis"}, Labels: labels},
			append([]tarEntry{{name: "portcullis", mode: 0o774, gid: 65532, data: fakeELF(elf.EM_X86_64, "")}}, base...),
			map[string][]string{
				"entrypoint":   {"is not executable by the image's user"},
				"not writable": {"/portcullis (mode 0774) is writable by the image's group 65532"},
			}},
		{"not an ELF", v1.Config{User: "65532:65532", Entrypoint: []string{"/portcullis"}, Labels: labels},
			append([]tarEntry{{name: "portcullis", mode: 0o755, data: []byte("#!/bin/sh\n")}}, base...),
			map[string][]string{"entrypoint": {"is not an ELF executable"}}},
		{"CA bundle without a certificate", v1.Config{User: "65532:65532", Entrypoint: []string{"/portcullis"}, Labels: labels},
			[]tarEntry{{name: "portcullis", mode: 0o755, data: fakeELF(elf.EM_X86_64, "")}, base[1], base[2],
				{name: "etc/ssl/certs/ca-certificates.crt", mode: 0o644, data: []byte("not pem\n")}},
			map[string][]string{"ca certificates": {"holds no certificate that parses"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			expectProblems(t, checkImage(t, imageFromEntries(t, c.cfg, c.entries)), c.want)
		})
	}
}

func TestSpecRefusesMistakes(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "image.toml")
	bad := `
[config]
entrypoint = []
exposed_ports = ["4180"]
colour = "blue"
[[file]]
path = "etc/passwd"
source = "passwd"
mode = 0o4755
[[file]]
path = "/a/../b"
`
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := LoadSpec(file)
	if err == nil || !strings.Contains(err.Error(), "unknown keys: config.colour") {
		t.Fatalf("want the unknown key refused, got %v", err)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(bad, `colour = "blue"`, "", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = LoadSpec(file)
	for _, want := range []string{"config.user is empty", "config.entrypoint is empty", `"4180" is not PORT/tcp`,
		`file[0].path "etc/passwd" is not a clean absolute`, "mode 04755 is not a permission mode",
		`file[1].path "/a/../b"`, "file[1] (/a/../b) has no source"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("want %q in %v", want, err)
		}
	}
}

func TestDockerfileMatchesTheSpec(t *testing.T) {
	spec, _ := writeSpec(t)
	good := `# syntax=docker/dockerfile:1
FROM rust:1.95-bookworm AS builder
RUN apt-get update \
 && cargo build --release --locked --target x86_64-unknown-linux-musl --bin portcullis
FROM scratch
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY deploy/image/passwd deploy/image/group /etc/
COPY --from=builder --chmod=0755 /out/portcullis /portcullis
USER 65532:65532
EXPOSE 4180
ENTRYPOINT ["/portcullis"]
CMD ["--config", "/etc/portcullis/portcullis.toml"]
`
	if p := CheckDockerfile(spec, good); len(p) > 0 {
		t.Fatalf("the good Dockerfile: %v", p)
	}
	// The broken fixture scripts/check-manifests also runs, with its expected findings.
	bad, err := os.ReadFile("testdata/bad.Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	expect, err := os.ReadFile("testdata/bad.Dockerfile.expect")
	if err != nil {
		t.Fatal(err)
	}
	problems := CheckDockerfile(spec, string(bad))
	problems = append(problems, CheckContextCopies(string(bad), nil, func(p string) bool {
		_, err := os.Stat(filepath.Join("testdata", p))
		return err == nil
	})...)
	got := strings.Join(problems, "\n")
	for _, want := range strings.Split(strings.TrimSpace(string(expect)), "\n") {
		if !strings.Contains(got, want) {
			t.Errorf("no problem %q in:\n%s", want, got)
		}
	}
}

func TestRegistryRoundTripAndUnpack(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := ServeRegistry(l)
	defer srv.Close()
	img := buildGood(t, testEpoch)
	dir := t.TempDir()
	if err := WriteLayout(filepath.Join(dir, "layout"), img, "portcullis:1.2.3"); err != nil {
		t.Fatal(err)
	}
	fromLayout, err := LoadImage(filepath.Join(dir, "layout"))
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference(l.Addr().String() + "/platform/portcullis:1.2.3")
	if err != nil {
		t.Fatal(err)
	}
	want, _ := img.Digest()
	got, err := Push(fromLayout, ref)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Fatalf("the registry holds %s, built %s", got, want)
	}
	pulled, err := LoadImage(ref.String())
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := pulled.Digest(); d != want {
		t.Fatalf("pulled %s, built %s", d, want)
	}
	if _, err := remote.Head(ref); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(dir, "rootfs")
	n, err := Unpack(pulled, root)
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Errorf("unpacked %d entries, want 7", n)
	}
	fi, err := os.Stat(filepath.Join(root, "portcullis"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o755 || !fi.ModTime().Equal(testEpoch) {
		t.Errorf("/portcullis: mode %v, time %v", fi.Mode(), fi.ModTime())
	}
}

func TestUnpackRefusesEscapes(t *testing.T) {
	for _, e := range []tarEntry{
		{name: "../evil", mode: 0o644, data: []byte("x")},
		{name: "link", typ: tar.TypeSymlink, link: "/etc/shadow"},
		{name: "link", typ: tar.TypeSymlink, link: "../../etc"},
		{name: "dev/sda", typ: tar.TypeBlock, mode: 0o600},
	} {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Mode: e.mode, Linkname: e.link, Size: int64(len(e.data))}
		if e.typ == 0 {
			h.Typeflag = tar.TypeReg
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		_, _ = tw.Write(e.data)
		_ = tw.Close()
		dir := t.TempDir()
		if _, err := extractTar(&buf, filepath.Join(dir, "root")); err == nil {
			t.Errorf("%s -> %q was extracted", e.name, e.link)
		}
		if _, err := os.Lstat(filepath.Join(dir, "evil")); err == nil {
			t.Errorf("%s wrote outside the root", e.name)
		}
	}
}

func TestDockerfileContextCopies(t *testing.T) {
	ignore := strings.Split("# comment\n.git\n**/target\ndeploy\n!deploy/image/passwd\ndocs\n", "\n")
	exists := func(p string) bool { return p != "missing" }
	text := `FROM scratch
COPY . .
COPY --from=builder /out/portcullis /portcullis
COPY deploy/image/passwd /etc/passwd
COPY deploy/image/group /etc/group
COPY docs/x tools/a/target/b missing /x/
`
	got := strings.Join(CheckContextCopies(text, ignore, exists), "\n")
	for _, want := range []string{
		"line 5: COPY source deploy/image/group is excluded by .dockerignore",
		"line 6: COPY source docs/x is excluded",
		"line 6: COPY source tools/a/target/b is excluded",
		"line 6: COPY source missing is not in the build context",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("no problem %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "passwd") || strings.Contains(got, "portcullis") {
		t.Errorf("re-included or stage files reported:\n%s", got)
	}
}
