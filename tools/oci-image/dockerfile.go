package main

// dockerfile: the repository's Dockerfile must build the image the spec
// describes, so that `docker build` and scripts/image ship the same thing.
// Its last stage must be FROM scratch with the spec's USER, exec-form
// ENTRYPOINT and CMD, EXPOSE and ENV, and COPY exactly the spec's files (by
// destination, --chmod when the spec's mode is not 0644); it may not RUN (there
// is no shell). Some earlier stage must build the static musl binary with
// --locked. A COPY from the build context must name files that exist and that
// .dockerignore does not exclude (a simplified matcher: filepath.Match
// patterns, a leading **/, exceptions with !, the last matching line wins, a
// pattern matching a directory matches what is inside).

import (
	"encoding/json"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
)

// MuslBuild is the build command the Dockerfile's builder must run.
const MuslBuild = "cargo build --release --locked --target x86_64-unknown-linux-musl"

// Instruction is one Dockerfile instruction, continuation lines joined.
type Instruction struct {
	Line int
	Cmd  string // upper case
	Args string
}

// ParseDockerfile splits a Dockerfile into instructions (comments, parser
// directives and blank lines dropped; heredocs are not supported).
func ParseDockerfile(text string) []Instruction {
	var out []Instruction
	var cur strings.Builder
	start := 0
	for i, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if cur.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if cur.Len() > 0 && strings.HasPrefix(trimmed, "#") {
			continue // a comment inside a continued instruction
		}
		if cur.Len() == 0 {
			start = i + 1
		}
		if strings.HasSuffix(trimmed, "\\") {
			cur.WriteString(strings.TrimSuffix(trimmed, "\\"))
			cur.WriteString(" ")
			continue
		}
		cur.WriteString(trimmed)
		full := cur.String()
		cur.Reset()
		cmd, args, _ := strings.Cut(full, " ")
		out = append(out, Instruction{Line: start, Cmd: strings.ToUpper(cmd), Args: strings.TrimSpace(args)})
	}
	return out
}

func runDockerfile(args []string) (int, error) {
	if len(args) != 2 {
		return 0, fmt.Errorf("usage: oci-image dockerfile SPEC DOCKERFILE")
	}
	spec, err := LoadSpec(args[0])
	if err != nil {
		return 0, err
	}
	text, err := os.ReadFile(args[1])
	if err != nil {
		return 0, err
	}
	dir := filepath.Dir(args[1])
	var ignore []string
	if data, err := os.ReadFile(filepath.Join(dir, ".dockerignore")); err == nil {
		ignore = strings.Split(string(data), "\n")
	}
	problems := CheckDockerfile(spec, string(text))
	problems = append(problems, CheckContextCopies(string(text), ignore, func(p string) bool {
		_, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p)))
		return err == nil
	})...)
	if len(problems) == 0 {
		fmt.Printf("PASS [Dockerfile] runtime stage builds %s: FROM scratch, USER %s, ENTRYPOINT %q, CMD %q, %d files; builder runs %s\n",
			args[0], spec.Config.User, spec.Config.Entrypoint, spec.Config.Cmd, len(spec.Files), MuslBuild)
		return 0, nil
	}
	fmt.Printf("FAIL [Dockerfile] %s does not build %s: %d problem(s)\n", args[1], args[0], len(problems))
	for _, p := range problems {
		fmt.Printf("       - %s\n", p)
	}
	return 1, nil
}

