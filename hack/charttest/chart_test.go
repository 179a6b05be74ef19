// Package charttest installs the Helm chart into a real kube-apiserver
// (envtest: kube-apiserver + etcd, no CRDs preinstalled) with the real helm
// binary, then runs the operator binary exactly as the chart's Deployment
// would (its command-line arguments, its ServiceAccount's RBAC) and applies
// the samples of config/samples, checking that the operator acts on them.
//
// What it proves: the chart installs (Helm validates every object against the
// server's schemas), its CRD is the one the operator serves, its flags are the
// ones the manager defines, its ClusterRole is enough for the operator to do
// its work, its default API image is the operator's own, and the samples are
// valid ChatBackends. scoped_test.go does the same for a namespace-scoped
// install with the CRD from the chatbackend-operator-crds chart.
package charttest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	batchv1 "k8s.io/api/batch/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
	"github.com/chatbackend/chatbackend/internal/testutil"
	"github.com/chatbackend/chatbackend/internal/version"
)

// wait bounds each Eventually: generous, because it only matters when the
// machine is busy; a passing step returns as soon as it holds.
const wait = time.Minute

const (
	release   = "chatbackend-operator"
	namespace = "chatbackend-system"
	appNS     = "docs"
	crdName   = "chatbackends.chat.chatbackend.io"
)

var root = func() string {
	wd, err := os.Getwd()
	if err != nil {
		panic(err) // the test binary always has a working directory
	}
	return filepath.Join(wd, "..", "..")
}()

var chartDir = filepath.Join(root, "charts", "chatbackend-operator")

// helmBinary is the real helm that hack/tools.sh links into bin/; these
// tests install charts with it.
func helmBinary(t *testing.T) string {
	t.Helper()
	helm := filepath.Join(root, "bin", "helm")
	if _, err := os.Stat(helm); err != nil {
		t.Fatalf("%s not found: run `make tools-helm` (this test needs the real helm binary)", helm)
	}
	return helm
}

