package charttest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/yaml"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
	"github.com/chatbackend/chatbackend/internal/testutil"
)

var crdsChartDir = filepath.Join(root, "charts", "chatbackend-operator-crds")

const (
	crdsRelease = "chatbackend-operator-crds"
	watchedNS   = "team-a"
	otherNS     = "team-b"
)

// TestHelmInstallNamespaceScoped installs the CRD with the
// chatbackend-operator-crds chart, then the operator with
// watchNamespaces=[team-a] and crds.install=false, and proves the scoped
// install cannot see other namespaces: its ServiceAccount may list
// ChatBackends, Deployments and Secrets in team-a and nowhere else, and
// the manager, run with the rendered flags under that ServiceAccount,
// reconciles the ChatBackend of team-a and leaves the one of team-b alone.
func TestHelmInstallNamespaceScoped(t *testing.T) {
	g := NewWithT(t)
	helm := helmBinary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	managerBin := filepath.Join(t.TempDir(), "manager")
	built := make(chan error, 1)
	go func() { built <- goBuild(ctx, managerBin) }()

	env, admin, adminKubeconfig := startAPIServer(t)
	for _, ns := range []string{watchedNS, otherNS} {
		g.Expect(admin.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
	}

	// 1. The CRD from its own chart: a Helm-managed template, so `helm
	// upgrade` upgrades it (Helm never touches a chart's crds/ after the
	// install), and `helm uninstall` keeps it. An older release of the
	// chart (the same CRD with one description changed) is installed,
	// then upgraded to this one.
	older := olderCRDsChart(t)
	out, err := run(ctx, helm, "install", crdsRelease, older, "--namespace", namespace, "--create-namespace",
		"--kubeconfig", adminKubeconfig)
	g.Expect(err).NotTo(HaveOccurred(), "helm install the CRDs chart:\n%s", out)
	crdText := func(g Gomega) string {
		var crd apiextensionsv1.CustomResourceDefinition
		g.Expect(admin.Get(ctx, client.ObjectKey{Name: crdName}, &crd)).To(Succeed())
		g.Expect(crdEstablished(&crd)).To(BeTrue(), "CRD %s established", crdName)
		g.Expect(crd.Annotations).To(HaveKeyWithValue("meta.helm.sh/release-name", crdsRelease), "Helm manages it")
		g.Expect(crd.Annotations).To(HaveKeyWithValue("helm.sh/resource-policy", "keep"))
		b, err := json.Marshal(crd.Spec)
		g.Expect(err).NotTo(HaveOccurred())
		return string(b)
	}
	g.Eventually(crdText).WithTimeout(wait).Should(ContainSubstring(olderMark))
	out, err = run(ctx, helm, "upgrade", crdsRelease, crdsChartDir, "--namespace", namespace, "--kubeconfig", adminKubeconfig)
	g.Expect(err).NotTo(HaveOccurred(), "helm upgrade the CRDs chart:\n%s", out)
	g.Eventually(crdText).WithTimeout(wait).ShouldNot(ContainSubstring(olderMark), "helm upgrade upgraded the CRD")

	// 2. The operator, scoped to team-a, without a CRD of its own.
	out, err = run(ctx, helm, "install", release, chartDir, "--namespace", namespace, "--kubeconfig", adminKubeconfig,
		"--set", "crds.install=false", "--set-json", `watchNamespaces=["`+watchedNS+`"]`, "--set", "apiPodRunAsUser=none")
	g.Expect(err).NotTo(HaveOccurred(), "helm install scoped:\n%s", out)
	var dep appsv1.Deployment
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: namespace, Name: release}, &dep)).To(Succeed())
	container := dep.Spec.Template.Spec.Containers[0]
	g.Expect(container.Args).To(ContainElements("--watch-namespaces="+watchedNS, "--pod-run-as-user=none"))

	// 3. What the operator's ServiceAccount may see.
	saName := dep.Spec.Template.Spec.ServiceAccountName
	saUser, err := env.AddUser(envtest.User{
		Name:   "system:serviceaccount:" + namespace + ":" + saName,
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace},
	}, nil)
	g.Expect(err).NotTo(HaveOccurred())
	saClient, err := client.New(saUser.Config(), client.Options{Scheme: scheme()})
	g.Expect(err).NotTo(HaveOccurred())
	for _, list := range []client.ObjectList{&chatv1alpha1.ChatBackendList{}, &appsv1.DeploymentList{}, &corev1.SecretList{}, &batchv1.JobList{}} {
		g.Expect(saClient.List(ctx, list, client.InNamespace(watchedNS))).To(Succeed(), "%T in the watched namespace", list)
		err := saClient.List(ctx, list, client.InNamespace(otherNS))
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%T in another namespace: %v", list, err)
		err = saClient.List(ctx, list)
		g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%T cluster-wide: %v", list, err)
	}

	// 4. The manager with the Deployment's arguments, as that
	// ServiceAccount: it starts (its cache lists only team-a) and
	// reconciles only there.
	g.Expect(<-built).To(Succeed())
	probeAddr := testutil.FreeAddr(t)
	args := adaptArgs(t, container.Args, map[string]string{
		"--health-probe-bind-address": probeAddr,
		"--metrics-bind-address":      "0",
		"--leader-elect":              "false",
	})
	// Notice the prometheus-operator CRDs installed below within seconds.
	args = append(args, "--monitoring-recheck-interval=1s")
	logs := startManager(t, managerBin, args, writeKubeconfig(t, saUser, "operator.kubeconfig"))
	g.Eventually(func() (int, error) { return httpStatus("http://" + probeAddr + "/readyz") }).
		WithTimeout(wait).Should(Equal(200), "manager readyz; logs:\n%s", logs)

	// The ChatBackends first, their Secret a moment later: the operator
	// rechecks a missing Secret only every 2 minutes, so the reconcile
	// within the minute below comes from the (metadata-only, scoped)
	// Secret watch.
	for _, ns := range []string{watchedNS, otherNS} {
		g.Expect(admin.Create(ctx, &chatv1alpha1.ChatBackend{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "chat"},
			Spec: chatv1alpha1.ChatBackendSpec{
				Auth:     chatv1alpha1.AuthSpec{BetterAuthURL: "https://auth.example.com"},
				Database: chatv1alpha1.DatabaseSpec{URLSecretRef: chatv1alpha1.SecretKeyRef{Name: "db", Key: "url"}},
			},
		})).To(Succeed())
	}
	g.Eventually(func(g Gomega) {
		cb := getChatBackend(g, ctx, admin, client.ObjectKey{Namespace: watchedNS, Name: "chat"})
		expectCondition(g, cb, chatv1alpha1.ConditionReady, metav1.ConditionFalse, "")
	}).WithTimeout(wait).Should(Succeed(), "operator logs:\n%s", logs)
	for _, ns := range []string{watchedNS, otherNS} {
		g.Expect(admin.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db"},
			StringData: map[string]string{"url": "postgres://db/chat"}})).To(Succeed())
	}
	ownImage := "ghcr.io/chatbackend/chatbackend:" + chartAppVersion(t)
	named := &chatv1alpha1.ChatBackend{ObjectMeta: metav1.ObjectMeta{Name: "chat"}}
	jobName := specs.MigrationJobName(named, ownImage, specs.DatabaseFingerprint(map[string][]byte{"DATABASE_URL": []byte("postgres://db/chat")}))
	g.Eventually(func(g Gomega) {
		cb := getChatBackend(g, ctx, admin, client.ObjectKey{Namespace: watchedNS, Name: "chat"})
		g.Expect(cb.Status.ObservedGeneration).To(Equal(cb.Generation))
		var job batchv1.Job
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: watchedNS, Name: jobName}, &job)).To(Succeed())
		// apiPodRunAsUser=none: the platform assigns the user.
		g.Expect(job.Spec.Template.Spec.SecurityContext.RunAsUser).To(BeNil())
		g.Expect(job.Spec.Template.Spec.SecurityContext.RunAsNonRoot).To(Equal(ptr.To(true)))
	}).WithTimeout(wait).Should(Succeed(), "operator logs:\n%s", logs)
	// team-a converged, and the reconciles of both would have run side by
	// side (--max-concurrent-reconciles): team-b has been ignored, and
	// stays so.
	g.Consistently(func(g Gomega) {
		cb := getChatBackend(g, ctx, admin, client.ObjectKey{Namespace: otherNS, Name: "chat"})
		g.Expect(cb.Status.ObservedGeneration).To(BeZero(), "a ChatBackend outside the watched namespaces is left alone")
		g.Expect(apierrors.IsNotFound(admin.Get(ctx, client.ObjectKey{Namespace: otherNS, Name: jobName}, &batchv1.Job{}))).To(BeTrue())
	}).WithTimeout(3*time.Second).Should(Succeed(), "operator logs:\n%s", logs)

	// prometheus-operator arrives: the poller (discovery, no RBAC) notices
	// it, and the monitoring watches start in the watched namespace only.
	_, err = envtest.InstallCRDs(env.Config, envtest.CRDInstallOptions{
		Paths: []string{filepath.Join(root, "config", "crd", "external")}, ErrorIfPathMissing: true,
	})
	g.Expect(err).NotTo(HaveOccurred())
	g.Eventually(func(g Gomega) {
		cb := getChatBackend(g, ctx, admin, client.ObjectKey{Namespace: watchedNS, Name: "chat"})
		expectCondition(g, cb, chatv1alpha1.ConditionMonitoringReady, metav1.ConditionTrue, chatv1alpha1.ReasonMonitoringReconciled)
		g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: watchedNS, Name: "chat"}, monitoringObject("ServiceMonitor"))).To(Succeed())
	}).WithTimeout(wait).Should(Succeed(), "operator logs:\n%s", logs)
	// Now that every resource of the rules is served, the API server can
	// say which are namespaced.
	expectRulesScoped(t, ctx, admin)
	g.Expect(getChatBackend(g, ctx, admin, client.ObjectKey{Namespace: otherNS, Name: "chat"}).Status.ObservedGeneration).To(BeZero())
	g.Expect(strings.ToLower(logs.buf.String())).NotTo(ContainSubstring("forbidden"),
		"nothing the scoped operator does needs more than its Roles")

	// 5. Uninstalling both releases keeps the CRD and the ChatBackends.
	for _, r := range []string{release, crdsRelease} {
		out, err := run(ctx, helm, "uninstall", r, "--namespace", namespace, "--kubeconfig", adminKubeconfig)
		g.Expect(err).NotTo(HaveOccurred(), "helm uninstall %s:\n%s", r, out)
	}
	g.Expect(admin.Get(ctx, client.ObjectKey{Name: crdName}, &apiextensionsv1.CustomResourceDefinition{})).To(Succeed())
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: watchedNS, Name: "chat"}, &chatv1alpha1.ChatBackend{})).To(Succeed())
}

