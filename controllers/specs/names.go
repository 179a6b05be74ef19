package specs

import (
	"crypto/sha256"
	"encoding/hex"
	"sort"
	"strconv"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// Annotation and label keys the operator writes.
const (
	// AnnotationEnvHash on the pod template is a hash of the env Secret's
	// data: changing a referenced Secret changes it and so rolls the pods,
	// which otherwise would keep the old values until they restart.
	AnnotationEnvHash = "chat.chatbackend.io/env-hash"
	// AnnotationImage on a migrations Job records the image it migrates to.
	AnnotationImage = "chat.chatbackend.io/image"
	// AnnotationGeneration on a migrations Job records the ChatBackend
	// generation it was created for; a failed Job is retried only for a newer
	// generation (or new Secret data), never in a loop.
	AnnotationGeneration = "chat.chatbackend.io/generation"

	LabelName      = "app.kubernetes.io/name"
	LabelInstance  = "app.kubernetes.io/instance"
	LabelComponent = "app.kubernetes.io/component"
	LabelManagedBy = "app.kubernetes.io/managed-by"

	// AppName is the app.kubernetes.io/name of every child.
	AppName = "chat-apiserver"
	// ManagedBy is the app.kubernetes.io/managed-by of every child.
	ManagedBy = "chatbackend-operator"

	ComponentAPI        = "api"
	ComponentMigrations = "migrations"

	// Container ports of chat-apiserver (LISTEN_ADDR and METRICS_ADDR).
	HTTPPort    int32 = 8080
	MetricsPort int32 = 9090
	// Port names, referenced by probes, the Service and the ServiceMonitor.
	HTTPPortName    = "http"
	MetricsPortName = "metrics"

	// ContainerName of the API and of the migrations container.
	ContainerName = "chat-apiserver"
	// Binary is the chat-apiserver executable in the image, on PATH.
	Binary = "chat-apiserver"
)

// EnvSecretName is the Secret that gathers the referenced secret values;
// the API pods and the migrations Job read only this one.
func EnvSecretName(cb *chatv1alpha1.ChatBackend) string { return cb.Name + "-env" }

// MigrationJobName is unique per image, so each image is migrated by its own
// Job and a finished Job documents which image it migrated. The CRD caps the
// ChatBackend name at 46 characters so this fits the 63 of a label value
// (Jobs label their pods with their own name).
func MigrationJobName(cb *chatv1alpha1.ChatBackend, image string) string {
	return cb.Name + "-migrate-" + ShortHash(image)
}

// ShortHash is the first 8 hex characters of the SHA-256 of s.
func ShortHash(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

// HashData hashes Secret data independently of map order; 16 hex characters
// are plenty to notice a change and short enough to read.
func HashData(data map[string][]byte) string {
	keys := make([]string, 0, len(data))
	for k := range data {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	for _, k := range keys {
		// Length-prefix-free framing: NUL cannot appear in an env var name.
		h.Write([]byte(k))
		h.Write([]byte{0})
		h.Write(data[k])
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// Labels are put on every child.
func Labels(cb *chatv1alpha1.ChatBackend, component string) map[string]string {
	l := map[string]string{
		LabelName:      AppName,
		LabelInstance:  cb.Name,
		LabelManagedBy: ManagedBy,
	}
	if component != "" {
		l[LabelComponent] = component
	}
	return l
}

// SelectorLabels select the API pods of one ChatBackend. They must never
// change: a Deployment's selector is immutable.
func SelectorLabels(cb *chatv1alpha1.ChatBackend) map[string]string {
	return map[string]string{
		LabelName:      AppName,
		LabelInstance:  cb.Name,
		LabelComponent: ComponentAPI,
	}
}

// ServiceURL is the API's in-cluster URL.
func ServiceURL(cb *chatv1alpha1.ChatBackend) string {
	return "http://" + cb.Name + "." + cb.Namespace + ".svc:" + strconv.Itoa(int(cb.Spec.ServicePortOrDefault()))
}