func TestHelmInstallThenOperatorReconcilesSamples(t *testing.T) {
	g := NewWithT(t)
	helm := helmBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Build the manager while the API server starts.
	managerBin := filepath.Join(t.TempDir(), "manager")
	built := make(chan error, 1)
	go func() { built <- goBuild(ctx, managerBin) }()

	env, admin, adminKubeconfig := startAPIServer(t)

	// 1. helm install, default values, as cluster-admin would.
	out, err := run(ctx, helm, "install", release, chartDir,
		"--namespace", namespace, "--create-namespace",
		"--kubeconfig", adminKubeconfig)
	g.Expect(err).NotTo(HaveOccurred(), "helm install:\n%s", out)
	g.Expect(out).To(ContainSubstring("STATUS: deployed"))
	g.Expect(out).To(ContainSubstring("kubectl get chatbackends"), "NOTES.txt is printed")

	// 2. The CRD (a template of the release, so `helm upgrade` upgrades
	// it) is served, and the operator's objects exist.
	g.Eventually(func(g Gomega) {
		var crd apiextensionsv1.CustomResourceDefinition
		g.Expect(admin.Get(ctx, client.ObjectKey{Name: crdName}, &crd)).To(Succeed())
		g.Expect(crdEstablished(&crd)).To(BeTrue(), "CRD %s established", crdName)
		g.Expect(crd.Annotations).To(HaveKeyWithValue("meta.helm.sh/release-name", release), "the release manages the CRD")
	}).WithTimeout(wait).Should(Succeed())

	var dep appsv1.Deployment
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: release}, &dep)).To(Succeed())
	pod := dep.Spec.Template.Spec
	g.Expect(pod.Containers).To(HaveLen(1))
	container := pod.Containers[0]
	appVersion := chartAppVersion(t)
	ownImage := "ghcr.io/chatbackend/chatbackend:" + appVersion
	g.Expect(container.Image).To(Equal(ownImage), "the operator runs the chart's image at appVersion")
	g.Expect(container.Args).To(ContainElement("--default-apiserver-image="+ownImage),
		"the default API image is the operator's own image at its own version")
	g.Expect(container.SecurityContext.ReadOnlyRootFilesystem).To(Equal(ptr.To(true)))
	g.Expect(pod.SecurityContext.RunAsNonRoot).To(Equal(ptr.To(true)))
	g.Expect(container.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
	g.Expect(container.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))

	saName := pod.ServiceAccountName
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: saName}, &corev1.ServiceAccount{})).To(Succeed())
	var crb rbacv1.ClusterRoleBinding
	g.Expect(admin.Get(ctx, client.ObjectKey{Name: release + "-manager"}, &crb)).To(Succeed())
	g.Expect(crb.Subjects).To(ContainElement(rbacv1.Subject{Kind: "ServiceAccount", Name: saName, Namespace: namespace}))
	g.Expect(admin.Get(ctx, client.ObjectKey{Name: crb.RoleRef.Name}, &rbacv1.ClusterRole{})).To(Succeed())
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: release + "-leader-election"}, &rbacv1.RoleBinding{})).To(Succeed())
	var svc corev1.Service
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: release + "-metrics"}, &svc)).To(Succeed())
	g.Expect(svc.Spec.Selector).To(Equal(dep.Spec.Selector.MatchLabels), "the metrics Service selects the operator pods")

	// 3. From here on the operator's ServiceAccount acts: a client
	// certificate for its user name gets exactly the RBAC the chart bound.
	saUser, err := env.AddUser(envtest.User{
		Name:   "system:serviceaccount:" + namespace + ":" + saName,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace},
	}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	saKubeconfig := writeKubeconfig(t, saUser, "operator.kubeconfig")
	saClient, err := client.New(saUser.Config(), client.Options{Scheme: scheme()})
	g.Expect(err).NotTo(HaveOccurred())

	// The leader-election Role lets the operator hold its Lease. (The
	// manager below runs without leader election: out of a cluster it
	// cannot discover its namespace.)
	lease := &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "chart-test-lease"}}
	g.Expect(saClient.Create(ctx, lease)).To(Succeed(), "the leader-election Role allows Leases")
	g.Expect(saClient.Delete(ctx, lease)).To(Succeed())
	// ...and nothing more than the ClusterRole: it cannot touch RBAC.
	err = saClient.Create(ctx, &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: "escalate"}})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "the operator must not be able to write RBAC, got %v", err)

	// 4. Run the manager binary with the Deployment's own arguments.
	g.Expect(<-built).To(Succeed())
	probeAddr, metricsAddr := testutil.FreeAddr(t), testutil.FreeAddr(t)
	args := adaptArgs(t, container.Args, map[string]string{
		"--health-probe-bind-address": probeAddr,
		"--metrics-bind-address":      metricsAddr,
		"--leader-elect":              "false",
	})
	// Notice the prometheus-operator CRDs installed below within seconds,
	// not the default minutes.
	args = append(args, "--monitoring-recheck-interval=1s")
	g.Expect(filepath.Base(container.Command[0])).To(Equal("manager"))
	logs := startManager(t, managerBin, args, saKubeconfig)
	g.Eventually(func() (int, error) { return httpStatus("http://" + probeAddr + "/readyz") }).
		WithTimeout(wait).Should(Equal(http.StatusOK), "manager readyz; logs:\n%s", logs)
	code, err := httpStatus("http://" + probeAddr + "/healthz")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusOK))

	// 5. Apply the samples: the Secrets, the minimal and the complete
	// ChatBackend, with strict field validation so a misspelt field fails
	// instead of being pruned.
	g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: appNS}})).To(Succeed())
	secrets := applySample(t, ctx, admin, "chatbackend-secrets.yaml")
	applySample(t, ctx, admin, "chatbackend-minimal.yaml")
	applySample(t, ctx, admin, "chatbackend-complete.yaml")
	secretValue := func(name, key string) string {
		for _, s := range secrets {
			if s.GetName() == name {
				v, _, _ := unstructured.NestedString(s.Object, "stringData", key)
				return v
			}
		}
		t.Fatalf("sample Secret %s not found", name)
		return ""
	}

	// Every file of config/samples (the operator's own samples too) holds
	// objects the API server accepts strictly (server-side dry run).
	g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "samples"}})).To(Succeed())
	sampleFiles, err := filepath.Glob(filepath.Join(root, "config", "samples", "*.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	for _, f := range sampleFiles {
		if filepath.Base(f) == "kustomization.yaml" {
			continue
		}
		r, err := os.Open(f)
		g.Expect(err).NotTo(HaveOccurred())
		objs, err := decodeAll(r)
		r.Close()
		g.Expect(err).NotTo(HaveOccurred(), f)
		for _, u := range objs {
			u.SetNamespace("samples")
			g.Expect(admin.Create(ctx, u, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))).
				To(Succeed(), "%s: %s %s", filepath.Base(f), u.GetKind(), u.GetName())
		}
	}

	// The minimal sample: env Secret, a migrations Job of the operator's
	// own image, no Deployment yet, and a status that says so.
	minimal := client.ObjectKey{Namespace: appNS, Name: "docs-chat"}
	// The env Secret is named after its values, the Job after the image and
	// the database those values point at.
	named := func(name string) *chatv1alpha1.ChatBackend {
		return &chatv1alpha1.ChatBackend{ObjectMeta: metav1.ObjectMeta{Name: name}}
	}
	minimalEnv := map[string][]byte{"DATABASE_URL": []byte(secretValue("docs-chat-db", "url"))}
	jobKey := client.ObjectKey{Namespace: appNS, Name: specs.MigrationJobName(named("docs-chat"), ownImage, specs.DatabaseFingerprint(minimalEnv))}
	g.Eventually(func(g Gomega) {
		var s corev1.Secret
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: appNS, Name: specs.EnvSecretName(named("docs-chat"), specs.HashData(minimalEnv))}, &s)).To(Succeed())
		g.Expect(string(s.Data["DATABASE_URL"])).To(Equal(secretValue("docs-chat-db", "url")))
		g.Expect(metav1.GetControllerOf(&s)).NotTo(BeNil())
		g.Expect(metav1.GetControllerOf(&s).Name).To(Equal("docs-chat"))

		var job batchv1.Job
		g.Expect(admin.Get(ctx, jobKey, &job)).To(Succeed())
		g.Expect(job.Spec.Template.Spec.Containers[0].Image).To(Equal(ownImage))
		g.Expect(job.Spec.Template.Spec.Containers[0].Args).To(ContainElement("migrate"))
		// --pod-run-as-user=auto on a cluster that is not OpenShift.
		g.Expect(job.Spec.Template.Spec.SecurityContext.RunAsUser).To(Equal(ptr.To(specs.NonRootUID)))
	}).WithTimeout(wait).Should(Succeed(), "operator logs:\n%s", logs)

	g.Expect(apierrors.IsNotFound(admin.Get(ctx, minimal, &appsv1.Deployment{}))).To(BeTrue(),
		"no Deployment before the migrations Job succeeded")
	g.Eventually(func(g Gomega) {
		cb := getChatBackend(g, ctx, admin, minimal)
		g.Expect(cb.Status.ObservedGeneration).To(Equal(cb.Generation))
		expectCondition(g, cb, chatv1alpha1.ConditionMigrated, metav1.ConditionFalse, chatv1alpha1.ReasonMigrating)
		expectCondition(g, cb, chatv1alpha1.ConditionReady, metav1.ConditionFalse, "")
		// No prometheus-operator in this cluster.
		expectCondition(g, cb, chatv1alpha1.ConditionMonitoringReady, metav1.ConditionFalse, chatv1alpha1.ReasonCRDNotInstalled)
	}).WithTimeout(wait).Should(Succeed(), "operator logs:\n%s", logs)

	// There is no kubelet here: play the Job controller and let the
	// migration succeed. The API Deployment and Service follow.
	completeJob(t, ctx, admin, jobKey)
	g.Eventually(func(g Gomega) {
		var d appsv1.Deployment
		g.Expect(admin.Get(ctx, minimal, &d)).To(Succeed())
		g.Expect(d.Spec.Template.Spec.Containers[0].Image).To(Equal(ownImage))
		g.Expect(d.Spec.Template.Spec.Containers[0].Args).To(ContainElement("serve"))
		g.Expect(admin.Get(ctx, minimal, &corev1.Service{})).To(Succeed())
		cb := getChatBackend(g, ctx, admin, minimal)
		g.Expect(cb.Status.MigratedImage).To(Equal(ownImage))
		expectCondition(g, cb, chatv1alpha1.ConditionMigrated, metav1.ConditionTrue, chatv1alpha1.ReasonMigrationSucceeded)
		g.Expect(cb.Status.URL).To(Equal("http://docs-chat.docs.svc:80"))
	}).WithTimeout(wait).Should(Succeed(), "operator logs:\n%s", logs)

	// The complete sample: every referenced key lands in its env Secret and
	// its own image is migrated.
	fullEnv := map[string][]byte{
		"DATABASE_URL":        []byte(secretValue("docs-chat-db", "url")),
		"DATABASE_DIRECT_URL": []byte(secretValue("docs-chat-db", "direct-url")),
		"OPENAI_API_KEY":      []byte(secretValue("docs-chat-openai", "api-key")),
		"QDRANT_API_KEY":      []byte(secretValue("docs-chat-qdrant", "api-key")),
	}
	g.Eventually(func(g Gomega) {
		var s corev1.Secret
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: appNS, Name: specs.EnvSecretName(named("docs-chat-full"), specs.HashData(fullEnv))}, &s)).To(Succeed())
		g.Expect(s.Data).To(Equal(fullEnv))
		cb := getChatBackend(g, ctx, admin, client.ObjectKey{Namespace: appNS, Name: "docs-chat-full"})
		var job batchv1.Job
		jobName := specs.MigrationJobName(cb, cb.Spec.Image, specs.DatabaseFingerprint(fullEnv))
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: appNS, Name: jobName}, &job)).To(Succeed())
		g.Expect(job.Spec.ActiveDeadlineSeconds).To(HaveValue(Equal(cb.Spec.Migration.ActiveDeadlineSeconds)))
		g.Expect(job.Spec.Template.Spec.Containers[0].Image).To(Equal(cb.Spec.Image))
		// The pod settings reach the migrations pod too.
		// (The operator adds its own: the hash of the mounted TLS Secrets.)
		for k, v := range cb.Spec.Migration.PodMetadata.Annotations {
			g.Expect(job.Spec.Template.Annotations).To(HaveKeyWithValue(k, v))
		}
		g.Expect(job.Spec.Template.Annotations).To(HaveKey(specs.AnnotationMountedSecretsHash))
		g.Expect(job.Spec.Template.Spec.Volumes).To(ContainElement(HaveField("Name", cb.Spec.Volumes[0].Name)))
		expectCondition(g, cb, chatv1alpha1.ConditionMigrated, metav1.ConditionFalse, chatv1alpha1.ReasonMigrating)
	}).WithTimeout(wait).Should(Succeed(), "operator logs:\n%s", logs)

	// 6. prometheus-operator arrives: the operator creates the ChatBackend's
	// ServiceMonitor and PrometheusRule (its ClusterRole allows it), and the
	// chart can add the operator's own ServiceMonitor.
	_, err = envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join(root, "config", "crd", "external")}, ErrorIfPathMissing: true,
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		cb := getChatBackend(g, ctx, admin, minimal)
		expectCondition(g, cb, chatv1alpha1.ConditionMonitoringReady, metav1.ConditionTrue, chatv1alpha1.ReasonMonitoringReconciled)
		for _, kind := range []string{"ServiceMonitor", "PrometheusRule"} {
			g.Expect(admin.Get(ctx, minimal, monitoringObject(kind))).To(Succeed(), kind)
		}
	}).WithTimeout(wait).Should(Succeed(), "operator logs:\n%s", logs)
	out, err = run(ctx, helm, "upgrade", release, chartDir, "--namespace", namespace, "--kubeconfig", adminKubeconfig,
		"--reuse-values", "--set", "serviceMonitor.enabled=true")
	g.Expect(err).NotTo(HaveOccurred(), "helm upgrade with serviceMonitor.enabled:\n%s", out)
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: release}, monitoringObject("ServiceMonitor"))).To(Succeed())

	// The non-default values files of ci/ render objects this API server
	// accepts: server-side dry-run with strict field validation, so an
	// unknown or misplaced field fails instead of being dropped.
	ciValues, err := filepath.Glob(filepath.Join(chartDir, "ci", "*-values.yaml"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(ciValues).NotTo(BeEmpty())
	for _, f := range ciValues {
		name := "ci-" + strings.TrimSuffix(filepath.Base(f), "-values.yaml")
		out, err := run(ctx, helm, "template", name, chartDir, "--namespace", name, "-f", f)
		g.Expect(err).NotTo(HaveOccurred(), "helm template -f %s:\n%s", f, out)
		g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})).To(Succeed())
		objs, err := decodeAll(strings.NewReader(out))
		g.Expect(err).NotTo(HaveOccurred(), "helm template -f %s", f)
		g.Expect(objs).NotTo(BeEmpty())
		for _, u := range objs {
			err := admin.Create(ctx, u, client.DryRunAll, client.FieldValidation(metav1.FieldValidationStrict))
			g.Expect(err).NotTo(HaveOccurred(), "%s: %s %s", filepath.Base(f), u.GetKind(), u.GetName())
		}
	}

	// The operator's own metrics are served where the chart's Service
	// points (its metrics port), over HTTPS, to a bearer of a token the
	// API server says may get /metrics: the chart's metrics-reader
	// ClusterRole, which Prometheus's ServiceAccount is bound to.
	metricsURL := "https://" + metricsAddr + "/metrics"
	code, err = scrape(metricsURL, "")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(code).To(Equal(http.StatusUnauthorized), "no token")
	reader := serviceAccountToken(t, ctx, admin, namespace, "prometheus")
	outsider := serviceAccountToken(t, ctx, admin, namespace, "outsider")
	g.Expect(admin.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "prometheus-reads-operator-metrics"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: release + "-metrics-reader"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "prometheus", Namespace: namespace}},
	})).To(Succeed())
	g.Eventually(func() (int, error) { return scrape(metricsURL, outsider) }).
		WithTimeout(10*time.Second).Should(Equal(http.StatusForbidden), "a token without the metrics-reader role")
	g.Eventually(func() (string, error) { return scrapeBody(metricsURL, reader) }).
		WithTimeout(10 * time.Second).Should(ContainSubstring(`controller_runtime_reconcile_total{controller="chatbackend"`))

	// 7. helm uninstall removes the operator's objects; the CRD stays
	// (helm.sh/resource-policy: keep), or every ChatBackend would go.
	out, err = run(ctx, helm, "uninstall", release, "--namespace", namespace, "--kubeconfig", adminKubeconfig)
	g.Expect(err).NotTo(HaveOccurred(), "helm uninstall:\n%s", out)
	g.Eventually(func() bool {
		return apierrors.IsNotFound(admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: release}, &appsv1.Deployment{}))
	}).WithTimeout(wait).Should(BeTrue())
	g.Expect(admin.Get(ctx, client.ObjectKey{Name: crdName}, &apiextensionsv1.CustomResourceDefinition{})).To(Succeed())
}

