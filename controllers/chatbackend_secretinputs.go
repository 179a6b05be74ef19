package controllers

import (
	"context"
	"fmt"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
	"github.com/chatbackend/chatbackend/controllers/specs"
)

// secretInputs remembers, per ChatBackend, what reconcileEnvSecret last
// derived from the Secrets the ChatBackend references and from which
// resourceVersions of them, so that a reconcile whose referenced Secrets
// have not changed neither reads them again nor applies the env Secret.
//
// Why: Secrets are not cached (ManagerClientOptions), so every reconcile
// read each referenced Secret from the API server and re-checked the env
// Secret there too; a ChatBackend takes several reconciles to converge, and
// those reads were a fifth of the operator's requests on a fleet. Their
// resourceVersions are in the metadata cache the Secret watches fill
// anyway, and any write to a Secret changes its resourceVersion (never
// reused, not even by a Secret deleted and made again), so an unchanged
// resourceVersion means unchanged data. What is kept is hashes and names,
// never a value. A cache lagging behind only costs a read: the watch event
// of the change brings a reconcile that sees the new resourceVersion and
// reads the Secret again.
type secretInputs struct {
	mu   sync.Mutex
	byCB map[types.NamespacedName]secretInputsRecord
}

type secretInputsRecord struct {
	// uid tells a ChatBackend made again under the same name from the one
	// this was recorded for.
	uid types.UID
	// refs are the spec's references the record was derived from.
	refs string
	// versions are the resourceVersions of the referenced Secrets read.
	versions map[string]string
	// envSecret is the name of the env Secret applied and envSecretVersion
	// the resourceVersion it had then: someone else's write to it (or its
	// deletion) must still bring the apply that restores it.
	envSecret, envSecretVersion  string
	envHash, mountHash, database string
}

// secretRefsKey is what of the spec the env Secret and the mounted Secrets'
// hash depend on besides the Secrets' data.
func secretRefsKey(spec *chatv1alpha1.ChatBackendSpec) string {
	var b strings.Builder
	for _, r := range specs.EnvSecretRefs(spec) {
		fmt.Fprintf(&b, "%s=%s/%s\n", r.EnvName, r.Ref.Name, r.Ref.Key)
	}
	for _, m := range specs.MountedSecrets(spec) {
		fmt.Fprintf(&b, "%s=%s/%s\n", m.Field, m.Name, strings.Join(m.Keys, ","))
	}
	return b.String()
}

// unchanged returns the record of cb when neither the spec's references,
// nor a referenced Secret, nor the env Secret changed since it was made,
// as the metadata cache c tells.
func (in *secretInputs) unchanged(ctx context.Context, c client.Reader, cb *chatv1alpha1.ChatBackend) (secretInputsRecord, bool) {
	if c == nil {
		return secretInputsRecord{}, false
	}
	in.mu.Lock()
	rec, ok := in.byCB[types.NamespacedName{Namespace: cb.Namespace, Name: cb.Name}]
	in.mu.Unlock()
	if !ok || rec.uid != cb.UID || rec.refs != secretRefsKey(&cb.Spec) {
		return secretInputsRecord{}, false
	}
	for name, version := range rec.versions {
		if secretVersion(ctx, c, cb.Namespace, name) != version {
			return secretInputsRecord{}, false
		}
	}
	if secretVersion(ctx, c, cb.Namespace, rec.envSecret) != rec.envSecretVersion {
		return secretInputsRecord{}, false
	}
	return rec, true
}

func (in *secretInputs) remember(cb *chatv1alpha1.ChatBackend, rec secretInputsRecord) {
	rec.uid, rec.refs = cb.UID, secretRefsKey(&cb.Spec)
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.byCB == nil {
		in.byCB = map[types.NamespacedName]secretInputsRecord{}
	}
	in.byCB[types.NamespacedName{Namespace: cb.Namespace, Name: cb.Name}] = rec
}

func (in *secretInputs) forget(cb types.NamespacedName) {
	in.mu.Lock()
	defer in.mu.Unlock()
	delete(in.byCB, cb)
}

// secretVersion is the resourceVersion of a Secret in the metadata cache,
// "" when it is not there.
func secretVersion(ctx context.Context, c client.Reader, namespace, name string) string {
	m := secretMetadata()
	if err := c.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, m); err != nil {
		return ""
	}
	return m.ResourceVersion
}

// secretMetadata is an empty Secret of the metadata cache.
func secretMetadata() *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
	return m
}
