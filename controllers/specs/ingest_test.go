package specs_test

import (
	"strings"
	"testing"

	. "github.com/onsi/gomega"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
	"github.com/chatbackend/chatbackend/apiserver/rag/ingest/source"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// withIngest is complete() with a private git source, a public one and a
// site.
func withIngest() *chatv1alpha1.ChatBackend {
	cb := complete()
	cb.Spec.Ingest = &chatv1alpha1.IngestSpec{Sources: []chatv1alpha1.IngestSource{
		{Name: "product", Git: &chatv1alpha1.GitSource{URL: "https://git.example.com/product.git", Ref: "main", Path: "website/docs",
			SiteURL: "https://docs.example.com/product/", RouteBase: "docs", SecretRef: &chatv1alpha1.LocalSecretRef{Name: "git-token"}}},
		{Name: "sdk", Git: &chatv1alpha1.GitSource{URL: "git@git.example.com:sdk.git", SiteURL: "https://sdk.example.com/"}},
		{Name: "blog", Site: &chatv1alpha1.SiteSource{URL: "https://blog.example.com/sitemap.xml", MaxPages: 200}},
	}}
	return cb
}

func ingestContainerEnv(g Gomega, pod *corev1.PodSpec) map[string]string {
	g.Expect(pod.Containers).To(HaveLen(1))
	return envMap(pod.Containers[0].Env)
}

// TestIngestCronJob: the CronJob runs `chat-apiserver ingest` in the API's
// pod (image, env Secret, scheduling, hardening), never twice at once,
// bounded in time and retries, with a size-limited /tmp for the clone.
func TestIngestCronJob(t *testing.T) {
	g := NewWithT(t)
	cb := withIngest()
	cj, err := specs.IngestCronJob(cb, "registry.example.com/chat-apiserver:v2", "abc123")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cj.Name).To(Equal("chat-ingest"))
	g.Expect(cj.Labels).To(HaveKeyWithValue(specs.LabelComponent, specs.ComponentIngest))
	g.Expect(cj.Spec.Schedule).To(Equal("@hourly"))
	g.Expect(cj.Spec.Suspend).To(HaveValue(BeFalse()))
	g.Expect(cj.Spec.ConcurrencyPolicy).To(Equal(batchv1.ForbidConcurrent))
	g.Expect(cj.Spec.StartingDeadlineSeconds).To(HaveValue(Equal(specs.IngestStartingDeadlineSeconds)))
	g.Expect(cj.Spec.SuccessfulJobsHistoryLimit).To(HaveValue(BeNumerically(">", 0)))
	g.Expect(cj.Spec.FailedJobsHistoryLimit).To(HaveValue(BeNumerically(">", 0)))
	// The Jobs carry the operator's labels, which its cache selects.
	g.Expect(cj.Spec.JobTemplate.Labels).To(Equal(specs.Labels(cb, specs.ComponentIngest)))

	job := cj.Spec.JobTemplate.Spec
	g.Expect(job.ActiveDeadlineSeconds).To(HaveValue(Equal(specs.IngestActiveDeadlineSeconds)))
	g.Expect(job.BackoffLimit).To(HaveValue(BeNumerically("<=", 2)))
	pod := job.Template.Spec
	g.Expect(pod.RestartPolicy).To(Equal(corev1.RestartPolicyNever))
	c := pod.Containers[0]
	g.Expect(c.Args).To(Equal([]string{"ingest"}))
	g.Expect(c.TerminationMessagePolicy).To(Equal(corev1.TerminationMessageFallbackToLogsOnError))

	// The same pod as the API's, but for what makes it a run.
	api := specs.Deployment(cb, "registry.example.com/chat-apiserver:v2", "abc123").Spec.Template.Spec
	g.Expect(c.Image).To(Equal(api.Containers[0].Image))
	g.Expect(c.EnvFrom).To(Equal(api.Containers[0].EnvFrom))
	g.Expect(c.SecurityContext).To(Equal(api.Containers[0].SecurityContext))
	g.Expect(c.Resources).To(Equal(api.Containers[0].Resources))
	g.Expect(pod.NodeSelector).To(Equal(api.NodeSelector))
	g.Expect(pod.Tolerations).To(Equal(api.Tolerations))
	g.Expect(pod.AutomountServiceAccountToken).To(HaveValue(BeFalse()))
	// The private key of a git source is readable by the pod's group.
	g.Expect(pod.SecurityContext.FSGroup).To(Equal(pod.SecurityContext.RunAsGroup))
	apiEnv := envMap(api.Containers[0].Env)
	env := ingestContainerEnv(g, &pod)
	for k, v := range apiEnv {
		g.Expect(env).To(HaveKeyWithValue(k, v))
	}
	g.Expect(env).To(HaveKey(envvar.IngestSources))

	var tmp *corev1.Volume
	for i := range pod.Volumes {
		if pod.Volumes[i].Name == "tmp" {
			tmp = &pod.Volumes[i]
		}
	}
	g.Expect(tmp).NotTo(BeNil())
	g.Expect(tmp.EmptyDir.SizeLimit).To(HaveValue(Equal(resource.MustParse(specs.IngestTmpSizeLimit))))

	cb.Spec.Ingest.Schedule = "15 */6 * * *"
	cb.Spec.Ingest.Suspend = ptr.To(true)
	cj, err = specs.IngestCronJob(cb, "registry.example.com/chat-apiserver:v2", "abc123")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(cj.Spec.Schedule).To(Equal("15 */6 * * *"))
	g.Expect(cj.Spec.Suspend).To(HaveValue(BeTrue()))
}

