package specs

import (
	"sort"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/apiserver/envvar"
)

// Where the API and migrations containers find the TLS files the spec
// references (spec.database.tls, spec.trustedCA). The CRD reserves the
// volume names and /etc/chatbackend.
const (
	DatabaseTLSDir    = "/etc/chatbackend/database-tls"
	TrustedCADir      = "/etc/chatbackend/trusted-ca"
	databaseTLSVolume = "database-tls"
	trustedCAVolume   = "trusted-ca"
	// caFile is the name of a CA bundle in its directory.
	caFile = "ca.crt"
)

// File modes of the mounted TLS files. Certificates are public: readable by
// all, whatever user the platform runs the container as. The client key is
// readable by its group only, which is the pod's fsGroup (podTLS): the
// kubelet gives a volume's files to that group (and would add group read to
// 0400 anyway).
const (
	certMode int32 = 0o444
	keyMode  int32 = 0o440
)

// AnnotationMountedSecretsHash on a pod template is a hash of the Secrets
// mounted as files (MountedSecrets): rotating a CA or a client certificate
// rolls the pods, which read the files once, when they first connect.
const AnnotationMountedSecretsHash = "chat.chatbackend.io/mounted-secrets-hash"

// MountedSecret is a Secret whose keys the pods get as files.
type MountedSecret struct {
	// Field is the spec path of the reference, for messages.
	Field string
	Name  string
	// Keys the Secret must have.
	Keys []string
}

// MountedSecrets lists the Secrets the pods mount as files, in a stable
// order. The reconciler checks that they and their keys exist before any
// pod needs them, and hashes them (AnnotationMountedSecretsHash).
func MountedSecrets(s *chatv1alpha1.ChatBackendSpec) []MountedSecret {
	var out []MountedSecret
	if t := s.Database.TLS; t != nil {
		if r := t.CASecretRef; r != nil {
			out = append(out, MountedSecret{Field: "spec.database.tls.caSecretRef", Name: r.Name, Keys: []string{r.Key}})
		}
		if r := t.ClientCertSecretRef; r != nil {
			out = append(out, MountedSecret{Field: "spec.database.tls.clientCertSecretRef", Name: r.Name,
				Keys: []string{corev1.TLSCertKey, corev1.TLSPrivateKeyKey}})
		}
	}
	if t := s.TrustedCA; t != nil {
		out = append(out, MountedSecret{Field: "spec.trustedCA.secretRef", Name: t.SecretRef.Name, Keys: []string{t.SecretRef.Key}})
	}
	return out
}

// ReferencedSecretNames are the names of every Secret the spec references,
// for the index that maps a changed Secret to its ChatBackends.
func ReferencedSecretNames(s *chatv1alpha1.ChatBackendSpec) []string {
	var names []string
	for _, r := range EnvSecretRefs(s) {
		names = append(names, r.Ref.Name)
	}
	for _, m := range MountedSecrets(s) {
		names = append(names, m.Name)
	}
	sort.Strings(names)
	return names
}

// SetMountedSecretsHash records hash (HashData of the mounted Secrets'
// data) on a pod template; with no mounted Secret (an empty hash) the
// template is left alone, so that ChatBackends without them are not rolled
// by an operator upgrade.
func SetMountedSecretsHash(tmpl *corev1.PodTemplateSpec, hash string) {
	if hash == "" {
		return
	}
	if tmpl.Annotations == nil {
		tmpl.Annotations = map[string]string{}
	}
	tmpl.Annotations[AnnotationMountedSecretsHash] = hash
}

// tlsEnv are the variables that name the mounted files (envvar says how
// the server reads them).
func tlsEnv(s *chatv1alpha1.ChatBackendSpec) []corev1.EnvVar {
	var env []corev1.EnvVar
	if t := s.Database.TLS; t != nil {
		if t.CASecretRef != nil {
			// Only the default: an sslmode in the URL wins (libpq's rule).
			env = append(env,
				corev1.EnvVar{Name: envvar.DatabaseSSLMode, Value: "verify-full"},
				corev1.EnvVar{Name: envvar.DatabaseSSLRootCert, Value: DatabaseTLSDir + "/" + caFile})
		}
		if t.ClientCertSecretRef != nil {
			env = append(env,
				corev1.EnvVar{Name: envvar.DatabaseSSLCert, Value: DatabaseTLSDir + "/" + corev1.TLSCertKey},
				corev1.EnvVar{Name: envvar.DatabaseSSLKey, Value: DatabaseTLSDir + "/" + corev1.TLSPrivateKeyKey})
		}
	}
	if s.TrustedCA != nil {
		env = append(env, corev1.EnvVar{Name: envvar.TrustedCADir, Value: TrustedCADir})
	}
	return env
}

// podTLS mounts the TLS files of the spec read-only into the pod's
// container. The database's CA and client certificate share one projected
// volume, so one directory holds what PGSSL* name. With a client key, the
// pod's fsGroup is its run group, the group the key is readable by; left
// unset when the pod has no fixed group (a platform such as OpenShift then
// assigns both).
func podTLS(s *chatv1alpha1.ChatBackendSpec, pod *corev1.PodSpec) {
	c := &pod.Containers[0]
	if t := s.Database.TLS; t != nil {
		var sources []corev1.VolumeProjection
		if r := t.CASecretRef; r != nil {
			sources = append(sources, secretProjection(r.Name, corev1.KeyToPath{Key: r.Key, Path: caFile, Mode: ptr.To(certMode)}))
		}
		if r := t.ClientCertSecretRef; r != nil {
			sources = append(sources, secretProjection(r.Name,
				corev1.KeyToPath{Key: corev1.TLSCertKey, Path: corev1.TLSCertKey, Mode: ptr.To(certMode)},
				corev1.KeyToPath{Key: corev1.TLSPrivateKeyKey, Path: corev1.TLSPrivateKeyKey, Mode: ptr.To(keyMode)}))
			keysReadableByGroup(pod)
		}
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: databaseTLSVolume,
			VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: sources, DefaultMode: ptr.To(certMode)}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: databaseTLSVolume, MountPath: DatabaseTLSDir, ReadOnly: true})
	}
	if t := s.TrustedCA; t != nil {
		pod.Volumes = append(pod.Volumes, corev1.Volume{Name: trustedCAVolume, VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  t.SecretRef.Name,
			Items:       []corev1.KeyToPath{{Key: t.SecretRef.Key, Path: caFile}},
			DefaultMode: ptr.To(certMode),
		}}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: trustedCAVolume, MountPath: TrustedCADir, ReadOnly: true})
	}
}

func secretProjection(name string, items ...corev1.KeyToPath) corev1.VolumeProjection {
	return corev1.VolumeProjection{Secret: &corev1.SecretProjection{
		LocalObjectReference: corev1.LocalObjectReference{Name: name}, Items: items,
	}}
}

// keysReadableByGroup makes mounted private keys (mode keyMode) readable
// by the pod's user: its group owns them (fsGroup), the pod's own group
// unless one was set.
func keysReadableByGroup(pod *corev1.PodSpec) {
	if sc := pod.SecurityContext; sc != nil && sc.FSGroup == nil {
		sc.FSGroup = sc.RunAsGroup
	}
}
