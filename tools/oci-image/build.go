package main

// build: one layer from the spec's files, a config from its run configuration,
// written as an OCI image layout (and optionally a `docker load` tarball).
//
// Reproducible: the layer's tar entries are sorted, owned by 0:0 with no user
// or group names, and every timestamp (entries, config, history) is the epoch
// given; file modes come from the spec, never from the build host. The same
// spec, files, epoch and labels give the same digest (with the same Go
// toolchain: the layer is gzip-compressed by compress/gzip).

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"flag"
	"fmt"
	"io"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/google/go-containerregistry/pkg/name"
)

// Label keys set from build's flags (OCI image-spec annotations).
const (
	labelVersion  = "org.opencontainers.image.version"
	labelRevision = "org.opencontainers.image.revision"
	labelCreated  = "org.opencontainers.image.created"
	refNameKey    = "org.opencontainers.image.ref.name"
)

// platform is the one platform built: the musl binary is x86_64.
var platform = v1.Platform{OS: "linux", Architecture: "amd64"}

// BuildInput is everything an image is made of.
type BuildInput struct {
	Spec     *Spec
	Binary   string
	Epoch    time.Time
	Version  string
	Revision string
}

func runBuild(args []string) error {
	fs := flag.NewFlagSet("build", flag.ContinueOnError)
	specFile := fs.String("spec", "deploy/image/image.toml", "the image description")
	binary := fs.String("binary", "", "the file the spec calls "+BinaryToken)
	layoutDir := fs.String("layout", "", "write an OCI image layout here (replaced)")
	tarFile := fs.String("tarball", "", "also write a `docker load` tarball here")
	epoch := fs.String("epoch", os.Getenv("SOURCE_DATE_EPOCH"), "every timestamp, in seconds since 1970 (default $SOURCE_DATE_EPOCH)")
	version := fs.String("version", "", "org.opencontainers.image.version")
	revision := fs.String("revision", "", "org.opencontainers.image.revision")
	tag := fs.String("tag", "", "the name in the layout's index and the tarball (default portcullis:VERSION)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 || *layoutDir == "" {
		return fmt.Errorf("needs -layout DIR and no arguments")
	}
	secs, err := strconv.ParseInt(*epoch, 10, 64)
	if err != nil || secs < 0 {
		return fmt.Errorf("-epoch (or SOURCE_DATE_EPOCH) must be whole seconds since 1970, not %q", *epoch)
	}
	spec, err := LoadSpec(*specFile)
	if err != nil {
		return err
	}
	if *version == "" || *revision == "" {
		return fmt.Errorf("needs -version and -revision (the image's labels)")
	}
	img, err := Build(BuildInput{Spec: spec, Binary: *binary, Epoch: time.Unix(secs, 0).UTC(), Version: *version, Revision: *revision})
	if err != nil {
		return err
	}
	if *tag == "" {
		*tag = "portcullis:" + *version
	}
	if err := WriteLayout(*layoutDir, img, *tag); err != nil {
		return err
	}
	if *tarFile != "" {
		t, err := name.NewTag(*tag)
		if err != nil {
			return fmt.Errorf("-tag: %w", err)
		}
		if err := tarball.WriteToFile(*tarFile, t, img); err != nil {
			return err
		}
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	size, err := imageSize(img)
	if err != nil {
		return err
	}
	fmt.Printf("built %s (%s, %d bytes compressed) into %s\n", *tag, platform.OS+"/"+platform.Architecture, size, *layoutDir)
	fmt.Printf("digest=%s\n", d)
	return nil
}

// Build assembles the image in memory.
func Build(in BuildInput) (v1.Image, error) {
	layerTar, err := LayerTar(in.Spec, in.Binary, in.Epoch)
	if err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer), tarball.WithCompressionLevel(gzip.BestCompression))
	if err != nil {
		return nil, err
	}

	labels := map[string]string{}
	for k, v := range in.Spec.Labels {
		labels[k] = v
	}
	labels[labelVersion] = in.Version
	labels[labelRevision] = in.Revision
	labels[labelCreated] = in.Epoch.Format(time.RFC3339)
	ports := map[string]struct{}{}
	for _, p := range in.Spec.Config.ExposedPorts {
		ports[p] = struct{}{}
	}
	created := v1.Time{Time: in.Epoch}
	cf := &v1.ConfigFile{
		Architecture: platform.Architecture,
		OS:           platform.OS,
		Created:      created,
		Config: v1.Config{
			User:         in.Spec.Config.User,
			Entrypoint:   in.Spec.Config.Entrypoint,
			Cmd:          in.Spec.Config.Cmd,
			Env:          in.Spec.Config.Env,
			ExposedPorts: ports,
			Labels:       labels,
			WorkingDir:   "/",
		},
		RootFS: v1.RootFS{Type: "layers"},
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		return nil, err
	}
	img, err = mutate.Append(img, mutate.Addendum{
		Layer:     layer,
		MediaType: types.OCILayer,
		History: v1.History{
			Created:   created,
			CreatedBy: "tools/oci-image build",
			Comment:   fmt.Sprintf("%d files from deploy/image/image.toml", len(in.Spec.Files)),
		},
	})
	if err != nil {
		return nil, err
	}
	// The labels on the manifest too: registries show a manifest's annotations.
	return mutate.Annotations(img, labels).(v1.Image), nil
}

// LayerTar is the uncompressed layer: the spec's files and their parent
// directories, sorted, every header fixed by the spec and the epoch.
func LayerTar(spec *Spec, binary string, epoch time.Time) ([]byte, error) {
	type entry struct {
		name string
		mode int64
		data []byte
		dir  bool
	}
	entries := map[string]entry{}
	for _, f := range spec.Files {
		src, err := spec.SourcePath(f, binary)
		if err != nil {
			return nil, err
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.Path, err)
		}
		rel := strings.TrimPrefix(f.Path, "/")
		entries[rel] = entry{name: rel, mode: f.Mode, data: data}
		for d := path.Dir(rel); d != "."; d = path.Dir(d) {
			if e, ok := entries[d+"/"]; ok && e.dir {
				continue
			}
			entries[d+"/"] = entry{name: d + "/", mode: 0o755, dir: true}
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		e := entries[n]
		h := &tar.Header{Name: e.name, Mode: e.mode, ModTime: epoch, Uid: 0, Gid: 0, Format: tar.FormatPAX}
		if e.dir {
			h.Typeflag = tar.TypeDir
		} else {
			h.Typeflag = tar.TypeReg
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(e.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// WriteLayout replaces dir with an OCI image layout holding img, named tag.
func WriteLayout(dir string, img v1.Image, tag string) error {
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img, layout.WithPlatform(platform), layout.WithAnnotations(map[string]string{refNameKey: tag}))
}

// imageSize is the manifest, config and compressed layers together.
func imageSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	raw, err := img.RawManifest()
	if err != nil {
		return 0, err
	}
	total := int64(len(raw)) + m.Config.Size
	for _, l := range m.Layers {
		total += l.Size
	}
	return total, nil
}
