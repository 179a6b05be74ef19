package specs

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// EnvSecret is the Secret `<name>-env` holding the referenced secret values
// under the variable names chat-apiserver reads (EnvSecretRefs). data is
// what the reconciler resolved from the referenced Secrets.
//
// Why copy instead of pointing env at the user's Secrets: one Secret is one
// thing to hash for rollouts and one envFrom for both the pods and the Job,
// and a user's Secret with other keys in it is never exposed wholesale.
func EnvSecret(cb *chatv1alpha1.ChatBackend, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: objectMeta(cb, EnvSecretName(cb), ""),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}
