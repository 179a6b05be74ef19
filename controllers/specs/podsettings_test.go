package specs_test

import (
	"testing"

	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// withPodSettings is a ChatBackend setting every pod setting of the spec.
func withPodSettings() *chatv1alpha1.ChatBackend {
	cb := complete()
	s := &cb.Spec
	s.ImagePullSecrets = []corev1.LocalObjectReference{{Name: "regcred"}}
	s.ServiceAccountName = "chat-identity"
	s.PriorityClassName = "business-critical"
	s.PodMetadata = &chatv1alpha1.PodMetadata{
		Labels:      map[string]string{"team": "docs", specs.LabelInstance: "hijack"},
		Annotations: map[string]string{"example.com/scrape": "false", specs.AnnotationEnvHash: "stale"},
	}
	s.Migration.PodMetadata = &chatv1alpha1.PodMetadata{
		Labels:      map[string]string{"job-team": "docs"},
		Annotations: map[string]string{"sidecar.istio.io/inject": "false"},
	}
	s.Migration.Resources = &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}}
	s.Env = []corev1.EnvVar{
		{Name: "HTTP_PROXY", Value: "http://proxy:3128"},
		{Name: envvar.BetterAuthURL, Value: "https://evil.example.com"}, // the spec's field wins
		{Name: envvar.DatabaseURL, Value: "postgres://evil/db"},         // the referenced Secret wins
	}
	s.EnvFrom = []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "extra"}}}}
	s.Volumes = []corev1.Volume{{Name: "db-ca", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "db-ca"}}}}
	s.VolumeMounts = []corev1.VolumeMount{{Name: "db-ca", MountPath: "/etc/db-ca", ReadOnly: true}}
	s.TerminationGracePeriodSeconds = 120
	s.RevisionHistoryLimit = ptr.To[int32](3)
	s.TopologySpreadConstraints = []corev1.TopologySpreadConstraint{{
		MaxSkew: 1, TopologyKey: corev1.LabelTopologyZone, WhenUnsatisfiable: corev1.DoNotSchedule,
		LabelSelector: &metav1.LabelSelector{MatchLabels: specs.SelectorLabels(cb)},
	}}
	return cb
}

// TestIgnoredEnv: the spec.env entries left out are exactly those the
// operator sets for this spec; a name it would only set from a field left
// unset (spec.qdrant here) passes through.
func TestIgnoredEnv(t *testing.T) {
	g := NewWithT(t)
	cb := withPodSettings()
	g.Expect(specs.IgnoredEnv(cb)).To(Equal([]string{envvar.BetterAuthURL, envvar.DatabaseURL}))

	cb = minimal()
	cb.Spec.Env = []corev1.EnvVar{{Name: envvar.QdrantURL, Value: "http://qdrant:6333"}, {Name: "HTTP_PROXY", Value: "http://proxy:3128"}}
	g.Expect(specs.IgnoredEnv(cb)).To(BeEmpty())
	g.Expect(envMap(specs.Deployment(cb, "reg/chat:v1", "h").Spec.Template.Spec.Containers[0].Env)).
		To(HaveKeyWithValue(envvar.QdrantURL, "http://qdrant:6333"))
}