// CheckDockerfile compares a Dockerfile's last stage with the spec.
func CheckDockerfile(spec *Spec, text string) []string {
	ins := ParseDockerfile(text)
	last := -1
	for i, in := range ins {
		if in.Cmd == "FROM" {
			last = i
		}
	}
	if last < 0 {
		return []string{"no FROM instruction"}
	}
	var problems []string
	builds := false
	for _, in := range ins[:last] {
		if in.Cmd == "RUN" && strings.Contains(in.Args, MuslBuild) {
			builds = true
		}
	}
	if !builds {
		problems = append(problems, fmt.Sprintf("no stage before the last runs %s", MuslBuild))
	}
	runtime := ins[last:]
	if from := strings.Fields(runtime[0].Args); len(from) == 0 || from[0] != "scratch" {
		problems = append(problems, fmt.Sprintf("line %d: the runtime stage is FROM %s, not FROM scratch", runtime[0].Line, runtime[0].Args))
	}
	var user, entrypoint, cmd *Instruction
	var env []string
	ports := map[string]bool{}
	copies := map[string]string{} // destination -> --chmod
	for i := range runtime[1:] {
		in := &runtime[1+i]
		switch in.Cmd {
		case "USER":
			user = in
		case "ENTRYPOINT":
			entrypoint = in
		case "CMD":
			cmd = in
		case "EXPOSE":
			for _, p := range strings.Fields(in.Args) {
				if !strings.Contains(p, "/") {
					p += "/tcp"
				}
				ports[p] = true
			}
		case "ENV":
			env = append(env, in.Args)
		case "COPY", "ADD":
			if in.Cmd == "ADD" {
				problems = append(problems, fmt.Sprintf("line %d: ADD (use COPY)", in.Line))
			}
			chmod, dest := parseCopy(in.Args)
			copies[dest] = chmod
		case "RUN", "SHELL", "HEALTHCHECK", "VOLUME":
			problems = append(problems, fmt.Sprintf("line %d: %s in the runtime stage (no shell, no writable path)", in.Line, in.Cmd))
		}
	}
	if user == nil || user.Args != spec.Config.User {
		problems = append(problems, fmt.Sprintf("USER is %s, the spec's is %s", argsOf(user), spec.Config.User))
	}
	for _, c := range []struct {
		name string
		in   *Instruction
		want []string
	}{{"ENTRYPOINT", entrypoint, spec.Config.Entrypoint}, {"CMD", cmd, spec.Config.Cmd}} {
		var got []string
		if c.in == nil || json.Unmarshal([]byte(c.in.Args), &got) != nil {
			problems = append(problems, fmt.Sprintf("%s is %s, not the exec form %q", c.name, argsOf(c.in), c.want))
		} else if strings.Join(got, "\x00") != strings.Join(c.want, "\x00") {
			problems = append(problems, fmt.Sprintf("%s is %q, the spec's is %q", c.name, got, c.want))
		}
	}
	var gotPorts []string
	for p := range ports {
		gotPorts = append(gotPorts, p)
	}
	sort.Strings(gotPorts)
	if strings.Join(gotPorts, " ") != strings.Join(spec.Config.SortedPorts(), " ") {
		problems = append(problems, fmt.Sprintf("EXPOSE %v, the spec's exposed_ports are %v", gotPorts, spec.Config.SortedPorts()))
	}
	if strings.Join(env, " ") != strings.Join(spec.Config.Env, " ") {
		problems = append(problems, fmt.Sprintf("ENV %q, the spec's env is %q", env, spec.Config.Env))
	}
	used := map[string]bool{}
	for _, f := range spec.Files {
		dest := f.Path
		chmod, ok := copies[dest]
		if !ok {
			dest = path.Dir(f.Path) + "/"
			chmod, ok = copies[dest]
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("no COPY to %s", f.Path))
			continue
		}
		used[dest] = true
		switch want := fmt.Sprintf("%04o", f.Mode); {
		case f.Mode == 0o644 || chmod == want:
		case chmod == "":
			problems = append(problems, fmt.Sprintf("COPY to %s has no --chmod=%s (the spec's mode)", f.Path, want))
		default:
			problems = append(problems, fmt.Sprintf("COPY to %s has --chmod=%s, the spec's mode is %s", f.Path, chmod, want))
		}
	}
	for dest := range copies {
		if !used[dest] {
			problems = append(problems, fmt.Sprintf("COPY to %s, which the spec does not have", dest))
		}
	}
	sort.Strings(problems)
	return problems
}

// parseCopy returns a COPY's --chmod value and its destination (last word).
func parseCopy(args string) (chmod, dest string) {
	words := strings.Fields(args)
	for _, w := range words {
		if v, ok := strings.CutPrefix(w, "--chmod="); ok {
			chmod = v
		}
	}
	if len(words) > 0 {
		dest = words[len(words)-1]
	}
	return chmod, dest
}

func argsOf(in *Instruction) string {
	if in == nil {
		return "missing"
	}
	return in.Args
}

// CheckContextCopies: every source of a COPY without --from exists in the
// build context (exists) and is not excluded by the .dockerignore lines.
func CheckContextCopies(text string, ignore []string, exists func(string) bool) []string {
	var problems []string
	for _, in := range ParseDockerfile(text) {
		if in.Cmd != "COPY" && in.Cmd != "ADD" {
			continue
		}
		var sources []string
		fromStage := false
		for _, w := range strings.Fields(in.Args) {
			if strings.HasPrefix(w, "--") {
				fromStage = fromStage || strings.HasPrefix(w, "--from=")
				continue
			}
			sources = append(sources, w)
		}
		if fromStage || len(sources) < 2 {
			continue
		}
		for _, src := range sources[:len(sources)-1] {
			rel := path.Clean(strings.TrimPrefix(src, "/"))
			if rel == "." {
				continue // the whole context (COPY . .)
			}
			if !exists(rel) {
				problems = append(problems, fmt.Sprintf("line %d: COPY source %s is not in the build context", in.Line, src))
			} else if dockerignored(ignore, rel) {
				problems = append(problems, fmt.Sprintf("line %d: COPY source %s is excluded by .dockerignore", in.Line, src))
			}
		}
	}
	return problems
}

// dockerignored reports whether .dockerignore's lines exclude rel.
func dockerignored(lines []string, rel string) bool {
	excluded := false
	for _, line := range lines {
		pat := strings.TrimSpace(line)
		if pat == "" || strings.HasPrefix(pat, "#") {
			continue
		}
		exception := strings.HasPrefix(pat, "!")
		pat = path.Clean(strings.TrimPrefix(strings.TrimPrefix(pat, "!"), "/"))
		if ignoreMatches(pat, rel) {
			excluded = !exception
		}
	}
	return excluded
}

// ignoreMatches: pat matches rel or one of its parent directories.
func ignoreMatches(pat, rel string) bool {
	for p := rel; p != "." && p != "/"; p = path.Dir(p) {
		candidates := []string{p}
		if rest, ok := strings.CutPrefix(pat, "**/"); ok {
			segs := strings.Split(p, "/")
			candidates = candidates[:0]
			for i := range segs {
				candidates = append(candidates, strings.Join(segs[i:], "/"))
			}
			for _, c := range candidates {
				if ok, _ := path.Match(rest, c); ok {
					return true
				}
			}
			continue
		}
		if ok, _ := path.Match(pat, p); ok {
			return true
		}
	}
	return false
}
