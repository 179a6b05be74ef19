package specs_test

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

func minimal() *chatv1alpha1.ChatBackend {
	return &chatv1alpha1.ChatBackend{
		ObjectMeta: metav1.ObjectMeta{Name: "chat", Namespace: "docs", Generation: 3},
		Spec: chatv1alpha1.ChatBackendSpec{
			Auth:     chatv1alpha1.AuthSpec{BetterAuthURL: "https://auth.example.com"},
			Database: chatv1alpha1.DatabaseSpec{URLSecretRef: chatv1alpha1.SecretKeyRef{Name: "db", Key: "url"}},
		},
	}
}

func complete() *chatv1alpha1.ChatBackend {
	cb := minimal()
	cb.Spec.Replicas = ptr.To[int32](3)
	cb.Spec.ImagePullPolicy = corev1.PullAlways
	cb.Spec.Resources = &corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")}}
	cb.Spec.NodeSelector = map[string]string{"pool": "api"}
	cb.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
	cb.Spec.Auth.JWKSURL = "https://auth.example.com/keys"
	cb.Spec.Auth.Audience = "docs"
	cb.Spec.Auth.Algorithms = []string{"EdDSA", "RS256"}
	cb.Spec.CORS = &chatv1alpha1.CORSSpec{AllowedOrigins: []string{"https://docs.example.com", "https://example.com"}}
	cb.Spec.Qdrant = &chatv1alpha1.QdrantSpec{URL: "http://qdrant:6333", Collection: "docs",
		APIKeySecretRef: &chatv1alpha1.SecretKeyRef{Name: "qdrant", Key: "key"}}
	cb.Spec.OpenAI = &chatv1alpha1.OpenAISpec{BaseURL: "https://llm.example.com/v1", ChatModel: "chat-1", EmbeddingModel: "embed-1",
		APIKeySecretRef: &chatv1alpha1.SecretKeyRef{Name: "openai", Key: "key"}}
	cb.Spec.Database.DirectURLSecretRef = &chatv1alpha1.SecretKeyRef{Name: "db", Key: "direct"}
	cb.Spec.Service = chatv1alpha1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Port: 8443}
	cb.Spec.Monitoring.ServiceMonitor.Interval = "15s"
	return cb
}

func envMap(env []corev1.EnvVar) map[string]string {
	m := map[string]string{}
	for _, e := range env {
		m[e.Name] = e.Value
	}
	return m
}

func TestEnv(t *testing.T) {
	cases := []struct {
		name string
		cb   *chatv1alpha1.ChatBackend
		want map[string]string
	}{
		{"minimal spec sets only what it has", minimal(), map[string]string{
			"BETTER_AUTH_URL": "https://auth.example.com",
			"LISTEN_ADDR":     ":8080",
			"METRICS_ADDR":    ":9090",
		}},
		{"complete spec", complete(), map[string]string{
			"BETTER_AUTH_URL":        "https://auth.example.com",
			"JWKS_URL":               "https://auth.example.com/keys",
			"BETTER_AUTH_AUDIENCE":   "docs",
			"JWT_ALGORITHMS":         "EdDSA,RS256",
			"CORS_ALLOWED_ORIGINS":   "https://docs.example.com,https://example.com",
			"LISTEN_ADDR":            ":8080",
			"METRICS_ADDR":           ":9090",
			"QDRANT_URL":             "http://qdrant:6333",
			"QDRANT_COLLECTION":      "docs",
			"OPENAI_BASE_URL":        "https://llm.example.com/v1",
			"OPENAI_CHAT_MODEL":      "chat-1",
			"OPENAI_EMBEDDING_MODEL": "embed-1",
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			env := specs.Env(tc.cb)
			g.Expect(envMap(env)).To(Equal(tc.want))
			for _, e := range env {
				g.Expect(e.Name).NotTo(HaveSuffix("_KEY"), "secrets travel in the env Secret, not in plain env")
			}
		})
	}
}

func TestEnvSecretRefs(t *testing.T) {
	g := NewWithT(t)
	g.Expect(specs.EnvSecretRefs(&minimal().Spec)).To(HaveLen(1))
	var names []string
	for _, r := range specs.EnvSecretRefs(&complete().Spec) {
		names = append(names, r.EnvName)
	}
	g.Expect(names).To(Equal([]string{"DATABASE_URL", "DATABASE_DIRECT_URL", "OPENAI_API_KEY", "QDRANT_API_KEY"}))
}

