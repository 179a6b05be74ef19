package controllers_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// TestCacheHoldsOnlyTheOperatorsObjects: in a cluster shared with other
// workloads the operator's cache holds its own children, not every
// Deployment of the cluster; Secret metadata is cached without the
// annotations that can carry a Secret's values; managedFields are not
// cached at all. Reconciling still works, foreign objects included
// (TestForeignObjectsAreLeftAlone checks those are still seen).
func TestCacheHoldsOnlyTheOperatorsObjects(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)

	labels := map[string]string{"app": "other"}
	other := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other"},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "registry.example.com/other"}}},
			},
		},
	}
	Expect(k8s.Create(ctx, other)).To(Succeed())
	// What `kubectl apply -f secret.yaml` leaves: the data again, in an
	// annotation.
	applied := secret(ns, "applied", map[string]string{"password": "hunter2"})
	applied.Annotations = map[string]string{
		"kubectl.kubernetes.io/last-applied-configuration": `{"apiVersion":"v1","data":{"password":"aHVudGVyMg=="},"kind":"Secret"}`,
	}
	Expect(k8s.Create(ctx, applied)).To(Succeed())

	createMigrated(t, ns, "postgres://db/chat")
	rollOut(t, ns, "chat", 2)
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionTrue, chatv1alpha1.ReasonReady)

	// The cache has caught up with the operator's Deployment, created after
	// the other one: had it listed all Deployments, it would hold both.
	cached := &appsv1.Deployment{}
	Eventually(func() error { return mgrCache.Get(ctx, key(ns, "chat"), cached) }, timeout, interval).Should(Succeed())
	Expect(cached.ManagedFields).To(BeEmpty(), "managedFields are stripped from the cache")
	stored := &appsv1.Deployment{}
	Expect(k8s.Get(ctx, key(ns, "chat"), stored)).To(Succeed())
	Expect(stored.ManagedFields).NotTo(BeEmpty(), "the check above can fail: the API server keeps managedFields")

	Expect(k8s.Get(ctx, key(ns, "other"), &appsv1.Deployment{})).To(Succeed())
	err := mgrCache.Get(ctx, key(ns, "other"), &appsv1.Deployment{})
	Expect(apierrors.IsNotFound(err)).To(BeTrue(), "an unrelated Deployment is cached: %v", err)

	// Secret metadata is cached (the watches need it) but never an
	// annotation, so no value.
	Eventually(func(g Gomega) {
		var list metav1.PartialObjectMetadataList
		list.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("SecretList"))
		g.Expect(mgrCache.List(ctx, &list, client.InNamespace(ns))).To(Succeed())
		names := map[string]bool{}
		for _, s := range list.Items {
			names[s.Name] = true
			g.Expect(s.Annotations).To(BeEmpty(), "Secret %s cached with annotations", s.Name)
			g.Expect(s.ManagedFields).To(BeEmpty(), "Secret %s cached with managedFields", s.Name)
		}
		g.Expect(names).To(HaveKey("applied"))
		g.Expect(names).To(HaveKey("db"))
	}, timeout, interval).Should(Succeed())
	Expect(reconcileErrors(ns)).To(BeZero())
}

// TestUnchangedStatusIsNotWritten: a reconcile that finds nothing new sends
// no status request: across a fleet the rechecks would otherwise make a
// steady load of empty patches.
func TestUnchangedStatusIsNotWritten(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	createMigrated(t, ns, "postgres://db/chat")
	rollOut(t, ns, "chat", 2)
	eventuallyCondition(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionTrue, chatv1alpha1.ReasonReady)
	writes := statusWriteCount(ns)
	Expect(writes).NotTo(BeZero(), "the counting works")

	// Each deletion makes a reconcile (the Service comes back), and the
	// 1 s rechecks of the suite make more; none changes the status.
	for range 2 {
		svc := &corev1.Service{}
		Expect(k8s.Get(ctx, key(ns, "chat"), svc)).To(Succeed())
		Expect(k8s.Delete(ctx, svc, &client.DeleteOptions{Preconditions: &metav1.Preconditions{UID: ptr.To(svc.UID)}})).To(Succeed())
		Eventually(func(g Gomega) {
			back := &corev1.Service{}
			g.Expect(k8s.Get(ctx, key(ns, "chat"), back)).To(Succeed())
			g.Expect(back.UID).NotTo(Equal(svc.UID))
		}, timeout, interval).Should(Succeed())
	}
	Consistently(func() int64 { return statusWriteCount(ns) }, 1500*time.Millisecond, 100*time.Millisecond).
		Should(Equal(writes), "status requests without a status change")
}

