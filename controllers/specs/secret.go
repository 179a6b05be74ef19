package specs

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// EnvSecret is the Secret `<name>-env-<hash of data>` holding the
// referenced secret values under the variable names chat-apiserver reads
// (EnvSecretRefs). data is what the reconciler resolved from the
// referenced Secrets.
//
// Why content-addressed: a Secret the running pods read must not change
// under them. With one `<name>-env` rewritten in place, a DATABASE_URL
// pointing at a new, unmigrated database reached every pod that restarted
// before its migration ran. Each version of the data is its own Secret
// instead: the migrations Job reads the new one, the Deployment keeps the
// one its database was migrated with until the new one's migration
// succeeded, and the reconciler deletes the old ones after the rollout.
//
// Why copy instead of pointing env at the user's Secrets: one Secret is one
// thing to hash for rollouts and one envFrom for both the pods and the Job,
// and a user's Secret with other keys in it is never exposed wholesale.
func EnvSecret(cb *chatv1alpha1.ChatBackend, data map[string][]byte) *corev1.Secret {
	return &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: objectMeta(cb, EnvSecretName(cb, HashData(data)), ""),
		Type:       corev1.SecretTypeOpaque,
		Data:       data,
	}
}
