package main

import (
	"archive/tar"
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
	"testing"
)

var testBase = []File{
	{Path: "/etc/passwd", Mode: 0o644, Data: []byte("nonroot:x:65532:65532::/home/nonroot:/sbin/nologin\n")},
	{Path: "/tmp", Mode: 0o1777, Dir: true},
}

func archive(t *testing.T, spec Spec) (string, []byte) {
	t.Helper()
	img, err := Build(spec)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	d, err := WriteOCIArchive(&buf, img, "localhost/chatbackend:test")
	if err != nil {
		t.Fatal(err)
	}
	return d.String(), buf.Bytes()
}

func TestSameInputsSameDigest(t *testing.T) {
	spec := func(manager string) Spec {
		return AppSpec("v1.2.3", []byte(manager), []byte("apiserver binary"), testBase)
	}
	d1, a1 := archive(t, spec("manager binary"))
	d2, a2 := archive(t, spec("manager binary"))
	if d1 != d2 {
		t.Fatalf("two builds of the same inputs: digests %s and %s", d1, d2)
	}
	if !bytes.Equal(a1, a2) {
		t.Fatal("two builds of the same inputs wrote different archives")
	}
	d3, _ := archive(t, spec("manager binary, changed"))
	if d3 == d1 {
		t.Fatal("a changed binary kept the digest")
	}
}

// dockerfileStage is what the Dockerfile's final stage says about the image.
type dockerfileStage struct {
	from       string
	entrypoint []string
	user       string
	labels     map[string]string
	copied     []string // destination paths of COPY
}

var labelRE = regexp.MustCompile(`([\w.-]+)="([^"]*)"`)

// parseFinalStage reads the instructions after the last FROM, with
// continuation lines joined and ${VERSION} expanded to version.
func parseFinalStage(t *testing.T, file, version string) dockerfileStage {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	cur := ""
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if strings.HasPrefix(l, "#") {
			continue
		}
		if strings.HasSuffix(l, `\`) {
			cur += strings.TrimSuffix(l, `\`) + " "
			continue
		}
		if cur+l != "" {
			lines = append(lines, cur+l)
		}
		cur = ""
	}
	last := -1
	for i, l := range lines {
		if strings.HasPrefix(l, "FROM ") {
			last = i
		}
	}
	if last < 0 {
		t.Fatal("no FROM in the Dockerfile")
	}
	st := dockerfileStage{from: strings.Fields(lines[last])[1], labels: map[string]string{}}
	for _, l := range lines[last+1:] {
		l = strings.ReplaceAll(l, "${VERSION}", version)
		instr, rest, _ := strings.Cut(l, " ")
		switch instr {
		case "LABEL":
			for _, m := range labelRE.FindAllStringSubmatch(rest, -1) {
				st.labels[m[1]] = m[2]
			}
		case "USER":
			st.user = strings.TrimSpace(rest)
		case "ENTRYPOINT":
			if err := json.Unmarshal([]byte(rest), &st.entrypoint); err != nil {
				t.Fatalf("ENTRYPOINT %s: %v", rest, err)
			}
		case "COPY":
			var args []string
			for _, f := range strings.Fields(rest) {
				if !strings.HasPrefix(f, "--") {
					args = append(args, f)
				}
			}
			dest := args[len(args)-1]
			for _, src := range args[:len(args)-1] {
				st.copied = append(st.copied, path.Join(dest, path.Base(src)))
			}
		}
	}
	return st
}

func TestImageIsTheDockerfilesImage(t *testing.T) {
	const version = "v9.8.7"
	df := parseFinalStage(t, "../../Dockerfile", version)
	img, err := Build(AppSpec(version, []byte("manager"), []byte("apiserver"), testBase))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(cfg.Config.Entrypoint, " ") != strings.Join(df.entrypoint, " ") || len(df.entrypoint) == 0 {
		t.Errorf("entrypoint %q, Dockerfile %q", cfg.Config.Entrypoint, df.entrypoint)
	}
	if cfg.Config.User != df.user || df.user == "" {
		t.Errorf("user %q, Dockerfile %q", cfg.Config.User, df.user)
	}
	if len(cfg.Config.Labels) != len(df.labels) {
		t.Errorf("labels %v, Dockerfile %v", cfg.Config.Labels, df.labels)
	}
	for k, v := range df.labels {
		if cfg.Config.Labels[k] != v {
			t.Errorf("label %s = %q, Dockerfile %q", k, cfg.Config.Labels[k], v)
		}
	}
	// The base the image stands in for runs as distroless' nonroot user.
	if df.from != "gcr.io/distroless/static:nonroot" {
		t.Errorf("the Dockerfile's base is now %s: check baseFiles still provides what it does", df.from)
	}

	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]*tar.Header{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		files["/"+strings.TrimSuffix(h.Name, "/")] = h
	}
	if len(df.copied) == 0 {
		t.Fatal("the Dockerfile's final stage copies nothing")
	}
	for _, p := range df.copied {
		h, ok := files[p]
		if !ok {
			t.Errorf("%s (copied by the Dockerfile) is not in the image", p)
			continue
		}
		if h.Typeflag != tar.TypeReg || h.Mode&0o111 == 0 {
			t.Errorf("%s: type %c mode %o, want an executable file", p, h.Typeflag, h.Mode)
		}
	}
	if ep := cfg.Config.Entrypoint; len(ep) > 0 && files[ep[0]] == nil {
		t.Errorf("entrypoint %s is not in the image", ep[0])
	}
}
