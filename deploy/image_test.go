package deploy_test

import (
	"bufio"
	"bytes"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// binaryLimit is the most the image's binary may weigh: issue 12 asks for
// 25 MB (25,000,000 bytes, which is also under 25 MiB). It was 24.5 MB
// (24,514,722 bytes) when this limit was set, 33.4 MB before the pages'
// templates stopped calling methods (TestBinaryKeepsMethodDeadCodeElimination
// says why that matters and names what brings it back).
const binaryLimit = 25_000_000

// dockerfile is the parts of the Dockerfile this test replays.
type dockerfile struct {
	buildRun        string            // the build stage's RUN that runs go build
	args            map[string]string // ARG defaults of the build stage
	copies          []dockerCopy      // the final stage's COPY --from=build
	user            string            // USER of the final stage
	healthcheck     []string          // HEALTHCHECK CMD
	entrypoint, cmd []string
}

type dockerCopy struct {
	src, dst, chown string
}

// parseDockerfile reads the instructions of ../Dockerfile this test replays.
func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	var lines []string
	var cur strings.Builder
	sc := bufio.NewScanner(bytes.NewReader(readFile(t, filepath.Join("..", "Dockerfile"))))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "#") && cur.Len() == 0 {
			continue
		}
		if s, ok := strings.CutSuffix(line, "\\"); ok {
			cur.WriteString(s + " ")
			continue
		}
		cur.WriteString(line)
		if strings.TrimSpace(cur.String()) != "" {
			lines = append(lines, strings.TrimSpace(cur.String()))
		}
		cur.Reset()
	}
	d := dockerfile{args: map[string]string{}}
	stage := -1
	jsonArgs := func(s string) []string {
		var v []string
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatalf("Dockerfile: %q is not an exec-form JSON array (an image without a shell needs that form): %v", s, err)
		}
		return v
	}
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		switch strings.ToUpper(instr) {
		case "FROM":
			stage++
		case "ARG":
			if k, v, ok := strings.Cut(rest, "="); ok && stage == 0 {
				d.args[k] = v
			}
		case "RUN":
			if stage == 0 && strings.Contains(rest, "go build") {
				d.buildRun = rest
			}
		case "COPY":
			if stage != 1 {
				continue
			}
			f := strings.Fields(rest)
			c := dockerCopy{}
			var paths []string
			from := ""
			for _, x := range f {
				switch {
				case strings.HasPrefix(x, "--from="):
					from = strings.TrimPrefix(x, "--from=")
				case strings.HasPrefix(x, "--chown="):
					c.chown = strings.TrimPrefix(x, "--chown=")
				default:
					paths = append(paths, x)
				}
			}
			if from != "build" || len(paths) != 2 {
				t.Fatalf("Dockerfile: COPY %s: this test replays only COPY --from=build SRC DST", rest)
			}
			c.src, c.dst = paths[0], paths[1]
			d.copies = append(d.copies, c)
		case "USER":
			d.user = rest
		case "HEALTHCHECK":
			_, cmd, ok := strings.Cut(rest, "CMD ")
			if !ok {
				t.Fatalf("Dockerfile: HEALTHCHECK without CMD: %s", rest)
			}
			d.healthcheck = jsonArgs(cmd)
		case "ENTRYPOINT":
			d.entrypoint = jsonArgs(rest)
		case "CMD":
			d.cmd = jsonArgs(rest)
		}
	}
	if d.buildRun == "" || len(d.copies) == 0 || d.user == "" || len(d.healthcheck) == 0 || len(d.entrypoint) == 0 {
		t.Fatalf("Dockerfile: missing a go build RUN, COPY --from=build, USER, HEALTHCHECK or ENTRYPOINT: %+v", d)
	}
	return d
}

// TestDockerfileShape: what can be checked of the Dockerfile without
// running it — the binary is built static (CGO_ENABLED=0) and stripped, the
// user is the non-root 65532, the healthcheck and the default command are
// real subcommands in exec form.
func TestDockerfileShape(t *testing.T) {
	d := parseDockerfile(t)
	for _, want := range []string{"CGO_ENABLED=0", "-trimpath", "-s -w", "./cmd/wechat-oidc"} {
		if !strings.Contains(d.buildRun, want) {
			t.Errorf("the build RUN lacks %q: %s", want, d.buildRun)
		}
	}
	if d.user != "65532:65532" {
		t.Errorf("USER %s, want 65532:65532 (distroless nonroot)", d.user)
	}
	if d.healthcheck[0] != d.entrypoint[0] {
		t.Errorf("HEALTHCHECK runs %s, the entrypoint is %s", d.healthcheck[0], d.entrypoint[0])
	}
	requireSubcommand(t, "HEALTHCHECK", d.healthcheck[1:])
	requireSubcommand(t, "CMD", d.cmd)
}

