package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Envtest describes a control plane for StartEnvtest.
type Envtest struct {
	// Root is the repository root (bin/ holds the cached binaries when
	// KUBEBUILDER_ASSETS is unset).
	Root string
	// CRDs are directories of CRDs to install; none when empty (the chart
	// test installs its own).
	CRDs   []string
	Scheme *runtime.Scheme
	// APIServerFlags are set on kube-apiserver, over envtest's defaults.
	APIServerFlags map[string]string
}

// StartEnvtest starts kube-apiserver and etcd (hack/tools.sh envtest) and
// returns the environment; the caller stops it.
//
// Why generous timeouts: `go test ./...` starts several suites at once on a
// 2-core machine, and a control plane that needs 30 s there is not broken.
func StartEnvtest(o Envtest) (*envtest.Environment, *rest.Config, error) {
	assets := os.Getenv("KUBEBUILDER_ASSETS")
	if assets == "" {
		assets = filepath.Join(o.Root, "bin")
	}
	assets, err := filepath.Abs(assets)
	if err != nil {
		return nil, nil, fmt.Errorf("envtest assets: %w", err)
	}
	for _, b := range []string{"kube-apiserver", "etcd"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			return nil, nil, fmt.Errorf("envtest: no %s in %s; run `hack/tools.sh envtest` (or `make test-deps`)", b, assets)
		}
	}
	env := &envtest.Environment{
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        o.CRDs,
		ErrorIfCRDPathMissing:    len(o.CRDs) > 0,
		Scheme:                   o.Scheme,
		ControlPlaneStartTimeout: time.Minute,
		ControlPlaneStopTimeout:  time.Minute,
	}
	args := env.ControlPlane.GetAPIServer().Configure()
	for k, v := range o.APIServerFlags {
		args.Set(k, v)
	}
	cfg, err := env.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("start envtest: %w", err)
	}
	return env, cfg, nil
}
