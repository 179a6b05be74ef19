package controllers_test

import (
	"context"
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// TestTLSSecretsAreMountedAndRolled: through the real API server (which
// validates the projected volumes), the migrations Job and the API pods get
// the database CA, the client certificate and the trusted CA bundle as
// read-only files named by their variables; they wait until every
// referenced Secret and key exists; rotating the CA rolls the pods without
// migrating again.
func TestTLSSecretsAreMountedAndRolled(t *testing.T) {
	RegisterTestingT(t)
	ctx := context.Background()
	ns := newNamespace(t)
	const dbURL = "postgres://app@db/chat?sslmode=verify-full"
	Expect(k8s.Create(ctx, secret(ns, "db", map[string]string{"url": dbURL}))).To(Succeed())
	cb := chatBackend(ns, "chat", "registry.example.com/chat-apiserver:v1")
	cb.Spec.Database.TLS = &chatv1alpha1.DatabaseTLSSpec{
		CASecretRef:         &chatv1alpha1.SecretKeyRef{Name: "db-ca", Key: "ca.crt"},
		ClientCertSecretRef: &chatv1alpha1.LocalSecretRef{Name: "db-client"},
	}
	cb.Spec.TrustedCA = &chatv1alpha1.TrustedCASpec{SecretRef: chatv1alpha1.SecretKeyRef{Name: "corp-ca", Key: "bundle.pem"}}
	Expect(k8s.Create(ctx, cb)).To(Succeed())

	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonSecretNotFound,
		`Secret "db-ca" referenced by spec.database.tls.caSecretRef not found`)
	Expect(k8s.Create(ctx, secret(ns, "db-ca", map[string]string{"ca.crt": "CA v1"}))).To(Succeed())
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonSecretNotFound,
		`Secret "db-client" referenced by spec.database.tls.clientCertSecretRef not found`)
	Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "db-client"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{corev1.TLSCertKey: []byte("cert"), corev1.TLSPrivateKeyKey: []byte("key")}})).To(Succeed())
	Expect(k8s.Create(ctx, secret(ns, "corp-ca", map[string]string{"other.pem": "x"}))).To(Succeed())
	eventuallyConditionWith(t, ns, "chat", chatv1alpha1.ConditionReady, metav1.ConditionFalse, chatv1alpha1.ReasonSecretKeyNotFound,
		`Secret "corp-ca" has no key "bundle.pem" (referenced by spec.trustedCA.secretRef)`)
	var jobs batchv1.JobList
	Expect(k8s.List(ctx, &jobs)).To(Succeed())
	for _, j := range jobs.Items {
		Expect(j.Namespace).NotTo(Equal(ns), "no migration before every mounted Secret exists")
	}
	corp := &corev1.Secret{}
	Expect(k8s.Get(ctx, key(ns, "corp-ca"), corp)).To(Succeed())
	corp.Data["bundle.pem"] = []byte("bundle")
	Expect(k8s.Update(ctx, corp)).To(Succeed())

	job := &batchv1.Job{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, migrationJobName(cb, cb.Spec.Image, dbURL)), job) }, timeout, interval).Should(Succeed())
	expectTLSPod(job.Spec.Template.Spec)
	Expect(job.Spec.Template.Annotations).To(HaveKey(specs.AnnotationMountedSecretsHash))
	migrate(t, ns, cb, dbURL)

	dep := &appsv1.Deployment{}
	Eventually(func() error { return k8s.Get(ctx, key(ns, "chat"), dep) }, timeout, interval).Should(Succeed())
	expectTLSPod(dep.Spec.Template.Spec)
	before := dep.Spec.Template.Annotations[specs.AnnotationMountedSecretsHash]
	Expect(before).To(Equal(job.Spec.Template.Annotations[specs.AnnotationMountedSecretsHash]))
	envSecret := dep.Spec.Template.Spec.Containers[0].EnvFrom[0].SecretRef.Name

	ca := &corev1.Secret{}
	Expect(k8s.Get(ctx, key(ns, "db-ca"), ca)).To(Succeed())
	ca.Data["ca.crt"] = []byte("CA v2")
	Expect(k8s.Update(ctx, ca)).To(Succeed())
	Eventually(func(g Gomega) {
		g.Expect(k8s.Get(ctx, key(ns, "chat"), dep)).To(Succeed())
		g.Expect(dep.Spec.Template.Annotations[specs.AnnotationMountedSecretsHash]).NotTo(Equal(before), "a rotated CA rolls the pods")
	}, timeout, interval).Should(Succeed())
	Expect(dep.Spec.Template.Spec.Containers[0].EnvFrom[0].SecretRef.Name).To(Equal(envSecret), "same env Secret")
	Expect(getCB(Default, ns, "chat").Status.MigratedDatabase).To(Equal(specs.DatabaseFingerprint(map[string][]byte{"DATABASE_URL": []byte(dbURL)})),
		"a new CA is the same database: no migration")
	Expect(reconcileErrors(ns)).To(BeZero())
}

func expectTLSPod(pod corev1.PodSpec) {
	c := pod.Containers[0]
	ExpectWithOffset(1, c.VolumeMounts).To(ContainElements(
		corev1.VolumeMount{Name: "database-tls", MountPath: specs.DatabaseTLSDir, ReadOnly: true},
		corev1.VolumeMount{Name: "trusted-ca", MountPath: specs.TrustedCADir, ReadOnly: true}))
	expectEnv(c.Env, map[string]string{
		envvar.DatabaseSSLRootCert: specs.DatabaseTLSDir + "/ca.crt",
		envvar.DatabaseSSLKey:      specs.DatabaseTLSDir + "/tls.key",
		envvar.TrustedCADir:        specs.TrustedCADir,
	})
	ExpectWithOffset(1, pod.SecurityContext.FSGroup).NotTo(BeNil())
}

// TestTLSSpecValidation: the CRD refuses an empty tls block and user
// volumes or mounts in the operator's TLS places.
func TestTLSSpecValidation(t *testing.T) {
	ns := newNamespace(t)
	for name, tc := range map[string]struct {
		mutate  func(*chatv1alpha1.ChatBackend)
		message string
	}{
		"empty tls": {func(cb *chatv1alpha1.ChatBackend) { cb.Spec.Database.TLS = &chatv1alpha1.DatabaseTLSSpec{} },
			"spec.database.tls: Invalid value: 0: spec.database.tls in body should have at least 1 properties"},
		"reserved volume": {func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.Volumes = []corev1.Volume{{Name: "trusted-ca", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
		}, "volume names tmp, database-tls and trusted-ca are reserved"},
		"mount under /etc/chatbackend": {func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.VolumeMounts = []corev1.VolumeMount{{Name: "x", MountPath: "/etc/chatbackend/trusted-ca"}}
		}, "mount paths under /etc/chatbackend are reserved"},
		"client certificate without a name": {func(cb *chatv1alpha1.ChatBackend) {
			cb.Spec.Database.TLS = &chatv1alpha1.DatabaseTLSSpec{ClientCertSecretRef: &chatv1alpha1.LocalSecretRef{Name: "Not_A_Name"}}
		}, "secret name must be a lowercase DNS name"},
	} {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			cb := chatBackend(ns, "chat", "registry.example.com/chat-apiserver:v1")
			tc.mutate(cb)
			err := k8s.Create(context.Background(), cb)
			g.Expect(apierrors.IsInvalid(err)).To(BeTrue(), "want Invalid, got %v", err)
			g.Expect(err.Error()).To(ContainSubstring(tc.message))
		})
	}
}