func TestHashData(t *testing.T) {
	cases := []struct {
		name  string
		a, b  map[string][]byte
		equal bool
	}{
		{"same data", map[string][]byte{"A": []byte("1"), "B": []byte("2")}, map[string][]byte{"B": []byte("2"), "A": []byte("1")}, true},
		{"changed value", map[string][]byte{"A": []byte("1")}, map[string][]byte{"A": []byte("2")}, false},
		{"added key", map[string][]byte{"A": []byte("1")}, map[string][]byte{"A": []byte("1"), "B": nil}, false},
		{"bytes moved between key and value", map[string][]byte{"AB": []byte("C")}, map[string][]byte{"A": []byte("BC")}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			g.Expect(specs.HashData(tc.a) == specs.HashData(tc.b)).To(Equal(tc.equal))
			g.Expect(specs.HashData(tc.a)).To(HaveLen(16))
		})
	}
}

func TestMigrationJob(t *testing.T) {
	g := NewWithT(t)
	cb := complete()
	job := specs.MigrationJob(cb, "reg/chat:v2", "abc", "db1")

	g.Expect(job.Name).To(Equal("chat-migrate-" + specs.ShortHash("reg/chat:v2\x00db1")))
	g.Expect(specs.MigrationJobName(cb, "reg/chat:v3", "db1")).NotTo(Equal(job.Name), "one Job per image")
	g.Expect(specs.MigrationJobName(cb, "reg/chat:v2", "db2")).NotTo(Equal(job.Name), "one Job per database")
	g.Expect(job.Annotations).To(Equal(map[string]string{
		specs.AnnotationImage: "reg/chat:v2", specs.AnnotationGeneration: "3", specs.AnnotationEnvHash: "abc",
		specs.AnnotationDatabase: "db1",
	}))
	g.Expect(*job.Spec.ActiveDeadlineSeconds).To(Equal(chatv1alpha1.DefaultMigrationActiveDeadlineSeconds),
		"a pod that never starts fails the Job instead of blocking every later upgrade")
	cb.Spec.Migration.ActiveDeadlineSeconds = 120
	g.Expect(*specs.MigrationJob(cb, "reg/chat:v2", "abc", "db1").Spec.ActiveDeadlineSeconds).To(Equal(int64(120)))
	pod := job.Spec.Template.Spec
	g.Expect(pod.RestartPolicy).To(Equal(corev1.RestartPolicyNever))
	c := pod.Containers[0]
	g.Expect(c.TerminationMessagePolicy).To(Equal(corev1.TerminationMessageFallbackToLogsOnError),
		"the migrate command's error becomes the termination message")
	g.Expect(c.Image).To(Equal("reg/chat:v2"))
	g.Expect(c.Command).To(Equal([]string{"chat-apiserver"}))
	g.Expect(c.Args).To(Equal([]string{"migrate"}))
	g.Expect(c.EnvFrom).To(ConsistOf(corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{
		LocalObjectReference: corev1.LocalObjectReference{Name: "chat-env-abc"}}}))
	g.Expect(c.Ports).To(BeEmpty(), "the migration serves nothing")
	g.Expect(pod.NodeSelector).To(Equal(map[string]string{"pool": "api"}), "migrates where the API runs")
	g.Expect(job.Spec.Template.Labels).To(HaveKeyWithValue(specs.LabelComponent, specs.ComponentMigrations))
	g.Expect(c.Resources).To(Equal(specs.Deployment(cb, "reg/chat:v2", "abc").Spec.Template.Spec.Containers[0].Resources),
		"the migration runs with the API's resources")
	defaults := specs.MigrationJob(minimal(), "reg/chat:v2", "abc", "db1").Spec.Template.Spec.Containers[0].Resources
	g.Expect(defaults.Requests).To(HaveKey(corev1.ResourceCPU), "the migration pod is not BestEffort either")
	g.Expect(defaults.Requests).To(HaveKey(corev1.ResourceMemory))
}

func TestMigrationJobNameFitsALabel(t *testing.T) {
	g := NewWithT(t)
	cb := minimal()
	cb.Name = strings.Repeat("a", 46) // the longest name the CRD admits
	g.Expect(validation.IsDNS1123Label(specs.MigrationJobName(cb, "any:image", "db"))).To(BeEmpty())
}