func monitoringObject(kind string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{}
	u.SetAPIVersion("monitoring.coreos.com/v1")
	u.SetKind(kind)
	return u
}

func scheme() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, apiextensionsv1.AddToScheme, chatv1alpha1.AddToScheme} {
		if err := add(s); err != nil {
			panic(err) // registering built-in types cannot fail
		}
	}
	return s
}

// startAPIServer starts kube-apiserver and etcd with no CRD installed: the
// chart must bring its own.
func startAPIServer(t *testing.T) (*envtest.Environment, client.Client, string) {
	t.Helper()
	env, cfg, err := testutil.StartEnvtest(testutil.Envtest{Root: root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := env.Stop(); err != nil {
			t.Errorf("stop envtest: %v", err)
		}
	})
	c, err := client.New(cfg, client.Options{Scheme: scheme()})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := env.AddUser(envtest.User{Name: "chart-test-admin", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return env, c, writeKubeconfig(t, admin, "admin.kubeconfig")
}

func writeKubeconfig(t *testing.T, u *envtest.AuthenticatedUser, name string) string {
	t.Helper()
	b, err := u.KubeConfig()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// run executes a command with Helm kept away from the user's own config and
// cache, and returns its combined output.
func run(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	home, err := os.MkdirTemp("", "charttest-helm-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(home)
	cmd.Env = append(os.Environ(),
		"HELM_CONFIG_HOME="+filepath.Join(home, "config"),
		"HELM_CACHE_HOME="+filepath.Join(home, "cache"),
		"HELM_DATA_HOME="+filepath.Join(home, "data"),
	)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func goBuild(ctx context.Context, out string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, ".")
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build the manager: %w\n%s", err, b)
	}
	return nil
}

func chartAppVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "appVersion:"); ok {
			return strings.Trim(strings.TrimSpace(v), `"'`)
		}
	}
	t.Fatal("Chart.yaml has no appVersion")
	return ""
}