// skipOrFail skips a test whose tools are missing, and fails it instead
// under CI=true on Debian, where CI installs them (scripts/install-test-deps.sh).
func skipOrFail(t *testing.T, msg string) {
	t.Helper()
	if _, err := os.Stat("/etc/debian_version"); err == nil && os.Getenv("CI") == "true" {
		t.Fatalf("%s (CI=true on Debian: scripts/install-test-deps.sh provides it, and CI runs as root)", msg)
	}
	t.Skip(msg)
}

// TestImageSteps replays the Dockerfile without Docker: its go build (the
// same command, /out in a temporary directory), checks the binary is static
// (no ELF interpreter, no needed libraries) and within issue 12's 25 MB,
// lays out a root directory holding only what the final stage copies plus
// the mounted config file, starts the image's ENTRYPOINT and CMD in it with
// chroot as the image's USER in a network namespace of its own, and runs
// the image's HEALTHCHECK command (chrooted too) against it, then /readyz
// and discovery. serve uses a memory store with a snapshot file, a SQLite
// directory and a key directory, all under /var/lib/wechat-oidc, so a
// graceful stop proves the user can write there. Slow (a full build): not
// in -short.
func TestImageSteps(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary as the Dockerfile does: not in -short")
	}
	for _, tool := range []string{"chroot", "unshare", "ip", "sh"} {
		if _, err := exec.LookPath(tool); err != nil {
			skipOrFail(t, fmt.Sprintf("%s not found: the image steps run in a chroot inside a network namespace (util-linux, coreutils, iproute2)", tool))
		}
	}
	if os.Geteuid() != 0 {
		skipOrFail(t, "not root: chroot and running as uid 65532 need root")
	}
	d := parseDockerfile(t)
	tmp := t.TempDir()
	out := filepath.Join(tmp, "out")

	// The build stage: WORKDIR /src holds the repository (COPY . .).
	run := buildCommand(t, d, out)
	start := time.Now()
	build := exec.Command("sh", "-c", run)
	build.Dir = ".."
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("the Dockerfile's build step failed: %v\n%s\n%s", err, run, b)
	}
	t.Logf("built as the Dockerfile does in %s: %s", time.Since(start).Round(time.Second), run)

	bin := filepath.Join(out, "wechat-oidc")
	checkStaticELF(t, bin)

	// The final stage: only what it copies.
	root := filepath.Join(tmp, "rootfs")
	for _, c := range d.copies {
		src := filepath.Join(out, strings.TrimPrefix(c.src, "/out/"))
		copyLikeDocker(t, src, filepath.Join(root, c.dst), c.chown)
	}
	configPath, ok := flagValue(d.cmd, "config")
	if !ok {
		t.Fatalf("CMD %v has no --config", d.cmd)
	}
	// The config file is mounted (read-only, root's), not part of the image.
	writeFile(t, filepath.Join(root, configPath), imageConfig, 0o644)
	listing := rootListing(t, root)
	t.Logf("the root directory:\n%s", listing)

	logs := filepath.Join(tmp, "logs")
	if err := os.Mkdir(logs, 0o700); err != nil {
		t.Fatal(err)
	}
	runImage(t, d, root, logs, append(append([]string{}, d.entrypoint...), d.cmd...))
	// What the server wrote, it wrote as the image's user, where the image lets it.
	uid, _, _ := strings.Cut(d.user, ":")
	for _, pattern := range []string{"var/lib/wechat-oidc/keys/*.pem", "var/lib/wechat-oidc/wechat-oidc.db", "var/lib/wechat-oidc/store.snapshot"} {
		files, _ := filepath.Glob(filepath.Join(root, pattern))
		if len(files) == 0 {
			t.Errorf("serve did not write %s\nserve's log:\n%s", pattern, readLog(logs, "serve.log"))
			continue
		}
		st, err := os.Stat(files[0])
		if err != nil {
			t.Fatal(err)
		}
		if got := strconv.Itoa(int(st.Sys().(*syscall.Stat_t).Uid)); got != uid {
			t.Errorf("%s is owned by uid %s, want %s (the image's USER)", pattern, got, uid)
		}
	}

	// The Dockerfile's "Try:" line: dev mode in the same root directory
	// (it writes nothing: an in-memory directory and ephemeral keys).
	runImage(t, d, root, logs, []string{d.entrypoint[0], "dev", "--listen", "0.0.0.0:8080"})
}