// TestIngestNames: the CronJob's name leaves room for its Jobs' names
// (52 characters), the change Job's fits a label value, and the latter
// changes with the sources and the image only.
func TestIngestNames(t *testing.T) {
	g := NewWithT(t)
	for _, name := range []string{"chat", strings.Repeat("a", 45), strings.Repeat("a", 46), strings.Repeat("a", 45) + "b"} {
		cb := withIngest()
		cb.Name = name
		cj := specs.IngestCronJobName(cb)
		g.Expect(len(cj)).To(BeNumerically("<=", 52), cj)
		g.Expect(validation.IsDNS1123Subdomain(cj)).To(BeEmpty(), cj)
		job, err := specs.IngestJobName(cb, "img:v1")
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(validation.IsValidLabelValue(job)).To(BeEmpty(), job)
	}
	long1, long2 := withIngest(), withIngest()
	long1.Name, long2.Name = strings.Repeat("a", 46), strings.Repeat("a", 45)+"b"
	g.Expect(specs.IngestCronJobName(long1)).NotTo(Equal(specs.IngestCronJobName(long2)))

	cb := withIngest()
	name := func() string {
		n, err := specs.IngestJobName(cb, "img:v1")
		g.Expect(err).NotTo(HaveOccurred())
		return n
	}
	before := name()
	g.Expect(before).To(HavePrefix("chat-ingest-"))
	cb.Spec.Ingest.Schedule = "@daily"
	cb.Spec.Ingest.Suspend = ptr.To(true)
	g.Expect(name()).To(Equal(before), "schedule and suspend are no reason to run again")
	other, err := specs.IngestJobName(cb, "img:v2")
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(other).NotTo(Equal(before), "a new image runs again")
	cb.Spec.Ingest.Sources[0].Git.Ref = "v2"
	g.Expect(name()).NotTo(Equal(before), "changed sources run again")
}

// TestIngestSourcesContract: what the operator puts in INGEST_SOURCES is
// what `chat-apiserver ingest` decodes (the contract package's own Parse),
// and each git source's authDir is where its Secret is mounted.
func TestIngestSourcesContract(t *testing.T) {
	g := NewWithT(t)
	cb := withIngest()
	job, err := specs.IngestJob(cb, "registry.example.com/chat-apiserver:v2", "abc123")
	g.Expect(err).NotTo(HaveOccurred())
	pod := job.Spec.Template.Spec
	parsed, err := source.Parse(ingestContainerEnv(g, &pod)[envvar.IngestSources])
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(parsed).To(HaveLen(3))

	mounts := map[string]corev1.VolumeMount{}
	for _, m := range pod.Containers[0].VolumeMounts {
		mounts[m.MountPath] = m
	}
	volumes := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		volumes[v.Name] = v
	}
	byName := map[string]source.Spec{}
	for _, s := range parsed {
		byName[s.Name] = s
	}

	product := byName["product"].Git
	g.Expect(product).NotTo(BeNil())
	g.Expect(product.URL).To(Equal("https://git.example.com/product.git"))
	g.Expect(product.Ref).To(Equal("main"))
	g.Expect(product.Path).To(Equal("website/docs"))
	g.Expect(product.SiteURL).To(Equal("https://docs.example.com/product/"))
	g.Expect(product.RouteBase).To(Equal("docs"))
	g.Expect(product.AuthDir).NotTo(BeEmpty())
	m, ok := mounts[product.AuthDir]
	g.Expect(ok).To(BeTrue(), "authDir %s is no mount of the container: %v", product.AuthDir, mounts)
	g.Expect(m.ReadOnly).To(BeTrue())
	g.Expect(volumes[m.Name].Secret).NotTo(BeNil())
	g.Expect(volumes[m.Name].Secret.SecretName).To(Equal("git-token"))

	// No secretRef, no credentials directory.
	g.Expect(byName["sdk"].Git.AuthDir).To(BeEmpty())
	g.Expect(byName["blog"].Site).To(Equal(&source.Site{URL: "https://blog.example.com/sitemap.xml", MaxPages: 200}))
	// The one Secret mounted is the one referenced.
	secrets := 0
	for _, v := range pod.Volumes {
		if v.Secret != nil {
			secrets++
		}
	}
	g.Expect(secrets).To(Equal(1))
}
