package specs_test

import (
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// TestSetPodUser: the API and migrations pods run as 65532 by default, as
// the chosen UID, or as whoever the platform assigns (OpenShift), and in
// every case keep the rest of the restricted profile. (TestPodRunAsUserDetection
// in the repository root has the API server's PodSecurity admission judge
// them.)
func TestSetPodUser(t *testing.T) {
	cases := []struct {
		name    string
		user    specs.PodUser
		wantUID *int64
	}{
		{"default", specs.PodUser{}, ptr.To(specs.NonRootUID)},
		{"a UID", specs.PodUser{UID: 1000680000}, ptr.To[int64](1000680000)},
		{"platform assigned", specs.PodUser{PlatformAssigned: true}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			ingest, err := specs.IngestCronJob(withIngest(), "reg/chat:v1", "h")
			g.Expect(err).NotTo(HaveOccurred())
			pods := map[string]*corev1.PodSpec{
				"Deployment": &specs.Deployment(minimal(), "reg/chat:v1", "h").Spec.Template.Spec,
				"Job":        &specs.MigrationJob(minimal(), "reg/chat:v1", "h", "db").Spec.Template.Spec,
				"CronJob":    &ingest.Spec.JobTemplate.Spec.Template.Spec,
			}
			for kind, pod := range pods {
				specs.SetPodUser(pod, tc.user)
				sc := pod.SecurityContext
				g.Expect(sc.RunAsUser).To(Equal(tc.wantUID), kind)
				g.Expect(sc.RunAsGroup).To(Equal(tc.wantUID), kind)
				g.Expect(sc.RunAsNonRoot).To(Equal(ptr.To(true)), kind)
				g.Expect(sc.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault), kind)
				for _, c := range pod.Containers {
					g.Expect(c.SecurityContext.RunAsUser).To(BeNil(), "%s: the pod's user applies to every container", kind)
					g.Expect(c.SecurityContext.RunAsNonRoot).To(Equal(ptr.To(true)), kind)
					g.Expect(c.SecurityContext.AllowPrivilegeEscalation).To(Equal(ptr.To(false)), kind)
					g.Expect(c.SecurityContext.Capabilities.Drop).To(Equal([]corev1.Capability{"ALL"}), kind)
				}
			}
		})
	}
}

// TestSetPodUserFSGroup: a mounted client key is readable through the
// pod's fsGroup, which follows the chosen UID and is left to the platform
// with it (OpenShift refuses a fixed fsGroup outside the namespace's range).
func TestSetPodUserFSGroup(t *testing.T) {
	g := NewWithT(t)
	cb := minimal()
	cb.Spec.Database.TLS = &chatv1alpha1.DatabaseTLSSpec{
		ClientCertSecretRef: &chatv1alpha1.LocalSecretRef{Name: "db-client"},
	}
	for _, tc := range []struct {
		user specs.PodUser
		want *int64
	}{
		{specs.PodUser{}, ptr.To(specs.NonRootUID)},
		{specs.PodUser{UID: 1000680000}, ptr.To[int64](1000680000)},
		{specs.PodUser{PlatformAssigned: true}, nil},
	} {
		pod := specs.Deployment(cb, "reg/chat:v1", "h").Spec.Template.Spec
		specs.SetPodUser(&pod, tc.user)
		g.Expect(pod.SecurityContext.FSGroup).To(Equal(tc.want), "%+v", tc.user)
	}
}
