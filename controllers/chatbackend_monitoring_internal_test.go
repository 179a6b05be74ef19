package controllers

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	chatv1alpha1 "github.com/chatbackend/chatbackend/api/v1alpha1"
)

// missingCRDs is a RESTMapper of a cluster without prometheus-operator that
// counts the lookups, each of which costs a real RESTMapper a discovery
// request for the unknown group.
type missingCRDs struct {
	meta.RESTMapper
	lookups atomic.Int32
}

func (m *missingCRDs) RESTMapping(gk schema.GroupKind, _ ...string) (*meta.RESTMapping, error) {
	m.lookups.Add(1)
	return nil, &meta.NoKindMatchError{GroupKind: gk}
}

// TestMissingMonitoringCRDsCostNothingPerChatBackend: without
// prometheus-operator a fleet of ChatBackends is at rest: their reconciles
// share one discovery per recheck interval and none is requeued to look
// again (the poller does, once for all).
func TestMissingMonitoringCRDsCostNothingPerChatBackend(t *testing.T) {
	g := NewWithT(t)
	mapper := &missingCRDs{}
	r := &ChatBackendReconciler{
		Client:                    fake.NewClientBuilder().WithRESTMapper(mapper).Build(),
		MonitoringRecheckInterval: time.Hour,
	}
	for i := range 100 {
		s := &scope{cb: &chatv1alpha1.ChatBackend{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: fmt.Sprintf("cb%d", i)}}}
		res, err := r.reconcileMonitoring(context.Background(), s)
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(res).To(Equal(ctrl.Result{}), "no per-ChatBackend requeue")
		g.Expect(s.monitoring.reason).To(Equal(chatv1alpha1.ReasonCRDNotInstalled))
	}
	g.Expect(mapper.lookups.Load()).To(Equal(int32(1)), "one discovery for 100 ChatBackends")

	installed, err := r.checkMonitoringCRDs(true)
	g.Expect(err).NotTo(HaveOccurred())
	g.Expect(installed).To(BeFalse())
	g.Expect(mapper.lookups.Load()).To(Equal(int32(2)), "the poller's tick discovers again")
}
