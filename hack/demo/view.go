package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/certctl-io/ejbca-issuer/api/v1alpha1"
)

// view prints what `kubectl get cert-manager -A` and `kubectl get secrets`
// would, for a machine without kubectl.
func view(args []string) error {
	fs := flag.NewFlagSet("view", flag.ContinueOnError)
	kubeconfig := fs.String("kubeconfig", ".demo/kubeconfig", "kubeconfig the demo wrote")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", *kubeconfig)
	if err != nil {
		return fmt.Errorf("%w (is `make demo` running?)", err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, cmapi.AddToScheme, v1alpha1.AddToScheme} {
		if err := add(scheme); err != nil {
			return err
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	defer w.Flush()

	var issuers v1alpha1.EJBCAIssuerList
	var clusterIssuers v1alpha1.EJBCAClusterIssuerList
	if err := c.List(ctx, &issuers); err != nil {
		return err
	}
	if err := c.List(ctx, &clusterIssuers); err != nil {
		return err
	}
	fmt.Fprintln(w, "ISSUER\tREADY\tREASON\tMESSAGE")
	for i := range issuers.Items {
		row(w, "ejbcaissuer/"+issuers.Items[i].Namespace+"/"+issuers.Items[i].Name, issuers.Items[i].Status.ReadyCondition())
	}
	for i := range clusterIssuers.Items {
		row(w, "ejbcaclusterissuer/"+clusterIssuers.Items[i].Name, clusterIssuers.Items[i].Status.ReadyCondition())
	}

	var crts cmapi.CertificateList
	if err := c.List(ctx, &crts); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nCERTIFICATE\tREADY\tSECRET\tREVISION\tMESSAGE")
	for _, crt := range crts.Items {
		ready, msg := "", ""
		for _, cond := range crt.Status.Conditions {
			if cond.Type == cmapi.CertificateConditionReady {
				ready, msg = string(cond.Status), cond.Message
			}
		}
		rev := "-"
		if crt.Status.Revision != nil {
			rev = fmt.Sprint(*crt.Status.Revision)
		}
		fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\t%s\n", crt.Namespace, crt.Name, ready, crt.Spec.SecretName, rev, msg)
	}

	var crs cmapi.CertificateRequestList
	if err := c.List(ctx, &crs); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nCERTIFICATEREQUEST\tAPPROVED\tREADY\tREASON\tMESSAGE")
	for _, cr := range crs.Items {
		approved, ready, reason, msg := "", "", "", ""
		for _, cond := range cr.Status.Conditions {
			switch cond.Type {
			case cmapi.CertificateRequestConditionApproved:
				approved = string(cond.Status)
			case cmapi.CertificateRequestConditionReady:
				ready, reason, msg = string(cond.Status), cond.Reason, cond.Message
			}
		}
		fmt.Fprintf(w, "%s/%s\t%s\t%s\t%s\t%s\n", cr.Namespace, cr.Name, approved, ready, reason, msg)
	}

	var secrets corev1.SecretList
	if err := c.List(ctx, &secrets, client.MatchingFields{"type": string(corev1.SecretTypeTLS)}); err != nil {
		return err
	}
	fmt.Fprintln(w, "\nSECRET\tTYPE\tKEYS")
	for _, s := range secrets.Items {
		var keys []string
		for k := range s.Data {
			keys = append(keys, k)
		}
		fmt.Fprintf(w, "%s/%s\t%s\t%s\n", s.Namespace, s.Name, s.Type, strings.Join(keys, ","))
	}
	return nil
}

func row(w *tabwriter.Writer, name string, c *metav1.Condition) {
	if c == nil {
		fmt.Fprintf(w, "%s\t\t\t\n", name)
		return
	}
	fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", name, c.Status, c.Reason, c.Message)
}
