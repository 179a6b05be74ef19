package specs

import (
	"strconv"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// Names and ports of what runs in the pods.
const (
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

// EnvSecretName is the Secret that gathers the referenced secret values
// whose hash (HashData) is envHash; the API pods and the migrations Job
// read only such a Secret. It is content-addressed, see EnvSecret.
func EnvSecretName(cb *chatv1alpha1.ChatBackend, envHash string) string {
	return EnvSecretPrefix(cb) + envHash
}

// EnvSecretPrefix starts the name of every env Secret of cb.
func EnvSecretPrefix(cb *chatv1alpha1.ChatBackend) string { return cb.Name + "-env-" }

// MetricsServiceName is the ClusterIP Service of the metrics port. The CRD
// caps the ChatBackend name at 46 characters, so it fits a DNS label.
func MetricsServiceName(cb *chatv1alpha1.ChatBackend) string { return cb.Name + "-metrics" }

// MigrationJobName is unique per image and database (DatabaseFingerprint),
// so each image is migrated on each database by its own Job and a finished
// Job documents what it migrated. The CRD caps the
// ChatBackend name at 46 characters so this fits the 63 of a label value
// (Jobs label their pods with their own name).
func MigrationJobName(cb *chatv1alpha1.ChatBackend, image, database string) string {
	return cb.Name + "-migrate-" + ShortHash(image+"\x00"+database)
}

// ServiceURL is the API's in-cluster URL.
func ServiceURL(cb *chatv1alpha1.ChatBackend) string {
	return "http://" + cb.Name + "." + cb.Namespace + ".svc:" + strconv.Itoa(int(cb.Spec.ServicePortOrDefault()))
}
