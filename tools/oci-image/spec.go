package main

// The image description, deploy/image/image.toml: the files of the single layer
// and the run configuration.

import (
	"fmt"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
)

// BinaryToken, as a file's source, stands for the binary given to build -binary.
const BinaryToken = "{binary}"

// Spec is deploy/image/image.toml.
type Spec struct {
	Config SpecConfig        `toml:"config"`
	Labels map[string]string `toml:"labels"`
	Files  []SpecFile        `toml:"file"`
	// dir is the spec file's directory: relative sources are resolved against it.
	dir string
}

// SpecConfig is the run configuration (the OCI config's "config" object).
type SpecConfig struct {
	User         string   `toml:"user"`
	Entrypoint   []string `toml:"entrypoint"`
	Cmd          []string `toml:"cmd"`
	ExposedPorts []string `toml:"exposed_ports"`
	Env          []string `toml:"env"`
}

// SpecFile is one regular file of the layer. Its parent directories are added
// with mode 0755; every entry is owned by 0:0.
type SpecFile struct {
	Path   string `toml:"path"`
	Source string `toml:"source"`
	Mode   int64  `toml:"mode"`
}

var portPattern = regexp.MustCompile(`^[0-9]{1,5}/(tcp|udp)$`)

// LoadSpec reads and validates a spec file; unknown keys are errors.
func LoadSpec(file string) (*Spec, error) {
	var s Spec
	md, err := toml.DecodeFile(file, &s)
	if err != nil {
		return nil, err
	}
	if undecoded := md.Undecoded(); len(undecoded) > 0 {
		keys := make([]string, len(undecoded))
		for i, k := range undecoded {
			keys[i] = k.String()
		}
		return nil, fmt.Errorf("%s: unknown keys: %s", file, strings.Join(keys, ", "))
	}
	s.dir = filepath.Dir(file)
	var problems []string
	if s.Config.User == "" {
		problems = append(problems, "config.user is empty (the image would run as root)")
	}
	if len(s.Config.Entrypoint) == 0 {
		problems = append(problems, "config.entrypoint is empty")
	}
	for _, p := range s.Config.ExposedPorts {
		if !portPattern.MatchString(p) {
			problems = append(problems, fmt.Sprintf("config.exposed_ports: %q is not PORT/tcp or PORT/udp", p))
		}
	}
	seen := map[string]bool{}
	for i, f := range s.Files {
		clean := path.Clean(f.Path)
		switch {
		case !path.IsAbs(f.Path) || clean != f.Path || clean == "/":
			problems = append(problems, fmt.Sprintf("file[%d].path %q is not a clean absolute file path", i, f.Path))
		case seen[clean]:
			problems = append(problems, fmt.Sprintf("file[%d].path %q appears twice", i, f.Path))
		}
		seen[clean] = true
		if f.Source == "" {
			problems = append(problems, fmt.Sprintf("file[%d] (%s) has no source", i, f.Path))
		}
		if f.Mode <= 0 || f.Mode > 0o777 {
			problems = append(problems, fmt.Sprintf("file[%d] (%s): mode %#o is not a permission mode 0o1..0o777 (no setuid)", i, f.Path, f.Mode))
		}
	}
	if len(problems) > 0 {
		return nil, fmt.Errorf("%s:\n  %s", file, strings.Join(problems, "\n  "))
	}
	return &s, nil
}

// SourcePath resolves a file's source: the binary token, an absolute host path,
// or a path relative to the spec's directory.
func (s *Spec) SourcePath(f SpecFile, binary string) (string, error) {
	switch {
	case f.Source == BinaryToken:
		if binary == "" {
			return "", fmt.Errorf("%s comes from %s: pass -binary", f.Path, BinaryToken)
		}
		return binary, nil
	case filepath.IsAbs(f.Source):
		return f.Source, nil
	default:
		return filepath.Join(s.dir, f.Source), nil
	}
}

// SortedPorts returns the exposed ports in a fixed order.
func (c SpecConfig) SortedPorts() []string {
	ports := append([]string(nil), c.ExposedPorts...)
	sort.Strings(ports)
	return ports
}