func crdEstablished(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue {
			return true
		}
	}
	return false
}

// adaptArgs replaces the values of some --flag=value arguments (addresses
// that would collide on this machine) and fails if one of them is missing:
// the chart must set each.
func adaptArgs(t *testing.T, args []string, set map[string]string) []string {
	t.Helper()
	out := make([]string, 0, len(args))
	seen := map[string]bool{}
	for _, a := range args {
		name, _, _ := strings.Cut(a, "=")
		if v, ok := set[name]; ok {
			a = name + "=" + v
			seen[name] = true
		}
		out = append(out, a)
	}
	for name := range set {
		if !seen[name] {
			t.Fatalf("the chart's Deployment does not pass %s; args: %q", name, args)
		}
	}
	return out
}

// managerLogs shows the last lines of the manager's output in failure
// messages, which format it with %s only when they fail.
type managerLogs struct{ buf *testutil.SyncBuffer }

func (l managerLogs) String() string { return l.buf.Tail(40) }

func startManager(t *testing.T, bin string, args []string, kubeconfig string) managerLogs {
	t.Helper()
	logs := managerLogs{buf: &testutil.SyncBuffer{}}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+kubeconfig)
	cmd.Stdout, cmd.Stderr = logs.buf, logs.buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		// A graceful stop, as the kubelet would: SIGTERM, then the manager
		// finishes in-flight reconciles and exits.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("manager exited with %v after SIGTERM; logs:\n%s", err, logs)
			}
		case <-time.After(15 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("manager did not stop within 15s of SIGTERM; logs:\n%s", logs)
		}
		if t.Failed() {
			t.Logf("manager logs (last lines):\n%s", logs)
		}
	})
	return logs
}

