package main

import (
	"context"
	"flag"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/envtest"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
	"github.com/chatbackend/chatbackend/internal/testutil"
)

// TestPodRunAsUserFlag: --pod-run-as-user takes auto, none or a UID above
// 0, and refuses anything else before the manager starts.
func TestPodRunAsUserFlag(t *testing.T) {
	g := NewWithT(t)
	parse := func(args ...string) (*options, error) {
		fs := flag.NewFlagSet("manager", flag.ContinueOnError)
		o := bindFlags(fs)
		return o, fs.Parse(args)
	}
	o, err := parse()
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(o.podUser.String()).To(Equal("auto"), "detection by default")
	for arg, want := range map[string]string{"auto": "auto", "none": "none", "1000680000": "1000680000"} {
		o, err := parse("--pod-run-as-user=" + arg)
		g.Expect(err).NotTo(HaveOccurred(), arg)
		g.Expect(o.podUser.String()).To(Equal(want), arg)
	}
	for _, bad := range []string{"0", "-1", "root", ""} {
		_, err := parse("--pod-run-as-user=" + bad)
		g.Expect(err).To(MatchError(ContainSubstring("want auto, none or a UID above 0")), bad)
	}
}

// TestPodRunAsUserDetection: "auto" is 65532 on a plain API server and
// "platform assigned" (no runAsUser) once the API group of OpenShift's
// SecurityContextConstraints is served; either way the API and migrations
// pods are admitted into a namespace that enforces the restricted Pod
// Security Standard (the API server's own PodSecurity admission judges).
func TestPodRunAsUserDetection(t *testing.T) {
	g := NewWithT(t)
	ctx := context.Background()
	env, cfg, err := testutil.StartEnvtest(testutil.Envtest{Root: "."})
	g.Expect(err).NotTo(HaveOccurred())
	t.Cleanup(func() { _ = env.Stop() })
	cs, err := kubernetes.NewForConfig(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	_, err = cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name:   "restricted",
		Labels: map[string]string{"pod-security.kubernetes.io/enforce": "restricted"},
	}}, metav1.CreateOptions{})
	g.Expect(err).NotTo(HaveOccurred())

	// admitted creates (dry run) the pods the operator would make for u.
	admitted := func(u specs.PodUser) {
		t.Helper()
		cb := &chatv1alpha1.ChatBackend{ObjectMeta: metav1.ObjectMeta{Namespace: "restricted", Name: "chat"}}
		dep := specs.Deployment(cb, "reg/chat:v1", "hash")
		job := specs.MigrationJob(cb, "reg/chat:v1", "hash", "db")
		// An ingest run with a git source's credentials mounted.
		cb.Spec.Ingest = &chatv1alpha1.IngestSpec{Sources: []chatv1alpha1.IngestSource{{Name: "docs", Git: &chatv1alpha1.GitSource{
			URL: "https://git.example.com/docs.git", SiteURL: "https://docs.example.com/", SecretRef: &chatv1alpha1.LocalSecretRef{Name: "git"}}}}}
		ingest, err := specs.IngestCronJob(cb, "reg/chat:v1", "hash")
		g.Expect(err).NotTo(HaveOccurred())
		for _, tmpl := range []corev1.PodTemplateSpec{dep.Spec.Template, job.Spec.Template, ingest.Spec.JobTemplate.Spec.Template} {
			specs.SetPodUser(&tmpl.Spec, u)
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "restricted", GenerateName: "chat-"}, Spec: tmpl.Spec}
			_, err := cs.CoreV1().Pods("restricted").Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			g.Expect(err).NotTo(HaveOccurred(), "restricted PSS admits the pod of %+v", u)
			g.Expect(tmpl.Spec.SecurityContext.RunAsNonRoot).To(Equal(ptr.To(true)))
		}
	}
	// The check can fail: a pod that may escalate is refused.
	cb := &chatv1alpha1.ChatBackend{ObjectMeta: metav1.ObjectMeta{Namespace: "restricted", Name: "chat"}}
	bad := specs.Deployment(cb, "reg/chat:v1", "hash").Spec.Template.Spec
	bad.Containers[0].SecurityContext.AllowPrivilegeEscalation = ptr.To(true)
	_, err = cs.CoreV1().Pods("restricted").Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{GenerateName: "bad-"}, Spec: bad},
		metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	g.Expect(apierrors.IsForbidden(err)).To(BeTrue(), "PodSecurity admission is on: %v", err)

	var auto podUserFlag
	u, err := auto.resolve(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u).To(Equal(specs.PodUser{UID: specs.NonRootUID}), "not OpenShift: distroless' nonroot")
	admitted(u)

	// OpenShift: its SecurityContextConstraints' group is served.
	_, err = envtest.InstallCRDs(cfg, envtest.CRDInstallOptions{CRDs: []*apiextensionsv1.CustomResourceDefinition{{
		ObjectMeta: metav1.ObjectMeta{Name: "securitycontextconstraints.security.openshift.io"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{
			Group: "security.openshift.io",
			Names: apiextensionsv1.CustomResourceDefinitionNames{
				Plural: "securitycontextconstraints", Singular: "securitycontextconstraints",
				Kind: "SecurityContextConstraints", ListKind: "SecurityContextConstraintsList",
			},
			Scope: apiextensionsv1.ClusterScoped,
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{
					Type: "object", XPreserveUnknownFields: ptr.To(true),
				}},
			}},
		},
	}}})
	g.Expect(err).NotTo(HaveOccurred())
	u, err = auto.resolve(cfg)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(u).To(Equal(specs.PodUser{PlatformAssigned: true}), "OpenShift assigns the UID")
	admitted(u)

	// An explicit choice is not second-guessed.
	var explicit podUserFlag
	g.Expect(explicit.Set("1000")).To(Succeed())
	g.Expect(explicit.resolve(cfg)).To(Equal(specs.PodUser{UID: 1000}))
	admitted(specs.PodUser{UID: 1000})
}
