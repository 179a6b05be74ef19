package specs

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// NonRootUID is distroless' "nonroot" user. Setting it explicitly lets the
// kubelet verify runAsNonRoot even for an image whose USER is a name.
const NonRootUID int64 = 65532

// Default resources of the API and migrations containers, for each resource
// the spec leaves alone (DefaultResources). Without requests the pods are
// BestEffort: scheduled anywhere and the first evicted under pressure, which
// a real cluster showed. The memory limit bounds a leak; there is no CPU
// limit, which would only throttle a server that otherwise idles.
var (
	DefaultCPURequest    = resource.MustParse("100m")
	DefaultMemoryRequest = resource.MustParse("128Mi")
	DefaultMemoryLimit   = resource.MustParse("512Mi")
)

// DefaultResources returns spec.resources with the defaults filled in for
// cpu and memory, each only when the spec sets neither a request nor a limit
// for it: a user's memory limit of 64Mi must not be met with a default
// request of 128Mi, which the API server would refuse.
func DefaultResources(r corev1.ResourceRequirements) corev1.ResourceRequirements {
	out := *r.DeepCopy()
	unset := func(name corev1.ResourceName) bool {
		_, req := r.Requests[name]
		_, lim := r.Limits[name]
		return !req && !lim
	}
	set := func(l *corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
		if *l == nil {
			*l = corev1.ResourceList{}
		}
		(*l)[name] = q
	}
	if unset(corev1.ResourceCPU) {
		set(&out.Requests, corev1.ResourceCPU, DefaultCPURequest)
	}
	if unset(corev1.ResourceMemory) {
		set(&out.Requests, corev1.ResourceMemory, DefaultMemoryRequest)
		set(&out.Limits, corev1.ResourceMemory, DefaultMemoryLimit)
	}
	return out
}

// podSecurityContext and containerSecurityContext meet the "restricted" Pod
// Security Standard, so the API runs in namespaces that enforce it.
func podSecurityContext() *corev1.PodSecurityContext {
	return &corev1.PodSecurityContext{
		RunAsNonRoot:   ptr.To(true),
		RunAsUser:      ptr.To(NonRootUID),
		RunAsGroup:     ptr.To(NonRootUID),
		SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// PodUser is the user the API and migrations pods run as
// (--pod-run-as-user). The zero value is distroless' nonroot user, 65532.
type PodUser struct {
	// PlatformAssigned leaves runAsUser and runAsGroup unset: OpenShift's
	// restricted-v2 SecurityContextConstraints assign every pod a UID from
	// its namespace's range and refuse one outside it, such as 65532. The
	// pods stay restricted-PSS compliant: runAsNonRoot still holds (the
	// kubelet checks the image's numeric USER, or the assigned UID).
	PlatformAssigned bool
	// UID, when not PlatformAssigned; 0 means 65532.
	UID int64
}

// SetPodUser makes pod (of Deployment or MigrationJob) run as u.
func SetPodUser(pod *corev1.PodSpec, u PodUser) {
	switch {
	case u.PlatformAssigned:
		// The platform (OpenShift's SCC) assigns the fsGroup too, from the
		// namespace's range; a fixed one, set for a mounted client key, would
		// be refused like a fixed UID.
		pod.SecurityContext.RunAsUser, pod.SecurityContext.RunAsGroup = nil, nil
		pod.SecurityContext.FSGroup = nil
	case u.UID != 0:
		pod.SecurityContext.RunAsUser, pod.SecurityContext.RunAsGroup = ptr.To(u.UID), ptr.To(u.UID)
		if pod.SecurityContext.FSGroup != nil {
			pod.SecurityContext.FSGroup = ptr.To(u.UID)
		}
	}
}

func containerSecurityContext() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// tmpVolume gives the read-only-root container a writable /tmp (Go's
// os.TempDir, TLS session caches of some libraries).
const tmpVolume = "tmp"

// podSpec is what the API pods and the migrations pod share: the same image,
// configuration, scheduling, resources, identity, volumes and hardening, so
// a migration runs in the same conditions as the server that follows it.
func podSpec(cb *chatv1alpha1.ChatBackend, image, envHash string, args []string) corev1.PodSpec {
	s := &cb.Spec
	pod := corev1.PodSpec{
		// chat-apiserver does not talk to the Kubernetes API. Workload
		// identity (spec.serviceAccountName) needs no API token: its
		// webhooks project a token of their own, or none is needed (GKE).
		AutomountServiceAccountToken: ptr.To(false),
		ServiceAccountName:           s.ServiceAccountName,
		ImagePullSecrets:             s.ImagePullSecrets,
		PriorityClassName:            s.PriorityClassName,
		SecurityContext:              podSecurityContext(),
		NodeSelector:                 s.NodeSelector,
		Tolerations:                  s.Tolerations,
		Affinity:                     s.Affinity,
		Containers: []corev1.Container{{
			Name:            ContainerName,
			Image:           image,
			ImagePullPolicy: s.ImagePullPolicy,
			Command:         []string{Binary},
			Args:            args,
			Env:             containerEnv(cb),
			// The spec's envFrom first: for a key in several sources the
			// last one wins, so the operator's env Secret beats them.
			EnvFrom: append(slices.Clone(s.EnvFrom), corev1.EnvFromSource{
				SecretRef: &corev1.SecretEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: EnvSecretName(cb, envHash)}},
			}),
			Resources:       DefaultResources(ptr.Deref(s.Resources, corev1.ResourceRequirements{})),
			SecurityContext: containerSecurityContext(),
			VolumeMounts:    append([]corev1.VolumeMount{{Name: tmpVolume, MountPath: "/tmp"}}, s.VolumeMounts...),
		}},
		Volumes: append([]corev1.Volume{{
			Name:         tmpVolume,
			VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}},
		}}, s.Volumes...),
	}
	podTLS(s, &pod)
	return pod
}