func httpStatus(url string) (int, error) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// serviceAccountToken creates ServiceAccount ns/name and returns a token
// of it (TokenRequest), as the kubelet gives a pod of it.
func serviceAccountToken(t *testing.T, ctx context.Context, c client.Client, ns, name string) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if err := c.Create(ctx, sa); err != nil {
		t.Fatalf("create ServiceAccount %s: %v", name, err)
	}
	req := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)}}
	if err := c.SubResource("token").Create(ctx, sa, req); err != nil {
		t.Fatalf("request a token of ServiceAccount %s: %v", name, err)
	}
	return req.Status.Token
}

// scrapeClient trusts the operator's self-signed metrics certificate, as
// the chart's ServiceMonitor does (insecureSkipVerify).
var scrapeClient = &http.Client{
	Timeout:   5 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
}

func scrapeResponse(url, token string) (*http.Response, error) {
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return scrapeClient.Do(req)
}

func scrape(url, token string) (int, error) {
	resp, err := scrapeResponse(url, token)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

func scrapeBody(url, token string) (string, error) {
	resp, err := scrapeResponse(url, token)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// applySample creates every object of config/samples/<file> in appNS and
// returns them as written in the file (the server's copy of a Secret no
// longer has its stringData).
func applySample(t *testing.T, ctx context.Context, c client.Client, file string) []*unstructured.Unstructured {
	t.Helper()
	f, err := os.Open(filepath.Join(root, "config", "samples", file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	decoded, err := decodeAll(f)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	var objs []*unstructured.Unstructured
	for _, u := range decoded {
		u.SetNamespace(appNS)
		objs = append(objs, u.DeepCopy())
		if err := c.Create(ctx, u, client.FieldValidation(metav1.FieldValidationStrict)); err != nil {
			t.Fatalf("%s: create %s %s: %v", file, u.GetKind(), u.GetName(), err)
		}
	}
	if len(objs) == 0 {
		t.Fatalf("%s holds no object", file)
	}
	return objs
}

// decodeAll reads a multi-document YAML stream; empty documents (comments
// only) are skipped.
func decodeAll(r io.Reader) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(r, 4096)
	var objs []*unstructured.Unstructured
	for {
		u := &unstructured.Unstructured{}
		if err := dec.Decode(&u.Object); errors.Is(err, io.EOF) {
			return objs, nil
		} else if err != nil {
			return nil, err
		}
		if len(u.Object) > 0 {
			objs = append(objs, u)
		}
	}
}

func getChatBackend(g Gomega, ctx context.Context, c client.Client, key client.ObjectKey) *chatv1alpha1.ChatBackend {
	var cb chatv1alpha1.ChatBackend
	g.Expect(c.Get(ctx, key, &cb)).To(Succeed())
	return &cb
}

// expectCondition checks a condition's status and, unless empty, its reason.
func expectCondition(g Gomega, cb *chatv1alpha1.ChatBackend, typ string, status metav1.ConditionStatus, reason string) {
	c := meta.FindStatusCondition(cb.Status.Conditions, typ)
	g.Expect(c).NotTo(BeNil(), "condition %s in %+v", typ, cb.Status.Conditions)
	g.Expect(c.Status).To(Equal(status), "condition %s: %+v", typ, c)
	if reason != "" {
		g.Expect(c.Reason).To(Equal(reason), "condition %s: %+v", typ, c)
	}
	g.Expect(c.ObservedGeneration).To(Equal(cb.Generation), "condition %s is current", typ)
}

// completeJob sets the status the Job controller would write when the
// migration pod succeeded.
func completeJob(t *testing.T, ctx context.Context, c client.Client, key client.ObjectKey) {
	t.Helper()
	var job batchv1.Job
	if err := c.Get(ctx, key, &job); err != nil {
		t.Fatal(err)
	}
	now := metav1.Now()
	job.Status.StartTime = &now
	job.Status.CompletionTime = &now
	job.Status.Succeeded = 1
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastProbeTime: now, LastTransitionTime: now},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastProbeTime: now, LastTransitionTime: now},
	}
	if err := c.Status().Update(ctx, &job); err != nil {
		t.Fatalf("mark Job %s complete: %v", key, err)
	}
}

