package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	"github.com/cert-manager/cert-manager/pkg/util/pki"
	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crlog "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

// view prints, for a machine without kubectl, what the demo's API server
// holds: the issuers of both kinds, Certificates, CertificateRequests and
// Secrets, each with its Ready condition, sorted by namespace and name.
func view(args []string) error {
	fs := flag.NewFlagSet("view", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", ".demo/kubeconfig", "kubeconfig the demo wrote")
	if err := fs.Parse(args); err != nil {
		return err
	}
	crlog.SetLogger(logr.Discard())
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("%w (is `make demo` running?)", err)
	}
	cfg.Timeout = 10 * time.Second
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return fmt.Errorf("%w (is `make demo` running?)", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := viewText(ctx, c)
	if err != nil {
		return fmt.Errorf("%w (is `make demo` running?)", err)
	}
	_, err = io.WriteString(os.Stdout, out)
	return err
}

func viewText(ctx context.Context, c client.Client) (string, error) {
	var issuers v1alpha1.EJBCAIssuerList
	var clusterIssuers v1alpha1.EJBCAClusterIssuerList
	var crts cmapi.CertificateList
	var crs cmapi.CertificateRequestList
	var secrets corev1.SecretList
	for _, l := range []client.ObjectList{&issuers, &clusterIssuers, &crts, &crs, &secrets} {
		if err := c.List(ctx, l); err != nil {
			return "", err
		}
	}

	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)

	type issuerRow struct {
		kind, name string
		ready      *metav1.Condition
	}
	var rows []issuerRow
	for i := range clusterIssuers.Items {
		iss := &clusterIssuers.Items[i]
		rows = append(rows, issuerRow{v1alpha1.ClusterIssuerKind, iss.Name, iss.Status.ReadyCondition()})
	}
	for i := range issuers.Items {
		iss := &issuers.Items[i]
		rows = append(rows, issuerRow{v1alpha1.IssuerKind, iss.Namespace + "/" + iss.Name, iss.Status.ReadyCondition()})
	}
	slices.SortFunc(rows, func(a, b issuerRow) int { return cmp.Or(cmp.Compare(a.kind, b.kind), cmp.Compare(a.name, b.name)) })
	fmt.Fprintln(w, "ISSUER\tREADY\tREASON\tMESSAGE")
	for _, r := range rows {
		status, reason, msg := "-", "-", ""
		if r.ready != nil {
			status, reason, msg = string(r.ready.Status), r.ready.Reason, r.ready.Message
		}
		fmt.Fprintf(w, "%s %s\t%s\t%s\t%s\n", r.kind, r.name, status, reason, oneLine(msg))
	}

	slices.SortFunc(crts.Items, func(a, b cmapi.Certificate) int { return byKey(&a, &b) })
	fmt.Fprintln(w, "\nCERTIFICATE\tREADY\tREASON\tREVISION\tSECRET\tISSUER\tMESSAGE")
	for _, crt := range crts.Items {
		status, reason, msg := "-", "-", ""
		for _, cond := range crt.Status.Conditions {
			if cond.Type == cmapi.CertificateConditionReady {
				status, reason, msg = string(cond.Status), cond.Reason, cond.Message
			}
		}
		rev := "-"
		if crt.Status.Revision != nil {
			rev = fmt.Sprint(*crt.Status.Revision)
		}
		fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\t%s\t%s %s\t%s\n", crt.Namespace, crt.Name, status, reason, rev,
			crt.Spec.SecretName, crt.Spec.IssuerRef.Kind, crt.Spec.IssuerRef.Name, oneLine(msg))
	}

	slices.SortFunc(crs.Items, func(a, b cmapi.CertificateRequest) int { return byKey(&a, &b) })
	fmt.Fprintln(w, "\nCERTIFICATEREQUEST\tAPPROVED\tREADY\tREASON\tMESSAGE")
	for _, cr := range crs.Items {
		approved, status, reason, msg := "-", "-", "-", ""
		for _, cond := range cr.Status.Conditions {
			switch cond.Type {
			case cmapi.CertificateRequestConditionApproved:
				approved = string(cond.Status)
			case cmapi.CertificateRequestConditionDenied:
				if cond.Status == "True" {
					approved = "Denied"
				}
			case cmapi.CertificateRequestConditionReady:
				status, reason, msg = string(cond.Status), cond.Reason, cond.Message
			}
		}
		fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\t%s\n", cr.Namespace, cr.Name, approved, status, reason, oneLine(msg))
	}

	slices.SortFunc(secrets.Items, func(a, b corev1.Secret) int { return byKey(&a, &b) })
	fmt.Fprintln(w, "\nSECRET\tTYPE\tKEYS\tCERTIFICATE (tls.crt)")
	for _, s := range secrets.Items {
		fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\n", s.Namespace, s.Name, s.Type, strings.Join(keys(s.Data), ","), leafSummary(s.Data[corev1.TLSCertKey]))
	}
	if err := w.Flush(); err != nil {
		return "", err
	}
	return b.String(), nil
}

func byKey(a, b client.Object) int {
	return cmp.Or(cmp.Compare(a.GetNamespace(), b.GetNamespace()), cmp.Compare(a.GetName(), b.GetName()))
}

// leafSummary names the first certificate of a PEM chain: subject, serial
// and expiry ("" when there is none).
func leafSummary(pemChain []byte) string {
	if len(pemChain) == 0 {
		return ""
	}
	chain, err := pki.DecodeX509CertificateChainBytes(pemChain)
	if err != nil || len(chain) == 0 {
		return "not a PEM certificate"
	}
	leaf := chain[0]
	return fmt.Sprintf("%s, serial %X, until %s", leaf.Subject, leaf.SerialNumber, leaf.NotAfter.UTC().Format(time.RFC3339))
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
