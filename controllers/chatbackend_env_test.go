package controllers_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
)

// TestIgnoredEnvIsReported: a spec.env entry the operator overrides (here
// DATABASE_URL, which the referenced Secret sets) is listed in
// status.ignoredEnv and named by a Warning Event instead of vanishing
// silently; the list empties when the entry goes.
func TestIgnoredEnvIsReported(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	Expect(k8s.Create(ctx, secret(ns, "db", map[string]string{"url": "postgres://db/chat"}))).To(Succeed())
	cb := chatBackend(ns, "chat", imageV1)
	cb.Spec.Env = []corev1.EnvVar{
		{Name: "HTTP_PROXY", Value: "http://proxy:3128"},
		{Name: envvar.DatabaseURL, Value: "postgres://elsewhere/chat"},
	}
	Expect(k8s.Create(ctx, cb)).To(Succeed())

	Eventually(func(g Gomega) []string { return getCB(g, ns, "chat").Status.IgnoredEnv }, timeout, interval).
		Should(Equal([]string{envvar.DatabaseURL}))
	eventuallyEvent(t, ns, "chat", chatv1alpha1.ReasonEnvIgnored, envvar.DatabaseURL)

	patchCB(ns, "chat", func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Env = cb.Spec.Env[:1] })
	Eventually(func(g Gomega) []string { return getCB(g, ns, "chat").Status.IgnoredEnv }, timeout, interval).Should(BeEmpty())
	Expect(reconcileErrors(ns)).To(BeZero())
}
