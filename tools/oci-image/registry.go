package main

// Where images come from and go to: OCI layout directories and registries
// (push, the in-memory test registry), and the config and digest commands.

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// LoadImage opens IMAGE: an OCI layout directory holding exactly one image, or
// a registry reference (credentials from the Docker config keychain).
func LoadImage(src string) (v1.Image, error) {
	if _, err := os.Stat(filepath.Join(src, "oci-layout")); err == nil {
		idx, err := layout.ImageIndexFromPath(src)
		if err != nil {
			return nil, err
		}
		m, err := idx.IndexManifest()
		if err != nil {
			return nil, err
		}
		if len(m.Manifests) != 1 {
			return nil, fmt.Errorf("%s: the layout holds %d manifests, not one", src, len(m.Manifests))
		}
		return idx.Image(m.Manifests[0].Digest)
	}
	ref, err := name.ParseReference(src)
	if err != nil {
		return nil, fmt.Errorf("%s is neither an OCI layout directory nor an image reference: %w", src, err)
	}
	return remote.Image(ref, remote.WithAuthFromKeychain(authn.DefaultKeychain), remote.WithPlatform(platform))
}

func oneImageArg(cmd string, args []string) (v1.Image, error) {
	if len(args) != 1 {
		return nil, fmt.Errorf("usage: oci-image %s IMAGE", cmd)
	}
	return LoadImage(args[0])
}

func runConfig(args []string) error {
	img, err := oneImageArg("config", args)
	if err != nil {
		return err
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	var pretty bytes.Buffer
	if err := json.Indent(&pretty, raw, "", "  "); err != nil {
		return err
	}
	fmt.Println(pretty.String())
	return nil
}

func runDigest(args []string) error {
	img, err := oneImageArg("digest", args)
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	fmt.Println(d)
	return nil
}

// Push writes img to ref and returns the digest the registry now holds for it.
func Push(img v1.Image, ref name.Reference) (v1.Hash, error) {
	if err := remote.Write(ref, img, remote.WithAuthFromKeychain(authn.DefaultKeychain)); err != nil {
		return v1.Hash{}, err
	}
	desc, err := remote.Head(ref, remote.WithAuthFromKeychain(authn.DefaultKeychain))
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushed, but the registry does not show it: %w", err)
	}
	return desc.Digest, nil
}

func runPush(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("usage: oci-image push LAYOUT-DIR REF")
	}
	img, err := LoadImage(args[0])
	if err != nil {
		return err
	}
	ref, err := name.ParseReference(args[1])
	if err != nil {
		return err
	}
	want, err := img.Digest()
	if err != nil {
		return err
	}
	got, err := Push(img, ref)
	if err != nil {
		return err
	}
	if got != want {
		return fmt.Errorf("the registry holds %s for %s, not the pushed %s", got, ref, want)
	}
	fmt.Printf("pushed %s (%s@%s)\n", ref, ref.Context(), got)
	return nil
}

// ServeRegistry starts go-containerregistry's in-memory registry on a listener.
func ServeRegistry(l net.Listener) *http.Server {
	srv := &http.Server{
		Handler:           registry.New(registry.Logger(log.New(io.Discard, "", 0))),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(l) }()
	return srv
}

func runServe(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := ServeRegistry(l)
	// One line for the script that started it, like the test IdP's issuer= line.
	fmt.Printf("registry=%s\n", l.Addr())
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	<-stop
	return srv.Close()
}