// The image the Dockerfile builds is the one the chart and the operator
// assume: the manager where the chart's command points, chat-apiserver on
// the PATH of the distroless base (the operator runs it by name), a numeric
// non-root user (runAsNonRoot can only verify a numeric one), static
// binaries stamped with the version the operator's default image uses.
func TestDockerfileMatchesChartAndOperator(t *testing.T) {
	g := NewWithT(t)
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	g.Expect(err).NotTo(HaveOccurred())
	df := string(b)

	// The final stage starts at the last FROM.
	final := df[strings.LastIndex(df, "\nFROM "):]
	g.Expect(final).To(HavePrefix("\nFROM gcr.io/distroless/static"))
	g.Expect(final).To(MatchRegexp(`(?m)^USER 65532(:65532)?$`))
	// distroless/static's PATH.
	const binDir = "/usr/local/bin/"
	g.Expect(final).To(MatchRegexp(`(?m)^COPY --from=builder /out/chat-apiserver /out/manager ` + binDir + `$`))
	g.Expect(specs.Binary).To(Equal("chat-apiserver"), "the operator runs chat-apiserver by name, from PATH")

	out, err := run(context.Background(), filepath.Join(root, "bin", "helm"), "template", "t", chartDir, "--show-only", "templates/deployment.yaml")
	if err != nil {
		t.Fatalf("helm template (run `make tools-helm` if helm is missing): %v\n%s", err, out)
	}
	g.Expect(out).To(ContainSubstring(`command: ["` + binDir + `manager"]`))

	builder := df[:strings.LastIndex(df, "\nFROM ")]
	g.Expect(builder).To(ContainSubstring("CGO_ENABLED=0"))
	g.Expect(strings.Count(builder, "-X github.com/chatbackend/chatbackend/internal/version.Version=${VERSION}")).To(Equal(2))
	g.Expect(builder).To(ContainSubstring("./apiserver/cmd/chat-apiserver"))
}

