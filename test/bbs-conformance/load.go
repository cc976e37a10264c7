package main

// The load scenario (-scenario load): Diego's Go client as the load generator for bench/bbs.ts. Each of -clients
// goroutines does what Cloud Controller does to start an app and look at it, in a loop for -duration: DesireLRP
// with a fresh process guid, DesiredLRPByProcessGuid of it, ActualLRPs filtered by it. All goroutines share one
// client (one connection pool with -clients idle connections, as Cloud Controller configures its BBS client). It
// prints one JSON line: round trips, errors, and latency percentiles per call.

import (
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"sync"
	"time"

	"code.cloudfoundry.org/bbs"
	"code.cloudfoundry.org/bbs/models"
)

type loadResult struct {
	Clients    int                           `json:"clients"`
	Seconds    float64                       `json:"seconds"`
	RoundTrips int                           `json:"roundTrips"`
	Errors     int                           `json:"errors"`
	FirstError string                        `json:"firstError,omitempty"`
	Calls      map[string]map[string]float64 `json:"calls"`
}

func percentiles(d []time.Duration) map[string]float64 {
	if len(d) == 0 {
		return map[string]float64{"n": 0}
	}
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
	at := func(p float64) float64 {
		i := int(p * float64(len(d)-1))
		return float64(d[i].Microseconds()) / 1000
	}
	return map[string]float64{"n": float64(len(d)), "p50": at(0.50), "p90": at(0.90), "p99": at(0.99), "max": at(1)}
}

func runLoad(cfg bbs.ClientConfig, clients int, duration time.Duration, prefix string) {
	cfg.MaxIdleConnsPerHost = clients
	cfg.RequestTimeout = 30 * time.Second
	c, err := bbs.NewClientWithConfig(cfg)
	check("client", err)
	var mu sync.Mutex
	calls := map[string][]time.Duration{}
	res := loadResult{Clients: clients}
	record := func(call string, took time.Duration, err error) bool {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			res.Errors++
			if res.FirstError == "" {
				res.FirstError = fmt.Sprintf("%s: %v", call, err)
			}
			return false
		}
		calls[call] = append(calls[call], took)
		return true
	}
	start := time.Now()
	deadline := start.Add(duration)
	var wg sync.WaitGroup
	for g := 0; g < clients; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for n := 0; time.Now().Before(deadline); n++ {
				guid := fmt.Sprintf("%s-%d-%d", prefix, g, n)
				lrp := &models.DesiredLRP{
					ProcessGuid: guid,
					Domain:      "cf-apps",
					RootFs:      "preloaded:cflinuxfs4",
					Instances:   1,
					MemoryMb:    256,
					DiskMb:      1024,
					LogGuid:     guid,
					Ports:       []uint32{8080},
					MetricTags:  map[string]*models.MetricTagValue{"source_id": {Static: guid}},
					Action:      models.WrapAction(&models.RunAction{Path: "/tmp/lifecycle/launcher", Args: []string{"app"}, User: "vcap"}),
				}
				t := time.Now()
				err := c.DesireLRP(logger, tid(), lrp)
				if !record("desire", time.Since(t), err) {
					continue
				}
				t = time.Now()
				_, err = c.DesiredLRPByProcessGuid(logger, tid(), guid)
				if !record("get", time.Since(t), err) {
					continue
				}
				t = time.Now()
				_, err = c.ActualLRPs(logger, tid(), models.ActualLRPFilter{ProcessGuid: guid})
				if record("list-actuals", time.Since(t), err) {
					mu.Lock()
					res.RoundTrips++
					mu.Unlock()
				}
			}
		}(g)
	}
	wg.Wait()
	res.Seconds = time.Since(start).Seconds()
	res.Calls = map[string]map[string]float64{}
	for call, d := range calls {
		res.Calls[call] = percentiles(d)
	}
	out, _ := json.Marshal(res)
	fmt.Fprintln(os.Stdout, string(out))
}