// TestUnchangedSecretsAreNotReadAgain: a reconcile whose referenced Secrets
// have not changed since the last one (their resourceVersions in the
// metadata cache say so) reads no Secret from the API server and applies no
// env Secret; a changed Secret is read again and rolls the pods, and a hand
// edit or the deletion of the env Secret is still undone.
func TestUnchangedSecretsAreNotReadAgain(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	cb := createMigrated(t, ns, "postgres://app:old@db/chat")
	Eventually(func() error { return k8s.Get(ctx, key(ns, "chat"), &appsv1.Deployment{}) }, timeout, interval).Should(Succeed())

	// Each touch reconciles the ChatBackend (the first ones may still
	// race the cache's view of the env Secret just made, and read).
	touches := 0
	Eventually(func(g Gomega) {
		reads, applies, reconciles := childRequestCount(ns, http.MethodGet, "secrets"), childRequestCount(ns, http.MethodPatch, "secrets"), reconcileCount(ns)
		touches++
		touch(g, ns, "chat", touches)
		g.Eventually(func() int64 { return reconcileCount(ns) }, timeout, interval).Should(BeNumerically(">", reconciles))
		g.Consistently(func() int64 { return childRequestCount(ns, http.MethodGet, "secrets") }, 500*time.Millisecond, 50*time.Millisecond).
			Should(Equal(reads), "a reconcile with unchanged Secrets read a Secret")
		g.Expect(childRequestCount(ns, http.MethodPatch, "secrets")).To(Equal(applies), "a reconcile with unchanged Secrets applied the env Secret")
	}, timeout, interval).Should(Succeed())

	// A new value is read and reaches the pods.
	reads := childRequestCount(ns, http.MethodGet, "secrets")
	db := &corev1.Secret{}
	Expect(k8s.Get(ctx, key(ns, "db"), db)).To(Succeed())
	db.Data["url"] = []byte("postgres://app:new@db/chat")
	Expect(k8s.Update(ctx, db)).To(Succeed())
	newEnv := envSecretName(cb, "postgres://app:new@db/chat")
	Eventually(func(g Gomega) string {
		dep := &appsv1.Deployment{}
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		return dep.Spec.Template.Spec.Containers[0].EnvFrom[0].SecretRef.Name
	}, timeout, interval).Should(Equal(newEnv))
	Expect(childRequestCount(ns, http.MethodGet, "secrets")).To(BeNumerically(">", reads))

	// The env Secret edited by hand, then deleted: put back both times.
	env := &corev1.Secret{}
	Expect(k8s.Get(ctx, key(ns, newEnv), env)).To(Succeed())
	env.Data["DATABASE_URL"] = []byte("postgres://evil@elsewhere/chat")
	Expect(k8s.Update(ctx, env)).To(Succeed())
	Eventually(func(g Gomega) string {
		g.Expect(k8s.Get(ctx, key(ns, newEnv), env)).To(Succeed())
		return string(env.Data["DATABASE_URL"])
	}, timeout, interval).Should(Equal("postgres://app:new@db/chat"))
	uid := env.UID
	Expect(k8s.Delete(ctx, env)).To(Succeed())
	Eventually(func(g Gomega) {
		back := &corev1.Secret{}
		g.Expect(k8s.Get(ctx, key(ns, newEnv), back)).To(Succeed())
		g.Expect(back.UID).NotTo(Equal(uid))
		g.Expect(string(back.Data["DATABASE_URL"])).To(Equal("postgres://app:new@db/chat"))
	}, timeout, interval).Should(Succeed())
	Expect(reconcileErrors(ns)).To(BeZero())
}

// touch sets an annotation of no meaning to the operator, to the n-th
// value: a reconcile of the unchanged ChatBackend.
func touch(g Gomega, ns, name string, n int) {
	cb := getCB(g, ns, name)
	metav1.SetMetaDataAnnotation(&cb.ObjectMeta, "test.chatbackend.io/touched", strconv.Itoa(n))
	g.Expect(k8s.Update(context.Background(), cb)).To(Succeed())
}
