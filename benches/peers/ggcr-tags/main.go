// Command ggcr-tags is the go-containerregistry peer of the image-api
// registry benchmark (crates/image-api/benches/list_tags.rs): the tags of
// every repository PREFIX-0 .. PREFIX-(N-1) of one registry, listed with
// go-containerregistry v0.22.1 used as a library (the release `crane` is
// built from), CONCURRENCY requests in flight through one remote.Puller,
// the library's way of reusing authentication across calls. Like kubepkg's
// side, every round starts from a fresh client (a new transport and
// puller), and is timed in-process. Each repository must hold exactly the
// tag v1.
//
//	ggcr-tags -registry HOST:PORT -user U -prefix P -count N [-concurrency 32] [-rounds 1] [-insecure]
//
// The password comes from $REGISTRY_PASSWORD. Prints
// `RESULT registry_tags/ggcr <ns> ns` per round.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ggcr-tags:", err)
	os.Exit(1)
}

func round(ctx context.Context, repos []name.Repository, auth authn.Authenticator, concurrency int) error {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = concurrency
	p, err := remote.NewPuller(remote.WithAuth(auth), remote.WithTransport(tr), remote.WithContext(ctx))
	if err != nil {
		return err
	}
	defer tr.CloseIdleConnections()
	sem := make(chan struct{}, concurrency)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, r := range repos {
		wg.Add(1)
		sem <- struct{}{}
		go func(r name.Repository) {
			defer wg.Done()
			defer func() { <-sem }()
			tags, err := p.List(ctx, r)
			if err == nil && (len(tags) != 1 || tags[0] != "v1") {
				err = fmt.Errorf("%s: tags %v, want [v1]", r, tags)
			}
			if err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		}(r)
	}
	wg.Wait()
	return first
}

func main() {
	registry := flag.String("registry", "", "registry host:port")
	user := flag.String("user", "", "user name")
	prefix := flag.String("prefix", "kubepkg-bench/tags", "repository prefix")
	count := flag.Int("count", 200, "repositories")
	concurrency := flag.Int("concurrency", 32, "requests in flight")
	rounds := flag.Int("rounds", 1, "timed rounds")
	insecure := flag.Bool("insecure", false, "plain http")
	flag.Parse()
	if *registry == "" {
		fail(errors.New("-registry is required"))
	}
	auth := &authn.Basic{Username: *user, Password: os.Getenv("REGISTRY_PASSWORD")}
	var opts []name.Option
	if *insecure {
		opts = append(opts, name.Insecure)
	}
	repos := make([]name.Repository, 0, *count)
	for i := 0; i < *count; i++ {
		r, err := name.NewRepository(fmt.Sprintf("%s/%s-%d", *registry, *prefix, i), opts...)
		if err != nil {
			fail(err)
		}
		repos = append(repos, r)
	}
	ctx := context.Background()
	for i := 0; i < *rounds; i++ {
		start := time.Now()
		if err := round(ctx, repos, auth, *concurrency); err != nil {
			fail(err)
		}
		fmt.Printf("RESULT registry_tags/ggcr %d ns\n", time.Since(start).Nanoseconds())
	}
}
