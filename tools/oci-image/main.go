// Command oci-image builds, checks and publishes Portcullis' OCI image without a
// container daemon (go-containerregistry).
//
//	oci-image build -spec deploy/image/image.toml -binary FILE -layout DIR [-tarball FILE]
//	                [-epoch SECONDS] [-version V] [-revision SHA] [-tag NAME]
//	oci-image inspect IMAGE            config JSON, layer listing, checks (exit 1 on a finding)
//	oci-image config IMAGE             the raw config JSON, for scripts
//	oci-image digest IMAGE             the manifest digest
//	oci-image unpack IMAGE DIR         extracts the layers into DIR (a root filesystem)
//	oci-image push DIR REF             pushes the layout's image to a registry
//	oci-image serve [-addr HOST:PORT]  an in-memory registry on 127.0.0.1, for tests
//	oci-image dockerfile SPEC FILE     the Dockerfile's runtime stage builds the spec's image
//
// IMAGE is an OCI image layout directory (what build writes) or a registry
// reference (registry.example.com/platform/portcullis:TAG). Registry credentials
// come from the standard Docker config keychain (~/.docker/config.json,
// $DOCKER_CONFIG, credential helpers), as for docker and crane.
//
// Exit status: 0; 1 when a check failed; 2 on bad usage or an error.
package main

import (
	"fmt"
	"os"
)

const usage = `usage:
  oci-image build -spec FILE -binary FILE -layout DIR [-tarball FILE] [-epoch SECONDS]
                  [-version V] [-revision SHA] [-tag NAME]
  oci-image inspect IMAGE
  oci-image config IMAGE
  oci-image digest IMAGE
  oci-image unpack IMAGE DIR
  oci-image push LAYOUT-DIR REF
  oci-image serve [-addr 127.0.0.1:0]
  oci-image dockerfile SPEC DOCKERFILE
IMAGE: an OCI layout directory or a registry reference.`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, usage)
		os.Exit(2)
	}
	cmd, args := os.Args[1], os.Args[2:]
	var err error
	code := 0
	switch cmd {
	case "build":
		err = runBuild(args)
	case "inspect":
		code, err = runInspect(args)
	case "config":
		err = runConfig(args)
	case "digest":
		err = runDigest(args)
	case "unpack":
		err = runUnpack(args)
	case "push":
		err = runPush(args)
	case "serve":
		err = runServe(args)
	case "dockerfile":
		code, err = runDockerfile(args)
	case "-h", "--help", "help":
		fmt.Println(usage)
		return
	default:
		err = fmt.Errorf("unknown command %q\n%s", cmd, usage)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "oci-image %s: %v\n", cmd, err)
		os.Exit(2)
	}
	os.Exit(code)
}
