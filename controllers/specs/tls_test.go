package specs_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

func withTLS() *chatv1alpha1.ChatBackend {
	cb := minimal()
	cb.Spec.Database.TLS = &chatv1alpha1.DatabaseTLSSpec{
		CASecretRef:         &chatv1alpha1.SecretKeyRef{Name: "db-ca", Key: "root.pem"},
		ClientCertSecretRef: &chatv1alpha1.LocalSecretRef{Name: "db-client"},
	}
	cb.Spec.TrustedCA = &chatv1alpha1.TrustedCASpec{SecretRef: chatv1alpha1.SecretKeyRef{Name: "corp-ca", Key: "bundle.pem"}}
	return cb
}

// TestTLSFilesAreMounted: the API pods and the migrations pod get the
// database's CA and client certificate in one read-only directory, the
// trusted CA bundle in another, the variables naming them, and an fsGroup
// that lets the non-root user read the 0440 key.
func TestTLSFilesAreMounted(t *testing.T) {
	cb := withTLS()
	pods := map[string]corev1.PodSpec{
		"API":        specs.Deployment(cb, "reg/chat:v1", "h").Spec.Template.Spec,
		"migrations": specs.MigrationJob(cb, "reg/chat:v1", "h", "db").Spec.Template.Spec,
	}
	for name, pod := range pods {
		t.Run(name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(pod.Volumes).To(ContainElement(corev1.Volume{Name: "database-tls", VolumeSource: corev1.VolumeSource{
				Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr.To[int32](0o444), Sources: []corev1.VolumeProjection{
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "db-ca"},
						Items: []corev1.KeyToPath{{Key: "root.pem", Path: "ca.crt", Mode: ptr.To[int32](0o444)}}}},
					{Secret: &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "db-client"},
						Items: []corev1.KeyToPath{
							{Key: "tls.crt", Path: "tls.crt", Mode: ptr.To[int32](0o444)},
							{Key: "tls.key", Path: "tls.key", Mode: ptr.To[int32](0o440)},
						}}},
				}},
			}}))
			g.Expect(pod.Volumes).To(ContainElement(corev1.Volume{Name: "trusted-ca", VolumeSource: corev1.VolumeSource{
				Secret: &corev1.SecretVolumeSource{SecretName: "corp-ca", DefaultMode: ptr.To[int32](0o444),
					Items: []corev1.KeyToPath{{Key: "bundle.pem", Path: "ca.crt"}}},
			}}))
			c := pod.Containers[0]
			g.Expect(c.VolumeMounts).To(ContainElements(
				corev1.VolumeMount{Name: "database-tls", MountPath: "/etc/chatbackend/database-tls", ReadOnly: true},
				corev1.VolumeMount{Name: "trusted-ca", MountPath: "/etc/chatbackend/trusted-ca", ReadOnly: true}))
			env := envMap(c.Env)
			g.Expect(env).To(HaveKeyWithValue(envvar.DatabaseSSLMode, "verify-full"))
			g.Expect(env).To(HaveKeyWithValue(envvar.DatabaseSSLRootCert, "/etc/chatbackend/database-tls/ca.crt"))
			g.Expect(env).To(HaveKeyWithValue(envvar.DatabaseSSLCert, "/etc/chatbackend/database-tls/tls.crt"))
			g.Expect(env).To(HaveKeyWithValue(envvar.DatabaseSSLKey, "/etc/chatbackend/database-tls/tls.key"))
			g.Expect(env).To(HaveKeyWithValue(envvar.TrustedCADir, "/etc/chatbackend/trusted-ca"))
			g.Expect(pod.SecurityContext.FSGroup).To(Equal(pod.SecurityContext.RunAsGroup), "the key's group is the pod's")
			g.Expect(pod.SecurityContext.FSGroup).NotTo(BeNil())
		})
	}
}

// TestTLSOnlyWhatIsReferenced: a CA alone mounts the CA, sets no client
// certificate variables and no fsGroup; no TLS at all leaves the pods as
// they were (an operator upgrade must not roll them).
func TestTLSOnlyWhatIsReferenced(t *testing.T) {
	g := NewWithT(t)
	cb := minimal()
	cb.Spec.Database.TLS = &chatv1alpha1.DatabaseTLSSpec{CASecretRef: &chatv1alpha1.SecretKeyRef{Name: "db-ca", Key: "ca.crt"}}
	pod := specs.Deployment(cb, "reg/chat:v1", "h").Spec.Template.Spec
	env := envMap(pod.Containers[0].Env)
	g.Expect(env).To(HaveKey(envvar.DatabaseSSLRootCert))
	g.Expect(env).NotTo(HaveKey(envvar.DatabaseSSLCert))
	g.Expect(env).NotTo(HaveKey(envvar.DatabaseSSLKey))
	g.Expect(env).NotTo(HaveKey(envvar.TrustedCADir))
	g.Expect(pod.SecurityContext.FSGroup).To(BeNil())

	plain := specs.Deployment(minimal(), "reg/chat:v1", "h")
	g.Expect(plain.Spec.Template.Spec.Volumes).To(HaveLen(1), "only /tmp")
	for _, e := range plain.Spec.Template.Spec.Containers[0].Env {
		g.Expect(e.Name).NotTo(HavePrefix("PGSSL"))
		g.Expect(e.Name).NotTo(Equal(envvar.TrustedCADir))
	}
	tmpl := plain.Spec.Template
	specs.SetMountedSecretsHash(&tmpl, "")
	g.Expect(tmpl.Annotations).NotTo(HaveKey(specs.AnnotationMountedSecretsHash))
	specs.SetMountedSecretsHash(&tmpl, "abc")
	g.Expect(tmpl.Annotations).To(HaveKeyWithValue(specs.AnnotationMountedSecretsHash, "abc"))
}

// TestMountedSecrets: every Secret mounted as files is listed with the keys
// the pods need, and indexed with the env Secrets' references, so that its
// change reconciles (and rolls) the ChatBackend.
func TestMountedSecrets(t *testing.T) {
	g := NewWithT(t)
	cb := withTLS()
	g.Expect(specs.MountedSecrets(&cb.Spec)).To(Equal([]specs.MountedSecret{
		{Field: "spec.database.tls.caSecretRef", Name: "db-ca", Keys: []string{"root.pem"}},
		{Field: "spec.database.tls.clientCertSecretRef", Name: "db-client", Keys: []string{"tls.crt", "tls.key"}},
		{Field: "spec.trustedCA.secretRef", Name: "corp-ca", Keys: []string{"bundle.pem"}},
	}))
	g.Expect(specs.ReferencedSecretNames(&cb.Spec)).To(Equal([]string{"corp-ca", "db", "db-ca", "db-client"}))
	g.Expect(specs.MountedSecrets(&minimal().Spec)).To(BeEmpty())
}
