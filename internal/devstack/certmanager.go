package devstack

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"

	controllerpkg "github.com/cert-manager/cert-manager/pkg/controller"
	logf "github.com/cert-manager/cert-manager/pkg/logs"

	// cert-manager's controllers register their constructors in init().
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	_ "github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
)

// CertManagerControllers are the cert-manager controllers the stack runs: the
// Certificate pipeline and the CertificateRequest approver. Issuer-specific
// controllers (ACME, CA, Vault...) are not needed: our issuer signs.
var CertManagerControllers = []string{
	"certificates-trigger",
	"certificates-key-manager",
	"certificates-request-manager",
	"certificates-issuing",
	"certificates-readiness",
	"certificates-revision-manager",
	"certificaterequests-approver",
}

// certManagerWorkers matches cmd/controller's workers per controller.
const certManagerWorkers = 5

// runCertManager constructs cert-manager's controllers through its own
// controller package, as its cmd/controller does, starts the shared
// informers and runs the controllers until ctx ends. It returns once every
// controller is running; wait waits for them to stop.
func runCertManager(ctx context.Context, log logr.Logger, kubeconfig, clusterResourceNamespace string) (wait func(), err error) {
	ctx = logf.NewContext(ctx, log)
	factory, err := controllerpkg.NewContextFactory(ctx, controllerpkg.ContextOptions{
		Kubeconfig:         kubeconfig,
		KubernetesAPIQPS:   200,
		KubernetesAPIBurst: 400,
		IssuerOptions:      controllerpkg.IssuerOptions{ClusterResourceNamespace: clusterResourceNamespace},
		CertificateOptions: controllerpkg.CertificateOptions{
			// cmd/controller's defaults; at zero the trigger controller
			// would skip its failure backoff.
			CertificateRequestMinimumBackoffDuration: time.Hour,
			CertificateRequestMaximumBackoffDuration: 32 * time.Hour,
			CopiedAnnotationPrefixes:                 []string{"*", "-kubectl.kubernetes.io/", "-fluxcd.io/", "-argocd.argoproj.io/"},
		},
	})
	if err != nil {
		return nil, fmt.Errorf("cert-manager controller context: %w", err)
	}
	known := controllerpkg.Known()
	var ifaces []controllerpkg.Interface
	for _, name := range CertManagerControllers {
		construct, ok := known[name]
		if !ok {
			return nil, fmt.Errorf("cert-manager controller %q is not registered", name)
		}
		iface, err := construct(factory)
		if err != nil {
			return nil, fmt.Errorf("constructing cert-manager controller %q: %w", name, err)
		}
		ifaces = append(ifaces, iface)
	}
	// Every constructor has registered its informers: start them.
	cctx, err := factory.Build()
	if err != nil {
		return nil, err
	}
	cctx.SharedInformerFactory.Start(ctx.Done())
	cctx.KubeSharedInformerFactory.Start(ctx.Done())
	cctx.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())

	var wg sync.WaitGroup
	for i, iface := range ifaces {
		wg.Add(1)
		go func(name string, c controllerpkg.Interface) {
			defer wg.Done()
			if err := c.Run(certManagerWorkers, ctx); err != nil {
				log.Error(err, "cert-manager controller stopped", "controller", name)
			}
		}(CertManagerControllers[i], iface)
	}
	return wg.Wait, nil
}
