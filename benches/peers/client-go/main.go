// Command client-go is the client-go peer of the kubepkg-k8s-api
// benchmarks (crates/k8s-api/benches): the same work as kubepkg's side,
// written the way one would with client-go v0.35 (the release of the local
// control plane), with the client-side rate limit of kubepkg's defaults
// (500 QPS, burst 1000). Subcommands:
//
//	list   -kubeconfig F -namespace NS [-page-size 500]
//	       every ConfigMap of NS, pages of 500, one compact JSON object per
//	       line on stdout (what list_configmaps's kubepkg child does)
//	apply  -kubeconfig F -file BUNDLE [-warm WARM] [-concurrency 16] [-field-manager M]
//	       server-side apply of every document of BUNDLE (parse, discovery
//	       through a cached REST mapper, dynamic client), CONCURRENCY in
//	       flight; WARM is applied first, untimed; prints
//	       `RESULT apply <ns> ns`
//	fanout -ca-file F -token-file T -namespace NS -selector S -servers A,B,... [-rounds 10] [-expect N]
//	       one clientset per server; per round the list on the first server
//	       alone and on all of them at once; prints
//	       `RESULT one <ns> ns` and `RESULT all <ns> ns` per round
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"
	"k8s.io/client-go/tools/clientcmd"
)

const (
	qps   = 500
	burst = 1000
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, "client-go peer:", err)
	os.Exit(1)
}

func fromKubeconfig(path string) *rest.Config {
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		fail(err)
	}
	cfg.QPS, cfg.Burst = qps, burst
	return cfg
}

func main() {
	if len(os.Args) < 2 {
		fail(errors.New("usage: client-go list|apply|fanout [flags]"))
	}
	switch os.Args[1] {
	case "list":
		list(os.Args[2:])
	case "apply":
		apply(os.Args[2:])
	case "fanout":
		fanout(os.Args[2:])
	default:
		fail(fmt.Errorf("unknown subcommand %q", os.Args[1]))
	}
}

func list(args []string) {
	fs := flag.NewFlagSet("list", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file")
	ns := fs.String("namespace", "", "namespace (empty: all)")
	pageSize := fs.Int64("page-size", 500, "objects per page")
	_ = fs.Parse(args)
	cs, err := kubernetes.NewForConfig(fromKubeconfig(*kubeconfig))
	if err != nil {
		fail(err)
	}
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	enc := json.NewEncoder(out)
	ctx := context.Background()
	opts := metav1.ListOptions{Limit: *pageSize}
	for {
		page, err := cs.CoreV1().ConfigMaps(*ns).List(ctx, opts)
		if err != nil {
			fail(err)
		}
		for i := range page.Items {
			cm := &page.Items[i]
			// List items come without their type; kubepkg writes it.
			cm.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"}
			if err := enc.Encode(cm); err != nil {
				fail(err)
			}
		}
		if page.Continue == "" {
			break
		}
		opts.Continue = page.Continue
	}
	if err := out.Flush(); err != nil {
		fail(err)
	}
}

// applier applies documents through discovery and the dynamic client.
type applier struct {
	dyn     dynamic.Interface
	mapper  *restmapper.DeferredDiscoveryRESTMapper
	manager string
}

func newApplier(cfg *rest.Config, manager string) *applier {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		fail(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		fail(err)
	}
	return &applier{
		dyn:     dyn,
		mapper:  restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc)),
		manager: manager,
	}
}

func parse(data []byte) ([]*unstructured.Unstructured, error) {
	dec := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
	var objs []*unstructured.Unstructured
	for {
		var m map[string]interface{}
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return objs, nil
			}
			return nil, err
		}
		if len(m) == 0 {
			continue
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
}

// apply applies every object, concurrency at a time; the first error wins.
func (a *applier) apply(ctx context.Context, objs []*unstructured.Unstructured, concurrency int) error {
	var mu sync.Mutex
	var firstErr error
	work := make(chan *unstructured.Unstructured)
	var wg sync.WaitGroup
	for w := 0; w < concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for obj := range work {
				if err := a.one(ctx, obj); err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
				}
			}
		}()
	}
	for _, o := range objs {
		work <- o
	}
	close(work)
	wg.Wait()
	return firstErr
}