// TestChatAPIServerBuildTags: the image (Dockerfile and `make image`) and
// `make build` build chat-apiserver with the tags that keep its binary, and
// so its idle memory, small (internal/version.APIServerTags).
func TestChatAPIServerBuildTags(t *testing.T) {
	g := NewWithT(t)
	b, err := os.ReadFile(filepath.Join(root, "Dockerfile"))
	g.Expect(err).NotTo(HaveOccurred())
	df := string(b)
	out := strings.Index(df, "-o /out/chat-apiserver ")
	g.Expect(out).To(BeNumerically(">", 0))
	cmd := df[strings.LastIndex(df[:out], "go build"):out]
	g.Expect(cmd).To(ContainSubstring("-tags " + version.APIServerTags + " "))
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(string(mk)).To(MatchRegexp(`(?m)^APISERVER_TAGS := ` + version.APIServerTags + `$`))
	for _, line := range strings.Split(string(mk), "\n") {
		if strings.Contains(line, "go build") && strings.Contains(line, "./apiserver/cmd/chat-apiserver") {
			g.Expect(line).To(ContainSubstring("-tags $(APISERVER_TAGS) "))
		}
	}
}

// TestChartPassesMonitoringLabels: the chart value monitoringLabels reaches
// the manager as one --monitoring-labels flag in the k=v,... form it parses,
// and no flag is passed by default.
func TestChartPassesMonitoringLabels(t *testing.T) {
	g := NewWithT(t)
	helm := filepath.Join(root, "bin", "helm")
	out, err := run(context.Background(), helm, "template", "t", chartDir, "--show-only", "templates/deployment.yaml",
		"--set", "monitoringLabels.release=kube-prometheus-stack", "--set", "monitoringLabels.team=chat")
	g.Expect(err).NotTo(HaveOccurred(), "helm template:\n%s", out)
	g.Expect(out).To(ContainSubstring(`- "--monitoring-labels=release=kube-prometheus-stack,team=chat"`))
	set, err := labels.ConvertSelectorToLabelsMap("release=kube-prometheus-stack,team=chat")
	g.Expect(err).NotTo(HaveOccurred(), "the manager's parser accepts the rendered value")
	g.Expect(set).To(HaveLen(2))

	out, err = run(context.Background(), helm, "template", "t", chartDir, "--show-only", "templates/deployment.yaml")
	g.Expect(err).NotTo(HaveOccurred(), "helm template:\n%s", out)
	g.Expect(out).NotTo(ContainSubstring("--monitoring-labels"))
}