// TestPodSettings: every pod setting of the spec reaches the API pods and,
// where it makes sense, the migrations pod; the operator's own labels,
// annotations, env, volumes and mounts are kept and win.
func TestPodSettings(t *testing.T) {
	g := NewWithT(t)
	cb := withPodSettings()
	dep := specs.Deployment(cb, "reg/chat:v1", "h")
	job := specs.MigrationJob(cb, "reg/chat:v1", "h", "db")
	api, mig := dep.Spec.Template, job.Spec.Template

	for name, pod := range map[string]corev1.PodSpec{"API": api.Spec, "migrations": mig.Spec} {
		g.Expect(pod.ImagePullSecrets).To(Equal(cb.Spec.ImagePullSecrets), name)
		g.Expect(pod.ServiceAccountName).To(Equal("chat-identity"), name)
		g.Expect(pod.AutomountServiceAccountToken).To(Equal(ptr.To(false)), "%s: still no Kubernetes API token", name)
		g.Expect(pod.PriorityClassName).To(Equal("business-critical"), name)
		c := pod.Containers[0]

		// Extra env first, minus what the operator sets; the operator's after.
		g.Expect(c.Env[0]).To(Equal(corev1.EnvVar{Name: "HTTP_PROXY", Value: "http://proxy:3128"}), name)
		g.Expect(envMap(c.Env)).To(HaveKeyWithValue(envvar.BetterAuthURL, "https://auth.example.com"), name)
		g.Expect(envMap(c.Env)).NotTo(HaveKey(envvar.DatabaseURL), "%s: env would beat the env Secret's DATABASE_URL", name)
		names := map[string]int{}
		for _, e := range c.Env {
			names[e.Name]++
		}
		for n, k := range names {
			g.Expect(k).To(Equal(1), "%s: env %s twice (server-side apply refuses that)", name, n)
		}
		// The spec's envFrom before the env Secret, which wins for a key in both.
		g.Expect(c.EnvFrom).To(HaveLen(2), name)
		g.Expect(c.EnvFrom[0]).To(Equal(cb.Spec.EnvFrom[0]), name)
		g.Expect(c.EnvFrom[1].SecretRef.Name).To(Equal(specs.EnvSecretName(cb, "h")), name)

		g.Expect(pod.Volumes).To(HaveLen(2), name)
		g.Expect(pod.Volumes[0].Name).To(Equal("tmp"), name)
		g.Expect(pod.Volumes[1]).To(Equal(cb.Spec.Volumes[0]), name)
		g.Expect(c.VolumeMounts).To(Equal([]corev1.VolumeMount{{Name: "tmp", MountPath: "/tmp"}, cb.Spec.VolumeMounts[0]}), name)
	}

	// Pod metadata: the API pods get spec.podMetadata, the migrations pod
	// spec.migration.podMetadata; the operator's labels and annotations win.
	g.Expect(api.Labels).To(HaveKeyWithValue("team", "docs"))
	g.Expect(api.Labels).To(HaveKeyWithValue(specs.LabelInstance, "chat"), "the selector labels are the operator's")
	g.Expect(api.Labels).NotTo(HaveKey("job-team"))
	g.Expect(api.Annotations).To(Equal(map[string]string{"example.com/scrape": "false", specs.AnnotationEnvHash: "h"}))
	g.Expect(mig.Labels).To(HaveKeyWithValue("job-team", "docs"))
	g.Expect(mig.Labels).To(HaveKeyWithValue(specs.LabelComponent, specs.ComponentMigrations))
	g.Expect(mig.Labels).NotTo(HaveKey("team"))
	g.Expect(mig.Annotations).To(Equal(map[string]string{"sidecar.istio.io/inject": "false"}))

	// API pods only: spread, grace period, revision history.
	g.Expect(api.Spec.TopologySpreadConstraints).To(Equal(cb.Spec.TopologySpreadConstraints))
	g.Expect(mig.Spec.TopologySpreadConstraints).To(BeEmpty())
	g.Expect(api.Spec.TerminationGracePeriodSeconds).To(Equal(ptr.To[int64](120)))
	g.Expect(mig.Spec.TerminationGracePeriodSeconds).To(BeNil())
	g.Expect(dep.Spec.RevisionHistoryLimit).To(Equal(ptr.To[int32](3)))

	// The migrations container's own resources, defaults filled in; the
	// API's stay spec.resources.
	g.Expect(mig.Spec.Containers[0].Resources.Requests).To(HaveKeyWithValue(corev1.ResourceMemory, resource.MustParse("64Mi")))
	g.Expect(mig.Spec.Containers[0].Resources.Requests).To(HaveKeyWithValue(corev1.ResourceCPU, specs.DefaultCPURequest))
	g.Expect(api.Spec.Containers[0].Resources.Limits).To(HaveKeyWithValue(corev1.ResourceMemory, resource.MustParse("256Mi")))
}

// TestPodSettingsDefaults: without pod settings the API pods spread softly
// over nodes by the current ReplicaSet, keep the grace period the drain
// needs, and nothing else is added.
func TestPodSettingsDefaults(t *testing.T) {
	g := NewWithT(t)
	cb := minimal()
	dep := specs.Deployment(cb, "reg/chat:v1", "h")
	pod := dep.Spec.Template.Spec
	g.Expect(pod.TopologySpreadConstraints).To(Equal([]corev1.TopologySpreadConstraint{{
		MaxSkew:           1,
		TopologyKey:       "kubernetes.io/hostname",
		WhenUnsatisfiable: corev1.ScheduleAnyway,
		LabelSelector:     &metav1.LabelSelector{MatchLabels: specs.SelectorLabels(cb)},
		MatchLabelKeys:    []string{appsv1.DefaultDeploymentUniqueLabelKey},
	}}))
	g.Expect(pod.TerminationGracePeriodSeconds).To(Equal(ptr.To(specs.TerminationGracePeriodSeconds)))
	g.Expect(dep.Spec.RevisionHistoryLimit).To(BeNil())
	g.Expect(pod.ServiceAccountName).To(BeEmpty())
	g.Expect(pod.ImagePullSecrets).To(BeEmpty())
	g.Expect(pod.Containers[0].EnvFrom).To(HaveLen(1))
	g.Expect(dep.Spec.Template.Annotations).To(Equal(map[string]string{specs.AnnotationEnvHash: "h"}))
	job := specs.MigrationJob(cb, "reg/chat:v1", "h", "db")
	g.Expect(job.Spec.Template.Annotations).To(BeNil())
	g.Expect(job.Spec.Template.Spec.Containers[0].Resources).To(Equal(pod.Containers[0].Resources))
}