func (a *applier) one(ctx context.Context, obj *unstructured.Unstructured) error {
	gvk := obj.GroupVersionKind()
	m, err := a.mapper.RESTMapping(schema.GroupKind{Group: gvk.Group, Kind: gvk.Kind}, gvk.Version)
	if err != nil {
		return fmt.Errorf("mapping %s: %w", gvk, err)
	}
	var ri dynamic.ResourceInterface = a.dyn.Resource(m.Resource)
	if m.Scope.Name() == meta.RESTScopeNameNamespace {
		ri = a.dyn.Resource(m.Resource).Namespace(obj.GetNamespace())
	}
	if _, err := ri.Apply(ctx, obj.GetName(), obj, metav1.ApplyOptions{FieldManager: a.manager, Force: true}); err != nil {
		return fmt.Errorf("applying %s %s/%s: %w", gvk.Kind, obj.GetNamespace(), obj.GetName(), err)
	}
	return nil
}

func apply(args []string) {
	fs := flag.NewFlagSet("apply", flag.ExitOnError)
	kubeconfig := fs.String("kubeconfig", "", "kubeconfig file")
	file := fs.String("file", "", "bundle to apply (timed)")
	warm := fs.String("warm", "", "bundle to apply first (untimed)")
	concurrency := fs.Int("concurrency", 16, "applies in flight")
	manager := fs.String("field-manager", "client-go-bench", "field manager")
	_ = fs.Parse(args)
	a := newApplier(fromKubeconfig(*kubeconfig), *manager)
	ctx := context.Background()
	if *warm != "" {
		data, err := os.ReadFile(*warm)
		if err != nil {
			fail(err)
		}
		objs, err := parse(data)
		if err != nil {
			fail(err)
		}
		if err := a.apply(ctx, objs, *concurrency); err != nil {
			fail(err)
		}
	}
	data, err := os.ReadFile(*file)
	if err != nil {
		fail(err)
	}
	start := time.Now()
	objs, err := parse(data)
	if err != nil {
		fail(err)
	}
	err = a.apply(ctx, objs, *concurrency)
	took := time.Since(start)
	if err != nil {
		fail(err)
	}
	fmt.Printf("RESULT apply %d ns\n", took.Nanoseconds())
	fmt.Printf("applied %d objects\n", len(objs))
}

func fanout(args []string) {
	fs := flag.NewFlagSet("fanout", flag.ExitOnError)
	caFile := fs.String("ca-file", "", "CA bundle of the servers")
	tokenFile := fs.String("token-file", "", "bearer token file")
	ns := fs.String("namespace", "", "namespace")
	selector := fs.String("selector", "", "label selector")
	servers := fs.String("servers", "", "comma-separated https://host:port list")
	rounds := fs.Int("rounds", 10, "timed rounds")
	warmup := fs.Int("warmup", 3, "untimed rounds")
	expect := fs.Int("expect", -1, "objects each list must return")
	_ = fs.Parse(args)
	token, err := os.ReadFile(*tokenFile)
	if err != nil {
		fail(err)
	}
	var clients []*kubernetes.Clientset
	for _, s := range strings.Split(*servers, ",") {
		cfg := &rest.Config{
			Host:            s,
			BearerToken:     strings.TrimSpace(string(token)),
			TLSClientConfig: rest.TLSClientConfig{CAFile: *caFile},
			QPS:             qps,
			Burst:           burst,
		}
		cs, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			fail(err)
		}
		clients = append(clients, cs)
	}
	ctx := context.Background()
	listOne := func(cs *kubernetes.Clientset) error {
		l, err := cs.CoreV1().ConfigMaps(*ns).List(ctx, metav1.ListOptions{LabelSelector: *selector})
		if err != nil {
			return err
		}
		if *expect >= 0 && len(l.Items) != *expect {
			return fmt.Errorf("listed %d, want %d", len(l.Items), *expect)
		}
		return nil
	}
	listAll := func() error {
		errs := make(chan error, len(clients))
		for _, cs := range clients {
			go func(cs *kubernetes.Clientset) { errs <- listOne(cs) }(cs)
		}
		var first error
		for range clients {
			if err := <-errs; err != nil && first == nil {
				first = err
			}
		}
		return first
	}
	for i := 0; i < *warmup; i++ {
		if err := listAll(); err != nil {
			fail(err)
		}
	}
	for i := 0; i < *rounds; i++ {
		start := time.Now()
		if err := listOne(clients[0]); err != nil {
			fail(err)
		}
		one := time.Since(start)
		start = time.Now()
		if err := listAll(); err != nil {
			fail(err)
		}
		all := time.Since(start)
		fmt.Printf("RESULT one %d ns\nRESULT all %d ns\n", one.Nanoseconds(), all.Nanoseconds())
	}
}