func TestDeployment(t *testing.T) {
	cases := []struct {
		name         string
		cb           *chatv1alpha1.ChatBackend
		wantReplicas int32
	}{
		{"default replicas", minimal(), 2},
		{"explicit replicas", complete(), 3},
		{"zero replicas is kept", func() *chatv1alpha1.ChatBackend { cb := minimal(); cb.Spec.Replicas = ptr.To[int32](0); return cb }(), 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			d := specs.Deployment(tc.cb, "reg/chat:v1", "hash1")
			g.Expect(*d.Spec.Replicas).To(Equal(tc.wantReplicas))
			g.Expect(d.Name).To(Equal("chat"))
			g.Expect(d.Spec.Selector.MatchLabels).To(Equal(specs.SelectorLabels(tc.cb)))
			g.Expect(d.Spec.Template.Labels).To(HaveKeyWithValue(specs.LabelComponent, specs.ComponentAPI))
			for k, v := range d.Spec.Selector.MatchLabels {
				g.Expect(d.Spec.Template.Labels).To(HaveKeyWithValue(k, v), "selector matches the pods")
			}
			g.Expect(d.Spec.Template.Annotations).To(HaveKeyWithValue(specs.AnnotationEnvHash, "hash1"))
			g.Expect(d.Spec.Strategy.RollingUpdate.MaxUnavailable.IntValue()).To(Equal(0))

			pod := d.Spec.Template.Spec
			g.Expect(*pod.SecurityContext.RunAsNonRoot).To(BeTrue())
			g.Expect(pod.SecurityContext.SeccompProfile.Type).To(Equal(corev1.SeccompProfileTypeRuntimeDefault))
			g.Expect(*pod.AutomountServiceAccountToken).To(BeFalse())
			c := pod.Containers[0]
			g.Expect(c.Image).To(Equal("reg/chat:v1"))
			g.Expect(c.Args).To(Equal([]string{"serve"}))
			g.Expect(*c.SecurityContext.ReadOnlyRootFilesystem).To(BeTrue())
			g.Expect(*c.SecurityContext.AllowPrivilegeEscalation).To(BeFalse())
			g.Expect(c.SecurityContext.Capabilities.Drop).To(Equal([]corev1.Capability{"ALL"}))
			g.Expect(c.VolumeMounts).To(ContainElement(HaveField("MountPath", "/tmp")), "a writable /tmp next to the read-only root")
			g.Expect(c.Ports).To(ConsistOf(
				corev1.ContainerPort{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP},
				corev1.ContainerPort{Name: "metrics", ContainerPort: 9090, Protocol: corev1.ProtocolTCP},
			))
			g.Expect(c.ReadinessProbe.HTTPGet.Path).To(Equal("/readyz"))
			g.Expect(c.ReadinessProbe.HTTPGet.Port).To(Equal(intstr.FromString("http")))
			g.Expect(c.LivenessProbe.HTTPGet.Path).To(Equal("/healthz"))
			g.Expect(envMap(c.Env)).To(Equal(envMap(specs.Env(tc.cb))))
		})
	}

	t.Run("scheduling and resources come from the spec", func(t *testing.T) {
		g := NewWithT(t)
		cb := complete()
		d := specs.Deployment(cb, "reg/chat:v1", "h")
		pod := d.Spec.Template.Spec
		g.Expect(pod.NodeSelector).To(Equal(cb.Spec.NodeSelector))
		g.Expect(pod.Tolerations).To(Equal(cb.Spec.Tolerations))
		// The spec's memory limit replaces the memory defaults; cpu, which
		// the spec leaves alone, keeps its default request.
		g.Expect(pod.Containers[0].Resources).To(Equal(corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("256Mi")},
		}))
		g.Expect(pod.Containers[0].ImagePullPolicy).To(Equal(corev1.PullAlways))
	})
	t.Run("the env hash and the env Secret it names are all a Secret change alters", func(t *testing.T) {
		g := NewWithT(t)
		a := specs.Deployment(minimal(), "reg/chat:v1", "h1")
		b := specs.Deployment(minimal(), "reg/chat:v1", "h2")
		g.Expect(a.Spec.Template.Annotations).NotTo(Equal(b.Spec.Template.Annotations))
		g.Expect(b.Spec.Template.Spec.Containers[0].EnvFrom[0].SecretRef.Name).To(Equal("chat-env-h2"))
		b.Spec.Template.Annotations = a.Spec.Template.Annotations
		b.Spec.Template.Spec.Containers[0].EnvFrom = a.Spec.Template.Spec.Containers[0].EnvFrom
		g.Expect(b).To(Equal(a))
	})
}

