package main

import (
	"context"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers"
	"github.com/chatbackend/chatbackend/controllers/specs"
	"github.com/chatbackend/chatbackend/internal/testutil"
)

// TestManager runs the real manager entry point, with its flags, against a
// real API server: it becomes leader, serves /readyz, reconciles with the
// image from --default-apiserver-image, and on SIGTERM stops cleanly.
func TestManager(t *testing.T) {
	g := NewWithT(t)
	env, cfg, err := testutil.StartEnvtest(testutil.Envtest{
		Root: ".",
		CRDs: []string{filepath.Join("config", "crd", "bases")},
	})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })

	user, err := env.AddUser(envtest.User{Name: "operator", Groups: []string{"system:masters"}}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfig, err := user.KubeConfig()
	g.Expect(err).NotTo(HaveOccurred())
	kubeconfigPath := filepath.Join(t.TempDir(), "kubeconfig")
	g.Expect(os.WriteFile(kubeconfigPath, kubeconfig, 0o600)).To(Succeed())

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(chatv1alpha1.AddToScheme(scheme))
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	ctx := context.Background()
	g.Expect(c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "operator"}})).To(Succeed())

	probeAddr := testutil.FreeAddr(t)
	oldArgs := os.Args
	t.Cleanup(func() { os.Args = oldArgs })
	os.Args = []string{"manager",
		"--kubeconfig=" + kubeconfigPath,
		"--metrics-bind-address=0",
		"--health-probe-bind-address=" + probeAddr,
		"--leader-elect",
		"--leader-election-namespace=operator",
		"--default-apiserver-image=registry.example.com/chat-apiserver:from-flag",
	}
	done := make(chan error, 1)
	go func() { done <- run() }()

	g.Eventually(func() (int, error) {
		resp, err := http.Get("http://" + probeAddr + "/readyz")
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}, 20*time.Second, 100*time.Millisecond).Should(Equal(http.StatusOK))
	g.Eventually(func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: "operator", Name: "chatbackend-operator.chat.chatbackend.io"}, &coordinationv1.Lease{})
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed(), "leader election holds a Lease")

	g.Expect(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: "operator", Name: "db"},
		Data: map[string][]byte{"url": []byte("postgres://db/chat")}})).To(Succeed())
	cb := &chatv1alpha1.ChatBackend{
		ObjectMeta: metav1.ObjectMeta{Namespace: "operator", Name: "chat"},
		Spec: chatv1alpha1.ChatBackendSpec{
			Auth:     chatv1alpha1.AuthSpec{BetterAuthURL: "https://auth.example.com"},
			Database: chatv1alpha1.DatabaseSpec{URLSecretRef: chatv1alpha1.SecretKeyRef{Name: "db", Key: "url"}},
		},
	}
	g.Expect(c.Create(ctx, cb)).To(Succeed())
	g.Eventually(func() (*chatv1alpha1.ChatBackend, error) {
		got := &chatv1alpha1.ChatBackend{}
		err := c.Get(ctx, client.ObjectKeyFromObject(cb), got)
		return got, err
	}, 20*time.Second, 100*time.Millisecond).Should(HaveField("Status.ObservedGeneration", int64(1)))
	jobName := specs.MigrationJobName(cb, "registry.example.com/chat-apiserver:from-flag",
		specs.DatabaseFingerprint(map[string][]byte{"DATABASE_URL": []byte("postgres://db/chat")}))
	g.Eventually(func() error {
		return c.Get(ctx, client.ObjectKey{Namespace: "operator", Name: jobName}, &batchv1.Job{})
	}, 20*time.Second, 100*time.Millisecond).Should(Succeed(), "the Job runs the --default-apiserver-image")

	g.Expect(syscall.Kill(os.Getpid(), syscall.SIGTERM)).To(Succeed())
	select {
	case err := <-done:
		g.Expect(err).NotTo(HaveOccurred())
	case <-time.After(30 * time.Second):
		t.Fatal("manager did not stop within 30s of SIGTERM")
	}
}

// TestFleetFlags: the flags that size the operator for a fleet default to
// values that converge many ChatBackends quickly (not controller-runtime's
// one reconcile at a time and client-go's 5 QPS), are parsed, and nonsense
// is refused before the manager starts.
func TestFleetFlags(t *testing.T) {
	g := NewWithT(t)
	parse := func(args ...string) (*options, error) {
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		o := bindFlags(fs)
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		return o, o.validate()
	}

	o, err := parse()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(o.maxConcurrentReconciles).To(Equal(4))
	g.Expect(o.kubeAPIQPS).To(Equal(50.0))
	g.Expect(o.kubeAPIBurst).To(Equal(100))
	g.Expect(o.metricsSecure).To(BeTrue(), "metrics are served over HTTPS to authorized scrapers by default")
	g.Expect(o.rolloutDelay).To(Equal(30*time.Second), "an operator upgrade does not roll the whole fleet at once by default")

	o, err = parse("--max-concurrent-reconciles=8", "--kube-api-qps=20.5", "--kube-api-burst=40", "--rollout-delay=0")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(o.rolloutDelay).To(BeZero())
	g.Expect(o.maxConcurrentReconciles).To(Equal(8))
	g.Expect(o.kubeAPIQPS).To(Equal(20.5))
	g.Expect(o.kubeAPIBurst).To(Equal(40))

	for args, msg := range map[string]string{
		"--max-concurrent-reconciles=0": "--max-concurrent-reconciles must be at least 1",
		"--kube-api-qps=0":              "--kube-api-qps must be positive",
		"--kube-api-burst=10":           "--kube-api-burst (10) must be at least --kube-api-qps (50)",
		"--default-apiserver-image=":    "--default-apiserver-image must not be empty",
		"--rollout-delay=-1s":           "--rollout-delay must not be negative",
	} {
		_, err := parse(args)
		g.Expect(err).To(MatchError(ContainSubstring(msg)), args)
	}
}

// TestWatchNamespacesFlag: --watch-namespaces is a comma-separated list of
// namespace names (blanks and repeats tolerated), empty by default (the
// whole cluster), and becomes the cache's namespaces; a name that cannot be
// a namespace is refused before the manager starts.
func TestWatchNamespacesFlag(t *testing.T) {
	g := NewWithT(t)
	parse := func(args ...string) (*options, error) {
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		o := bindFlags(fs)
		return o, fs.Parse(args)
	}
	o, err := parse()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(o.watchNamespaces).To(BeEmpty())
	g.Expect(controllers.ManagerCacheOptions(o.watchNamespaces...).DefaultNamespaces).To(BeNil(), "cluster-wide")

	o, err = parse("--watch-namespaces= team-a,team-b,,team-a ")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(o.watchNamespaces).To(Equal([]string{"team-a", "team-b"}))
	g.Expect(controllers.ManagerCacheOptions(o.watchNamespaces...).DefaultNamespaces).To(HaveLen(2))
	g.Expect(controllers.ManagerCacheOptions(o.watchNamespaces...).DefaultNamespaces).To(HaveKey("team-b"))

	_, err = parse("--watch-namespaces=team-a,Team_B")
	g.Expect(err).To(MatchError(ContainSubstring(`namespace "Team_B"`)))
}
