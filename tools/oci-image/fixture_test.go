package main

// Fixtures built by the tests: ELF headers, a CA certificate, a spec with its
// files, and images assembled straight from tar entries (for the broken ones
// that build would refuse to make).

import (
	"archive/tar"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"debug/elf"
	"encoding/binary"
	"encoding/pem"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

var testEpoch = time.Unix(1700000000, 0).UTC()

// fakeELF is a minimal ELF64 executable header for machine: one PT_LOAD, and a
// PT_INTERP naming interp when it is not empty (a dynamically linked program).
func fakeELF(machine elf.Machine, interp string) []byte {
	const ehsize, phsize = 64, 56
	phnum := 1
	if interp != "" {
		phnum = 2
	}
	dataOff := uint64(ehsize + phsize*phnum)
	var b bytes.Buffer
	le := binary.LittleEndian
	b.Write([]byte{0x7f, 'E', 'L', 'F', byte(elf.ELFCLASS64), byte(elf.ELFDATA2LSB), byte(elf.EV_CURRENT), 0})
	b.Write(make([]byte, 8))
	_ = binary.Write(&b, le, uint16(elf.ET_EXEC))
	_ = binary.Write(&b, le, uint16(machine))
	_ = binary.Write(&b, le, uint32(elf.EV_CURRENT))
	_ = binary.Write(&b, le, uint64(0x400000)) // entry
	_ = binary.Write(&b, le, uint64(ehsize))   // phoff
	_ = binary.Write(&b, le, uint64(0))        // shoff
	_ = binary.Write(&b, le, uint32(0))        // flags
	for _, v := range []uint16{ehsize, phsize, uint16(phnum), 64, 0, 0} {
		_ = binary.Write(&b, le, v)
	}
	prog := func(typ elf.ProgType, off, size uint64) {
		_ = binary.Write(&b, le, uint32(typ))
		_ = binary.Write(&b, le, uint32(elf.PF_R|elf.PF_X))
		for _, v := range []uint64{off, 0x400000 + off, 0x400000 + off, size, size, 0x1000} {
			_ = binary.Write(&b, le, v)
		}
	}
	if interp != "" {
		prog(elf.PT_INTERP, dataOff, uint64(len(interp)+1))
	}
	prog(elf.PT_LOAD, 0, dataOff+uint64(len(interp)+1))
	if interp != "" {
		b.WriteString(interp)
		b.WriteByte(0)
	}
	return b.Bytes()
}

var testCA []byte

// testCABundle is one self-signed CA certificate, PEM, the same for every call
// (the reproducibility test builds twice).
func testCABundle(t *testing.T) []byte {
	t.Helper()
	if testCA != nil {
		return testCA
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "oci-image test CA"},
		NotBefore: testEpoch, NotAfter: testEpoch.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	testCA = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	return testCA
}

const goodSpec = `
[config]
user = "65532:65532"
entrypoint = ["/portcullis"]
cmd = ["--config", "/etc/portcullis/portcullis.toml"]
exposed_ports = ["4180/tcp"]
env = []

[labels]
"org.opencontainers.image.title" = "portcullis"

[[file]]
path = "/portcullis"
source = "{binary}"
mode = 0o755

[[file]]
path = "/etc/ssl/certs/ca-certificates.crt"
source = "ca.pem"
mode = 0o644

[[file]]
path = "/etc/passwd"
source = "passwd"
mode = 0o644

[[file]]
path = "/etc/group"
source = "group"
mode = 0o644
`

// writeSpec writes goodSpec with its files into a temporary directory and
// returns the spec and the binary's path.
func writeSpec(t *testing.T) (*Spec, string) {
	t.Helper()
	dir := t.TempDir()
	files := map[string][]byte{
		"image.toml": []byte(goodSpec),
		"ca.pem":     testCABundle(t),
		"passwd":     []byte("root:x:0:0:root:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin\n"),
		"group":      []byte("root:x:0:\nnonroot:x:65532:\n"),
		"portcullis": fakeELF(elf.EM_X86_64, ""),
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	spec, err := LoadSpec(filepath.Join(dir, "image.toml"))
	if err != nil {
		t.Fatal(err)
	}
	return spec, filepath.Join(dir, "portcullis")
}

func buildGood(t *testing.T, epoch time.Time) v1.Image {
	t.Helper()
	spec, bin := writeSpec(t)
	img, err := Build(BuildInput{Spec: spec, Binary: bin, Epoch: epoch, Version: "1.2.3", Revision: "abc"})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// tarEntry is one entry of a hand-made layer.
type tarEntry struct {
	name     string
	typ      byte
	mode     int64
	uid, gid int
	data     []byte
	link     string
}

// imageFromEntries is an image whose one layer holds exactly entries.
func imageFromEntries(t *testing.T, cfg v1.Config, entries []tarEntry) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		typ := e.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := &tar.Header{Name: e.name, Typeflag: typ, Mode: e.mode, Uid: e.uid, Gid: e.gid, Size: int64(len(e.data)), Linkname: e.link, ModTime: testEpoch}
		if typ != tar.TypeReg {
			h.Size = 0
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if typ == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(data)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.ConfigFile(mutate.MediaType(empty.Image, types.OCIManifestSchema1), &v1.ConfigFile{
		OS: "linux", Architecture: "amd64", Config: cfg, RootFS: v1.RootFS{Type: "layers"},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err = mutate.AppendLayers(img, layer)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func checkImage(t *testing.T, img v1.Image) []CheckResult {
	t.Helper()
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := ReadLayers(img)
	if err != nil {
		t.Fatal(err)
	}
	return Check(cf, layers)
}