// expectRulesScoped: in a scoped install the Role of the watched namespace
// holds exactly the generated rules on namespaced resources, the
// ClusterRole exactly those on cluster-scoped ones (which a Role cannot
// grant), as the API server's discovery classifies them; no Role is made
// in another namespace.
func expectRulesScoped(t *testing.T, ctx context.Context, admin client.Client) {
	t.Helper()
	g := NewWithT(t)
	name := release + "-manager"
	var role rbacv1.Role
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: watchedNS, Name: name}, &role)).To(Succeed())
	g.Expect(apierrors.IsNotFound(admin.Get(ctx, client.ObjectKey{Namespace: otherNS, Name: name}, &rbacv1.Role{}))).To(BeTrue())
	var clusterRole rbacv1.ClusterRole
	g.Expect(admin.Get(ctx, client.ObjectKey{Name: name}, &clusterRole)).To(Succeed())
	var binding rbacv1.RoleBinding
	g.Expect(admin.Get(ctx, client.ObjectKey{Namespace: watchedNS, Name: name}, &binding)).To(Succeed())
	g.Expect(binding.RoleRef).To(Equal(rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name}))

	namespaced := func(group, resource string) bool {
		resource, _, _ = strings.Cut(resource, "/") // a subresource has its resource's scope
		gvk, err := admin.RESTMapper().KindFor(schema.GroupVersionResource{Group: group, Resource: resource})
		g.Expect(err).NotTo(HaveOccurred(), "%s/%s is served", group, resource)
		m, err := admin.RESTMapper().RESTMapping(gvk.GroupKind(), gvk.Version)
		g.Expect(err).NotTo(HaveOccurred())
		return m.Scope.Name() == meta.RESTScopeNameNamespace
	}
	for _, r := range role.Rules {
		for _, group := range r.APIGroups {
			for _, res := range r.Resources {
				g.Expect(namespaced(group, res)).To(BeTrue(), "the Role grants %s/%s, which is cluster-scoped", group, res)
			}
		}
	}
	for _, r := range clusterRole.Rules {
		for _, group := range r.APIGroups {
			for _, res := range r.Resources {
				g.Expect(namespaced(group, res)).To(BeFalse(), "the ClusterRole of a scoped install grants the namespaced %s/%s", group, res)
			}
		}
	}
	g.Expect(append(role.Rules, clusterRole.Rules...)).To(ConsistOf(generatedRules(t)), "together, exactly the generated rules")
}

func generatedRules(t *testing.T) []rbacv1.PolicyRule {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(chartDir, "files", "manager-role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var role rbacv1.ClusterRole
	if err := yaml.Unmarshal(b, &role); err != nil {
		t.Fatal(err)
	}
	return role.Rules
}

// olderMark is what olderCRDsChart puts in the CRD.
const olderMark = "OLDER-CHART-RELEASE"

// olderCRDsChart is a copy of the chatbackend-operator-crds chart whose
// CRD differs from today's in the first description.
func olderCRDsChart(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "chatbackend-operator-crds")
	if err := os.CopyFS(dir, os.DirFS(crdsChartDir)); err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "files", "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRD in the copied chart: %v", err)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(b), "description: ", "description: "+olderMark+" ", 1)
	if changed == string(b) {
		t.Fatal("the CRD has no description to change")
	}
	if err := os.WriteFile(files[0], []byte(changed), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
