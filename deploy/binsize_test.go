package deploy_test

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestBinaryKeepsMethodDeadCodeElimination builds the binary with the
// Dockerfile's build command plus the linker's -dumpdep, and fails when a
// reachable function looks a method up by a name known only at run time
// (reflect's Method or MethodByName: the linker marks it <ReflectMethod>).
// One such function makes the linker keep every exported method of every
// type stored in an interface value (cmd/link/internal/ld/deadcode.go):
// html/template's execution did that, and the binary was 33.4 MB instead
// of 24.5 MB (go-redis alone 4.1 MB of machine code instead of 0.7). The
// failure prints how main reaches the function; the pages use
// internal/template for this reason. Then the binary is held to issue 12's
// 25 MB, as TestImageSteps does where it can run (root, chroot). Slow (a
// full build): not in -short.
func TestBinaryKeepsMethodDeadCodeElimination(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary as the Dockerfile does: not in -short")
	}
	out := filepath.Join(t.TempDir(), "out")
	run := buildCommand(t, parseDockerfile(t), out)
	const ldflags = `-ldflags "`
	if !strings.Contains(run, ldflags) {
		t.Fatalf("the Dockerfile's build has no %s…\" to add -dumpdep to: %s", ldflags, run)
	}
	run = strings.Replace(run, ldflags, ldflags+"-dumpdep ", 1)
	build := exec.Command("sh", "-c", run)
	build.Dir = ".."
	var stdout, stderr bytes.Buffer
	build.Stdout, build.Stderr = &stdout, &stderr
	if err := build.Run(); err != nil {
		t.Fatalf("%s: %v\n%s", run, err, stderr.Bytes())
	}

	// -dumpdep prints "parent -> symbol" when the linker first marks a
	// symbol reachable, with flags such as <ReflectMethod> after a name;
	// go build passes the linker's output on to its standard error.
	parent := map[string]string{}
	var culprits []string
	sc := bufio.NewScanner(bytes.NewReader(stderr.Bytes()))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		from, to, ok := strings.Cut(sc.Text(), " -> ")
		if !ok {
			continue
		}
		toName, toFlags, _ := strings.Cut(to, " <")
		fromName, _, _ := strings.Cut(from, " <")
		if _, seen := parent[toName]; !seen {
			parent[toName] = fromName
		}
		if strings.Contains(toFlags, "ReflectMethod>") {
			culprits = append(culprits, toName)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if len(parent) < 10000 {
		t.Fatalf("-dumpdep listed only %d reachable symbols: the linker's output was not read (stdout: %.2000s)", len(parent), stdout.Bytes())
	}
	// Once one function outside reflect is marked, reflect's own
	// Value.Method and the like are kept too (as exported methods of a
	// type in an interface): name only the first ones, if there are any.
	var outside []string
	for _, c := range culprits {
		if !strings.HasPrefix(c, "reflect.") {
			outside = append(outside, c)
		}
	}
	if len(outside) > 0 {
		culprits = outside
	}
	for _, c := range culprits {
		chain := []string{c}
		for n := c; len(chain) < 40; {
			p, ok := parent[n]
			if !ok || p == "_" {
				break
			}
			chain = append(chain, p)
			n = p
		}
		t.Errorf("%s looks a method up by a run-time name, so the linker keeps every exported method "+
			"(about 9 MB more); it is reached by:\n  %s\n"+
			"don't call it (text/template and html/template execution: use internal/template/html)",
			c, strings.Join(chain[1:], "\n  <- "))
	}
	bin := filepath.Join(out, "wechat-oidc")
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	checkBinarySize(t, bin, st.Size())
}