func TestServiceAndPDB(t *testing.T) {
	cases := []struct {
		name     string
		cb       *chatv1alpha1.ChatBackend
		wantType corev1.ServiceType
		wantPort int32
		wantURL  string
		wantPDB  bool
	}{
		{"defaults", minimal(), corev1.ServiceTypeClusterIP, 80, "http://chat.docs.svc:80", true},
		{"from the spec", complete(), corev1.ServiceTypeLoadBalancer, 8443, "http://chat.docs.svc:8443", true},
		{"single replica has no PDB", func() *chatv1alpha1.ChatBackend { cb := minimal(); cb.Spec.Replicas = ptr.To[int32](1); return cb }(),
			corev1.ServiceTypeClusterIP, 80, "http://chat.docs.svc:80", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := NewWithT(t)
			svc := specs.Service(tc.cb)
			g.Expect(svc.Spec.Type).To(Equal(tc.wantType))
			g.Expect(svc.Spec.Selector).To(Equal(specs.SelectorLabels(tc.cb)))
			g.Expect(svc.Spec.Ports).To(ConsistOf(
				corev1.ServicePort{Name: "http", Port: tc.wantPort, TargetPort: intstr.FromString("http"), Protocol: corev1.ProtocolTCP},
			), "/metrics is not on the Service users reach, which may be a LoadBalancer")
			metrics := specs.MetricsService(tc.cb)
			g.Expect(metrics.Name).To(Equal("chat-metrics"))
			g.Expect(metrics.Spec.Type).To(Equal(corev1.ServiceTypeClusterIP), "whatever spec.service.type says")
			g.Expect(metrics.Spec.Selector).To(Equal(specs.SelectorLabels(tc.cb)))
			g.Expect(metrics.Spec.Ports).To(ConsistOf(
				corev1.ServicePort{Name: "metrics", Port: 9090, TargetPort: intstr.FromString("metrics"), Protocol: corev1.ProtocolTCP},
			))
			g.Expect(specs.ServiceURL(tc.cb)).To(Equal(tc.wantURL))
			g.Expect(specs.WantsPodDisruptionBudget(tc.cb)).To(Equal(tc.wantPDB))
			pdb := specs.PodDisruptionBudget(tc.cb)
			g.Expect(pdb.Spec.MaxUnavailable.IntValue()).To(Equal(1))
			g.Expect(pdb.Spec.Selector.MatchLabels).To(Equal(specs.SelectorLabels(tc.cb)))
		})
	}
}

func TestMonitoring(t *testing.T) {
	g := NewWithT(t)
	cb := complete()
	sm := specs.ServiceMonitor(cb, nil)
	// The ServiceMonitor selects the metrics Service by its labels, and
	// not the API Service.
	selector := labels.SelectorFromSet(sm.Spec.Selector.MatchLabels)
	g.Expect(selector.Matches(labels.Set(specs.MetricsService(cb).Labels))).To(BeTrue())
	g.Expect(selector.Matches(labels.Set(specs.Service(cb).Labels))).To(BeFalse())
	g.Expect(sm.Spec.Endpoints).To(HaveLen(1))
	g.Expect(sm.Spec.Endpoints[0].Port).To(Equal("metrics"))
	g.Expect(string(sm.Spec.Endpoints[0].Interval)).To(Equal("15s"))
	// The scrape job is the value of this label of the metrics Service: the
	// ChatBackend's name, which the alerts match (job="chat" below).
	g.Expect(specs.MetricsService(cb).Labels).To(HaveKeyWithValue(sm.Spec.JobLabel, "chat"))

	rule, err := specs.PrometheusRule(cb, nil)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rule.Name).To(Equal("chat"))
	g.Expect(rule.Spec.Groups).NotTo(BeEmpty())
	var alerts []string
	for _, grp := range rule.Spec.Groups {
		for _, r := range grp.Rules {
			alerts = append(alerts, r.Alert)
			// Scoped to this ChatBackend: its namespace and scrape job, or
			// its labels in the operator's own metrics.
			g.Expect(r.Expr.String()).To(ContainSubstring(`namespace="docs"`), r.Alert)
			g.Expect(r.Expr.String()).To(Or(ContainSubstring(`job="chat"`), ContainSubstring(`chatbackend="chat"`)), r.Alert)
			g.Expect(r.Annotations).To(HaveKey("runbook_url"), r.Alert)
		}
	}
	g.Expect(len(alerts)).To(BeNumerically(">=", 4))
}

// TestMonitoringLabels: the operator-wide labels, then the spec's, go on the
// ServiceMonitor and PrometheusRule; the operator's own labels cannot be
// overridden (they identify the objects).
func TestMonitoringLabels(t *testing.T) {
	g := NewWithT(t)
	cb := complete()
	defaults := map[string]string{"release": "kps", "team": "platform", specs.LabelInstance: "other"}
	cb.Spec.Monitoring.ServiceMonitor.Labels = map[string]string{"release": "prom-a"}
	sm := specs.ServiceMonitor(cb, defaults)
	g.Expect(sm.Labels).To(HaveKeyWithValue("release", "prom-a"), "the spec wins over the operator's default")
	g.Expect(sm.Labels).To(HaveKeyWithValue("team", "platform"))
	g.Expect(sm.Labels).To(HaveKeyWithValue(specs.LabelInstance, "chat"))
	rule, err := specs.PrometheusRule(cb, defaults)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(rule.Labels).To(HaveKeyWithValue("release", "kps"), "the ServiceMonitor's labels are its own")
	g.Expect(defaults).To(HaveKeyWithValue(specs.LabelInstance, "other"), "the defaults are not modified")
}