// runImage runs imageScript with entry as the container's process and
// checks that the HEALTHCHECK, /readyz and discovery answered and that the
// process stopped cleanly on SIGTERM.
func runImage(t *testing.T, d dockerfile, root, logs string, entry []string) {
	t.Helper()
	cmd := exec.Command("unshare", "--net", "--", "sh", "-c", imageScript)
	cmd.Env = append(os.Environ(),
		"ROOT="+root, "USERSPEC="+d.user, "LOGS="+logs,
		"ENTRY="+joinArgs(t, entry),
		"HEALTH="+joinArgs(t, d.healthcheck),
		"BIN="+d.entrypoint[0])
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var output bytes.Buffer
	cmd.Stdout, cmd.Stderr = &output, &output
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("%v did not finish in 2 minutes:\n%s\nits log:\n%s", entry, output.String(), readLog(logs, "serve.log"))
	}
	if err != nil {
		t.Fatalf("%v failed: %v\n%s\nits log:\n%s", entry, err, output.String(), readLog(logs, "serve.log"))
	}
	t.Logf("%v in the image's root directory:\n%s", entry, output.String())
	for _, want := range []string{"health: ok: http://127.0.0.1:8080/healthz", "ready: ok: http://127.0.0.1:8080/readyz",
		"discovery: ok: http://127.0.0.1:8080/.well-known/openid-configuration", "serve exited 0"} {
		if !strings.Contains(output.String(), want) {
			t.Errorf("%v: the run did not print %q:\n%s", entry, want, output.String())
		}
	}
}

// imageConfig is the smallest production-shaped configuration: the memory
// store with its snapshot, SQLite and a key directory, all in the image's
// writable /var/lib/wechat-oidc; the default listen (0.0.0.0:8080) that the
// HEALTHCHECK probes.
const imageConfig = `issuer: http://127.0.0.1:8080
wechat:
  official_account: { app_id: wx0123456789abcdef, app_secret: image-test-app-secret }
clients:
  - { id: app, secret: image-test-client-secret, redirect_uris: [https://app.example.com/cb], allowed_groups: [staff] }
store: { type: memory, snapshot_file: /var/lib/wechat-oidc/store.snapshot }
keys: { dir: /var/lib/wechat-oidc/keys }
directory: { type: sqlite, path: /var/lib/wechat-oidc/wechat-oidc.db }
`

// imageScript runs in a fresh network namespace (only loopback, brought
// up): ENTRY (entrypoint and command) chrooted as USERSPEC, then HEALTH
// (the HEALTHCHECK command) until it passes, /readyz and discovery with the
// same binary, then SIGTERM and the exit status. Waiting polls for the
// start; nothing waits for a timer to expire.
const imageScript = `set -u
ip link set lo up || { echo "cannot bring up lo"; exit 90; }
chroot --userspec="$USERSPEC" "$ROOT" $ENTRY >"$LOGS/serve.log" 2>&1 &
pid=$!
ok=
i=0
while [ $i -lt 600 ]; do
  if chroot --userspec="$USERSPEC" "$ROOT" $HEALTH >"$LOGS/health.out" 2>&1; then ok=1; break; fi
  kill -0 $pid 2>/dev/null || break
  sleep 0.05
  i=$((i+1))
done
echo "health: $(cat "$LOGS/health.out")"
if [ -z "$ok" ]; then kill -TERM $pid 2>/dev/null; wait $pid; echo "serve exited $? before the healthcheck passed"; exit 91; fi
echo "ready: $(chroot --userspec="$USERSPEC" "$ROOT" "$BIN" healthcheck --url http://127.0.0.1:8080/readyz 2>&1)"
echo "discovery: $(chroot --userspec="$USERSPEC" "$ROOT" "$BIN" healthcheck --url http://127.0.0.1:8080/.well-known/openid-configuration 2>&1)"
kill -TERM $pid
wait $pid
echo "serve exited $?"
`

