// Command image builds the project's container images as OCI archives without
// a Docker daemon or a registry (go-containerregistry as a library), for
// `make image`, hack/cluster.sh and the cluster end-to-end test. The archives
// import with `ctr -n k8s.io images import`. Same inputs, same digest: every
// timestamp is the epoch and every tar is sorted.
//
//	image app    --tag T --out F --manager BIN --apiserver BIN [--version V]
//	    the image of the Dockerfile (manager + chat-apiserver, user 65532)
//	image binary --tag T --out F --bin BIN [--path /bin/NAME]
//	    one static binary as /NAME (or --path), the entrypoint, user 65532:
//	    test clients, and prometheus-operator, its config reloader and
//	    Prometheus for the cluster test
//	image pause  --tag T --out F
//	    builds hack/image/pause (static) and makes the CRI sandbox image of it
//
// It prints the manifest digest.
package main

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// nonroot is distroless' "nonroot" user, which the Dockerfile's final stage
// runs as; numeric so runAsNonRoot can verify it.
const nonroot = 65532

const pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// caBundle is where the distroless base (and Debian) keep the CA
// certificates; the API server needs them for an https OpenAI or BetterAuth.
const caBundle = "/etc/ssl/certs/ca-certificates.crt"

// baseFiles are what the Dockerfile's base, distroless/static:nonroot,
// provides and the binaries use: users, CA certificates, a writable /tmp
// and the nonroot home.
func baseFiles() ([]File, error) {
	ca, err := os.ReadFile(caBundle)
	if err != nil {
		return nil, fmt.Errorf("CA certificates (apt-get install ca-certificates): %w", err)
	}
	return []File{
		{Path: "/etc/passwd", Mode: 0o644, Data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{Path: "/etc/group", Mode: 0o644, Data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{Path: caBundle, Mode: 0o644, Data: ca},
		{Path: "/tmp", Mode: 0o1777, Dir: true},
		{Path: "/home/nonroot", Mode: 0o700, Dir: true, UID: nonroot, GID: nonroot},
	}, nil
}

// AppSpec is the image the Dockerfile describes; its test holds the two
// together.
func AppSpec(version string, manager, apiserver []byte, base []File) Spec {
	return Spec{
		Entrypoint: []string{"/usr/local/bin/manager"},
		User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
		Env:        []string{pathEnv, "SSL_CERT_FILE=" + caBundle},
		Labels: map[string]string{
			"org.opencontainers.image.title":       "chatbackend",
			"org.opencontainers.image.description": "chatbackend operator and chat-apiserver",
			"org.opencontainers.image.source":      "https://github.com/chatbackend/chatbackend",
			"org.opencontainers.image.version":     version,
		},
		Files: append([]File{
			{Path: "/usr/local/bin/chat-apiserver", Mode: 0o755, Data: apiserver},
			{Path: "/usr/local/bin/manager", Mode: 0o755, Data: manager},
		}, base...),
	}
}

// BinarySpec is one static binary at path, the entrypoint, run as nonroot.
func BinarySpec(path string, bin []byte) Spec {
	return Spec{
		Entrypoint: []string{path},
		User:       fmt.Sprintf("%d:%d", nonroot, nonroot),
		Env:        []string{pathEnv},
		Files:      []File{{Path: path, Mode: 0o755, Data: bin}},
	}
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: image app|binary|pause --tag T --out F ...")
		os.Exit(2)
	}
	if err := run(os.Args[1], os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
}

func run(cmd string, args []string) error {
	fs := flag.NewFlagSet(cmd, flag.ExitOnError)
	tag := fs.String("tag", "", "image reference, e.g. localhost/chatbackend:dev")
	out := fs.String("out", "", "OCI archive to write")
	manager := fs.String("manager", "bin/image/manager", "app: static manager binary")
	apiserver := fs.String("apiserver", "bin/image/chat-apiserver", "app: static chat-apiserver binary")
	version := fs.String("version", "dev", "app: org.opencontainers.image.version")
	bin := fs.String("bin", "", "binary: static binary")
	// prometheus-operator names the config reloader's command
	// (/bin/prometheus-config-reloader) in the pods it renders.
	binPath := fs.String("path", "", "binary: its path in the image (default /NAME)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tag == "" || *out == "" {
		return fmt.Errorf("--tag and --out are required")
	}
	var spec Spec
	switch cmd {
	case "app":
		m, err := os.ReadFile(*manager)
		if err != nil {
			return err
		}
		a, err := os.ReadFile(*apiserver)
		if err != nil {
			return err
		}
		base, err := baseFiles()
		if err != nil {
			return err
		}
		spec = AppSpec(*version, m, a, base)
	case "binary":
		b, err := os.ReadFile(*bin)
		if err != nil {
			return err
		}
		p := *binPath
		if p == "" {
			p = "/" + filepath.Base(*bin)
		}
		spec = BinarySpec(p, b)
	case "pause":
		b, err := buildPause()
		if err != nil {
			return err
		}
		spec = BinarySpec("/pause", b)
	default:
		return fmt.Errorf("unknown command %q", cmd)
	}
	d, err := write(spec, *tag, *out)
	if err != nil {
		return err
	}
	fmt.Println(d)
	return nil
}

func write(spec Spec, tag, out string) (v1.Hash, error) {
	img, err := Build(spec)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return v1.Hash{}, err
	}
	f, err := os.Create(out)
	if err != nil {
		return v1.Hash{}, err
	}
	d, err := WriteOCIArchive(f, img, tag)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("write %s: %w", out, err)
	}
	return d, nil
}

// buildPause compiles hack/image/pause static and reproducibly.
func buildPause() ([]byte, error) {
	dir, err := os.MkdirTemp("", "pause")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "pause")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -buildid=", "-o", out, "./hack/image/pause")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	cmd.Stderr = os.Stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("go build pause: %w", err)
	}
	return os.ReadFile(out)
}