// containerEnv is the spec's extra env, without the variables the operator
// sets itself, followed by the operator's (Env). The operator's win because
// they are what the spec's fields mean: an `env` entry would otherwise beat
// them, and also the env Secret's keys (DATABASE_URL...), since env takes
// precedence over envFrom in Kubernetes.
func containerEnv(cb *chatv1alpha1.ChatBackend) []corev1.EnvVar {
	own := Env(cb)
	owned := ownedEnv(cb, own)
	env := make([]corev1.EnvVar, 0, len(cb.Spec.Env)+len(own))
	for _, e := range cb.Spec.Env {
		if !owned[e.Name] {
			env = append(env, e)
		}
	}
	return append(env, own...)
}

// IgnoredEnv names the spec.env entries containerEnv leaves out, in the
// spec's order, so that the status can say so (status.ignoredEnv).
func IgnoredEnv(cb *chatv1alpha1.ChatBackend) []string {
	owned := ownedEnv(cb, Env(cb))
	var ignored []string
	for _, e := range cb.Spec.Env {
		if owned[e.Name] {
			ignored = append(ignored, e.Name)
		}
	}
	return ignored
}

// ownedEnv is the set of variables the operator sets: own (Env) and the
// env Secret's keys. Which they are depends on the spec (QDRANT_URL only
// with spec.qdrant, say), so an env entry is ignored only when it clashes.
func ownedEnv(cb *chatv1alpha1.ChatBackend, own []corev1.EnvVar) map[string]bool {
	owned := map[string]bool{}
	for _, e := range own {
		owned[e.Name] = true
	}
	for _, ref := range EnvSecretRefs(&cb.Spec) {
		owned[ref.EnvName] = true
	}
	return owned
}

// podMetadata is the metadata of a pod template: the spec's labels and
// annotations, then the operator's, which win (they select and roll the
// pods).
func podMetadata(extra *chatv1alpha1.PodMetadata, labels, annotations map[string]string) metav1.ObjectMeta {
	m := metav1.ObjectMeta{}
	if extra != nil {
		m.Labels, m.Annotations = maps.Clone(extra.Labels), maps.Clone(extra.Annotations)
	}
	if m.Labels == nil {
		m.Labels = map[string]string{}
	}
	maps.Copy(m.Labels, labels)
	if len(annotations) > 0 && m.Annotations == nil {
		m.Annotations = map[string]string{}
	}
	maps.Copy(m.Annotations, annotations)
	return m
}