func joinArgs(t *testing.T, args []string) string {
	t.Helper()
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"$*?[]\\") {
			t.Fatalf("argument %q cannot be passed through the shell script unquoted", a)
		}
	}
	return strings.Join(args, " ")
}

func readLog(dir, name string) string {
	b, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		return "(" + err.Error() + ")"
	}
	return string(b)
}

func writeFile(t *testing.T, path, text string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), mode); err != nil {
		t.Fatal(err)
	}
}

// buildCommand is the Dockerfile's build RUN with its ARG defaults filled
// in and /out placed at out, to run with sh -c in the repository's root.
func buildCommand(t *testing.T, d dockerfile, out string) string {
	t.Helper()
	run := d.buildRun
	for k, v := range d.args {
		run = strings.ReplaceAll(run, "${"+k+"}", v)
	}
	run = strings.ReplaceAll(run, " /out/", " "+out+"/")
	if strings.Contains(run, "/out/") && !strings.Contains(run, out) {
		t.Fatalf("could not place /out in the build command: %s", run)
	}
	return run
}

// checkStaticELF: no interpreter (PT_INTERP) and no shared library
// (DT_NEEDED): the binary runs on an image without a libc. And its size.
func checkStaticELF(t *testing.T, bin string) {
	t.Helper()
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			t.Errorf("%s has an ELF interpreter: it is dynamically linked (CGO_ENABLED=0 missing?)", bin)
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	if len(libs) > 0 {
		t.Errorf("%s needs shared libraries %v", bin, libs)
	}
	st, err := os.Stat(bin)
	if err != nil {
		t.Fatal(err)
	}
	checkBinarySize(t, bin, st.Size())
}

// checkBinarySize holds the binary to binaryLimit.
func checkBinarySize(t *testing.T, bin string, size int64) {
	t.Helper()
	t.Logf("%s: %.2f MB (%d bytes, %.2f MiB)", filepath.Base(bin), float64(size)/1e6, size, float64(size)/(1<<20))
	if size > binaryLimit {
		t.Errorf("the binary is %.2f MB, over issue 12's limit of %.0f MB (binaryLimit): "+
			"look at what grew with go tool nm -size -sort size on a build without -s -w, and run TestBinaryKeepsMethodDeadCodeElimination",
			float64(size)/1e6, float64(binaryLimit)/1e6)
	}
}

// copyLikeDocker copies src to dst as COPY does: a directory's contents
// (not the directory itself) go into dst; everything copied gets chown's
// owner (uid:gid); directories created on the way to dst are taken to be
// root's (Docker documents new files and directories as uid 0 unless
// --chown, without saying whether that covers the destination itself: the
// Dockerfile does not rely on it); modes are kept.
func copyLikeDocker(t *testing.T, src, dst string, chown string) {
	t.Helper()
	uid, gid := -1, -1
	if chown != "" {
		u, g, _ := strings.Cut(chown, ":")
		var err1, err2 error
		uid, err1 = strconv.Atoi(u)
		gid, err2 = strconv.Atoi(g)
		if err1 != nil || err2 != nil {
			t.Fatalf("--chown=%s: this test replays numeric uid:gid only", chown)
		}
	}
	info, err := os.Stat(src)
	if err != nil {
		t.Fatalf("COPY source %s: %v", src, err)
	}
	if !info.IsDir() {
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		copyFile(t, src, dst, info.Mode(), uid, gid)
		return
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		t.Fatal(err)
	}
	err = filepath.WalkDir(src, func(p string, e fs.DirEntry, err error) error {
		if err != nil || p == src {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		fi, err := e.Info()
		if err != nil {
			return err
		}
		if e.IsDir() {
			if err := os.Mkdir(target, fi.Mode().Perm()); err != nil {
				return err
			}
			if err := os.Chmod(target, fi.Mode().Perm()); err != nil { // umask
				return err
			}
			return os.Lchown(target, uid, gid)
		}
		copyFile(t, p, target, fi.Mode(), uid, gid)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode, uid, gid int) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	o, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode.Perm())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(o, in); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dst, mode.Perm()); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(dst, uid, gid); err != nil {
		t.Fatal(err)
	}
}

// rootListing lists the root directory: path, mode, owner.
func rootListing(t *testing.T, root string) string {
	t.Helper()
	var b strings.Builder
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		rel, _ := filepath.Rel(root, p)
		fmt.Fprintf(&b, "  %s %d:%d /%s\n", fi.Mode(), st.Uid, st.Gid, strings.TrimPrefix(rel, "."))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