// TestChartSizesTheOperatorForAFleet: the reconcile concurrency and the
// API client's rate limit reach the manager as flags, with defaults sized
// for a fleet, and GOMEMLIMIT follows the container's memory limit. (The
// install test runs the manager with the rendered flags, so they parse.)
func TestChartSizesTheOperatorForAFleet(t *testing.T) {
	g := NewWithT(t)
	render := func(args ...string) *appsv1.Deployment {
		out, err := run(context.Background(), filepath.Join(root, "bin", "helm"),
			append([]string{"template", "t", chartDir, "--show-only", "templates/deployment.yaml"}, args...)...)
		g.Expect(err).NotTo(HaveOccurred(), "helm template:\n%s", out)
		objs, err := decodeAll(strings.NewReader(out))
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(objs).To(HaveLen(1))
		dep := &appsv1.Deployment{}
		g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(objs[0].Object, dep)).To(Succeed())
		return dep
	}

	c := render().Spec.Template.Spec.Containers[0]
	g.Expect(c.Args).To(ContainElements("--max-concurrent-reconciles=4", "--kube-api-qps=50", "--kube-api-burst=100", "--rollout-delay=30s"))
	g.Expect(c.Env).To(ContainElement(corev1.EnvVar{Name: "GOMEMLIMIT", ValueFrom: &corev1.EnvVarSource{
		ResourceFieldRef: &corev1.ResourceFieldSelector{ContainerName: c.Name, Resource: "limits.memory", Divisor: resource.MustParse("1")},
	}}))
	g.Expect(c.Resources.Limits.Memory().IsZero()).To(BeFalse(), "GOMEMLIMIT needs a memory limit to follow")

	c = render("--set", "maxConcurrentReconciles=16", "--set-json", `kubeAPI={"qps":7.5,"burst":15}`, "--set", "rolloutDelay=2m30s").Spec.Template.Spec.Containers[0]
	g.Expect(c.Args).To(ContainElements("--max-concurrent-reconciles=16", "--kube-api-qps=7.5", "--kube-api-burst=15", "--rollout-delay=2m30s"))
	out, err := run(context.Background(), filepath.Join(root, "bin", "helm"), "template", "t", chartDir, "--set", "rolloutDelay=soon")
	g.Expect(err).To(HaveOccurred(), "the values schema refuses a rolloutDelay that is not a duration:\n%s", out)

	out, err = run(context.Background(), filepath.Join(root, "bin", "helm"), "template", "t", chartDir, "--set", "maxConcurrentReconciles=0")
	g.Expect(err).To(HaveOccurred(), "the values schema refuses 0 reconciles:\n%s", out)
}

// TestChartNetworkPolicy: off by default; on, it selects the operator's
// pods and admits only the listed peers, only to the metrics port, and
// nobody when none are listed (an empty "from" would admit everyone). The
// install test applies it (ci/full-values.yaml) with strict validation.
func TestChartNetworkPolicy(t *testing.T) {
	g := NewWithT(t)
	helm := filepath.Join(root, "bin", "helm")
	render := func(args ...string) []*unstructured.Unstructured {
		var policies []*unstructured.Unstructured
		for _, o := range decodeRendered(t, helm, args...) {
			if o.GetKind() == "NetworkPolicy" {
				policies = append(policies, o)
			}
		}
		return policies
	}
	g.Expect(render()).To(BeEmpty(), "off by default")

	policies := render("--set", "networkPolicy.enabled=true")
	g.Expect(policies).To(HaveLen(1))
	np := &networkingv1.NetworkPolicy{}
	g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(policies[0].Object, np)).To(Succeed())
	g.Expect(np.Spec.Ingress).To(BeEmpty(), "no peers listed: nobody")
	g.Expect(np.Spec.PolicyTypes).To(ConsistOf(networkingv1.PolicyTypeIngress))

	policies = render("--set", "networkPolicy.enabled=true", "--set-json",
		`networkPolicy.metricsFrom=[{"namespaceSelector":{"matchLabels":{"kubernetes.io/metadata.name":"monitoring"}}}]`)
	g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(policies[0].Object, np)).To(Succeed())
	g.Expect(np.Spec.Ingress).To(HaveLen(1))
	g.Expect(np.Spec.Ingress[0].From).To(ConsistOf(networkingv1.NetworkPolicyPeer{
		NamespaceSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"kubernetes.io/metadata.name": "monitoring"}},
	}))
	g.Expect(np.Spec.Ingress[0].Ports).To(HaveLen(1))
	g.Expect(np.Spec.Ingress[0].Ports[0].Port.StrVal).To(Equal("metrics"))

	dep := &appsv1.Deployment{}
	for _, o := range decodeRendered(t, helm, "--show-only", "templates/deployment.yaml") {
		g.Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, dep)).To(Succeed())
	}
	g.Expect(np.Spec.PodSelector.MatchLabels).To(Equal(dep.Spec.Selector.MatchLabels), "it selects the operator's pods")
	g.Expect(dep.Spec.Template.Spec.Containers[0].Ports).To(ContainElement(HaveField("Name", "metrics")))
}

func decodeRendered(t *testing.T, helm string, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := run(context.Background(), helm, append([]string{"template", "t", chartDir}, args...)...)
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	objs, err := decodeAll(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	return objs
}
