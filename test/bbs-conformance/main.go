// Command bbs-conformance drives the BBS facade with Diego's own Go client (code.cloudfoundry.org/bbs,
// unmodified) over plain HTTP. test/integration/bbs-conformance.test.ts starts the facade and one simulated
// cell, then runs, from this directory:
//
//	GOWORK=off GOFLAGS=-mod=readonly go run . -url http://127.0.0.1:PORT -cell CELL_ID
//
// Each step prints "ok <step>"; the first failure exits non-zero with a message.
//
// code.cloudfoundry.org/bbs has no go.mod of its own; go.mod explains which versions of it and of its imports
// the Go module proxy serves and are pinned.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"code.cloudfoundry.org/bbs"
	"code.cloudfoundry.org/bbs/events"
	"code.cloudfoundry.org/bbs/models"
	"code.cloudfoundry.org/bbs/trace"
	"code.cloudfoundry.org/lager/v3"
)

var (
	logger lager.Logger
	client bbs.InternalClient
)

func fail(step string, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "FAIL %s: %s\n", step, fmt.Sprintf(format, args...))
	os.Exit(1)
}

func check(step string, err error) {
	if err != nil {
		fail(step, "%v", err)
	}
}

func ok(step string) { fmt.Printf("ok %s\n", step) }

// poll calls cond every 200 ms until it returns "" (done) or the timeout passes; it returns the last reason.
func poll(timeout time.Duration, cond func() string) string {
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" || time.Now().After(deadline) {
			return why
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func tid() string { return trace.GenerateTraceID() }

func main() {
	url := flag.String("url", os.Getenv("BBS_URL"), "BBS URL, e.g. http://127.0.0.1:8889 (default $BBS_URL)")
	cellID := flag.String("cell", os.Getenv("BBS_CELL_ID"), "id of the simulated cell (default $BBS_CELL_ID)")
	scenario := flag.String("scenario", "api", "api: the BBS API with a simulated cell; cell: apps on a real cell (cell.go); cell-states: cfdot cell-states (cellstates.go); locket: cfdot locks/presences and the lock runner (locket.go); load: bench/bbs.ts (load.go)")
	files := flag.String("files", "", "cell scenario: base URL of the HTTP/1.0 server with lifecycle.tgz, droplet.tgz")
	caFile := flag.String("ca", "", "cell scenario: PEM file of the cell's instance identity CA")
	processGuid := flag.String("guid", "", "cell-states scenario: the process guid of an app running on -cell")
	clients := flag.Int("clients", 1, "load scenario: concurrent callers")
	duration := flag.Duration("duration", 10*time.Second, "load scenario: how long")
	tlsCA := flag.String("tls-ca", "", "the BBS's CA (with -tls-cert, -tls-key: mutual TLS, an https:// URL)")
	tlsCert := flag.String("tls-cert", "", "client certificate")
	tlsKey := flag.String("tls-key", "", "client key")
	locketAddress := flag.String("locket", "", "locket scenario: the Locket API's host:port (mutual TLS with -tls-ca, -tls-cert, -tls-key)")
	componentLock := flag.String("component-lock", "diego-operator-controller", "locket scenario: a lock the operator holds")
	flag.Parse()
	if *scenario == "locket" {
		logger = lager.NewLogger("locket-conformance")
		logger.RegisterSink(lager.NewWriterSink(os.Stderr, lager.ERROR))
		runLocketScenario(*locketAddress, *cellID, *componentLock, *tlsCA, *tlsCert, *tlsKey, fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000))
		return
	}
	if *scenario == "load" && *url != "" {
		logger = lager.NewLogger("bbs-load")
		logger.RegisterSink(lager.NewWriterSink(os.Stderr, lager.ERROR))
		cfg := bbs.ClientConfig{URL: *url, IsTLS: *tlsCA != "", CAFile: *tlsCA, CertFile: *tlsCert, KeyFile: *tlsKey}
		runLoad(cfg, *clients, *duration, fmt.Sprintf("load-%d", time.Now().UnixNano()%1_000_000_000))
		return
	}
	if *url == "" || *cellID == "" {
		fmt.Fprintln(os.Stderr, "usage: bbs-conformance -url http://HOST:PORT -cell CELL_ID")
		os.Exit(2)
	}

	logger = lager.NewLogger("bbs-conformance")
	logger.RegisterSink(lager.NewWriterSink(os.Stderr, lager.ERROR))

	var err error
	client, err = bbs.NewClientWithConfig(bbs.ClientConfig{
		URL: *url, IsTLS: *tlsCA != "", CAFile: *tlsCA, CertFile: *tlsCert, KeyFile: *tlsKey,
		RequestTimeout: 30 * time.Second,
	})
	check("client", err)

	suffix := fmt.Sprintf("%d", time.Now().UnixNano()%1_000_000)
	if *scenario == "cell" {
		runCellScenario(*cellID, *files, *caFile, suffix)
		return
	}
	if *scenario == "cell-states" {
		runCellStatesScenario(*cellID, *processGuid)
		return
	}

	// --- Event streams, open for the whole scenario (checked in events.go after each part)
	lrpEvents := subscribe("subscribe-instance-events", func() (events.EventSource, error) {
		return client.SubscribeToInstanceEvents(logger)
	})
	defer lrpEvents.close()
	taskEvents := subscribe("subscribe-task-events", func() (events.EventSource, error) {
		return client.SubscribeToTaskEvents(logger)
	})
	defer taskEvents.close()

	// --- Ping, domains
	if !client.Ping(logger, tid()) {
		fail("ping", "Ping returned false")
	}
	ok("ping")

	check("upsert-domain", client.UpsertDomain(logger, tid(), "cf-apps", 0))
	check("upsert-domain", client.UpsertDomain(logger, tid(), "cf-tasks", 2*time.Minute))
	domains, err := client.Domains(logger, tid())
	check("domains", err)
	sort.Strings(domains)
	if !contains(domains, "cf-apps") || !contains(domains, "cf-tasks") {
		fail("domains", "want cf-apps and cf-tasks, got %v", domains)
	}
	ok("domains")

	// --- Desired LRP
	guid := "Conformance_App-" + suffix
	cfRouter := json.RawMessage(`[{"hostnames":["conformance.example"],"port":8080}]`)
	lrp := &models.DesiredLRP{
		ProcessGuid: guid,
		Domain:      "cf-apps",
		RootFs:      "preloaded:cflinuxfs4",
		Instances:   2,
		MemoryMb:    64,
		DiskMb:      64,
		LogGuid:     "log-" + suffix,
		Annotation:  "v1",
		Ports:       []uint32{8080},
		Action: models.WrapAction(&models.RunAction{
			Path: "/bin/sh",
			Args: []string{"-c", "sleep infinity"},
			User: "vcap",
		}),
		MetricTags: map[string]*models.MetricTagValue{
			"source_id": {Static: "app-" + suffix},
		},
		Routes: &models.Routes{"cf-router": &cfRouter},
	}
	check("desire-lrp", client.DesireLRP(logger, tid(), lrp))
	// Diego creates the instances within the call: they are listed at once (the cell may have claimed them).
	checkInstances("desire-lrp", guid, 2, models.ActualLRPStateUnclaimed, models.ActualLRPStateClaimed,
		models.ActualLRPStateRunning)
	ok("desire-lrp")

	// An LRP no cell can run stays UNCLAIMED: right after DesireLRP all of its instances are listed UNCLAIMED.
	unplaceable := *lrp
	unplaceable.ProcessGuid = guid + "-unplaceable"
	unplaceable.RootFs = "preloaded:no-such-stack"
	unplaceable.Instances = 3
	unplaceable.Routes = nil
	check("desire-lrp-unclaimed", client.DesireLRP(logger, tid(), &unplaceable))
	checkInstances("desire-lrp-unclaimed", unplaceable.ProcessGuid, 3, models.ActualLRPStateUnclaimed)
	check("desire-lrp-unclaimed", client.RemoveDesiredLRP(logger, tid(), unplaceable.ProcessGuid))
	ok("desire-lrp-unclaimed")

	desired, err := client.DesiredLRPs(logger, tid(), models.DesiredLRPFilter{Domain: "cf-apps"})
	check("desired-lrps", err)
	if !anyDesired(desired, guid) {
		fail("desired-lrps", "%s not in list of %d", guid, len(desired))
	}
	ok("desired-lrps")

	got, err := client.DesiredLRPByProcessGuid(logger, tid(), guid)
	check("desired-lrp-by-process-guid", err)
	switch {
	case got.ProcessGuid != guid:
		fail("desired-lrp-by-process-guid", "process guid %q", got.ProcessGuid)
	case got.Instances != 2 || got.Domain != "cf-apps" || got.Annotation != "v1" || got.MemoryMb != 64:
		fail("desired-lrp-by-process-guid", "unexpected fields: %+v", got)
	case got.MetricTags["source_id"].GetStatic() != "app-"+suffix:
		fail("desired-lrp-by-process-guid", "metric_tags %v", got.MetricTags)
	case got.Action == nil || got.Action.RunAction == nil || got.Action.RunAction.Path != "/bin/sh":
		fail("desired-lrp-by-process-guid", "action %v", got.Action)
	case got.ModificationTag == nil || got.ModificationTag.Epoch == "":
		fail("desired-lrp-by-process-guid", "modification tag %v", got.ModificationTag)
	}
	ok("desired-lrp-by-process-guid")

	infos, err := client.DesiredLRPSchedulingInfos(logger, tid(), models.DesiredLRPFilter{ProcessGuids: []string{guid}})
	check("desired-lrp-scheduling-infos", err)
	if len(infos) != 1 || infos[0].ProcessGuid != guid || infos[0].Instances != 2 || infos[0].MemoryMb != 64 {
		fail("desired-lrp-scheduling-infos", "got %v", infos)
	}
	ok("desired-lrp-scheduling-infos")

	// Route-emitter's sync: routing infos carry the key, instances, routes and tags, not the run recipe.
	routing, err := client.DesiredLRPRoutingInfos(logger, tid(), models.DesiredLRPFilter{ProcessGuids: []string{guid}})
	check("desired-lrp-routing-infos", err)
	switch {
	case len(routing) != 1 || routing[0].ProcessGuid != guid || routing[0].Instances != 2:
		fail("desired-lrp-routing-infos", "got %v", routing)
	case routing[0].Action != nil || routing[0].RootFs != "" || routing[0].LogGuid != "log-"+suffix:
		fail("desired-lrp-routing-infos", "want only routing fields, got %+v", routing[0])
	case routing[0].Routes == nil || (*routing[0].Routes)["cf-router"] == nil ||
		!strings.Contains(string(*(*routing[0].Routes)["cf-router"]), "conformance.example"):
		fail("desired-lrp-routing-infos", "routes %v", routing[0].Routes)
	case routing[0].MetricTags["source_id"].GetStatic() != "app-"+suffix:
		fail("desired-lrp-routing-infos", "metric_tags %v", routing[0].MetricTags)
	}
	ok("desired-lrp-routing-infos")

	// --- Actual LRPs
	waitRunning := func(step string, n int) []*models.ActualLRP {
		var actuals []*models.ActualLRP
		why := poll(90*time.Second, func() string {
			var err error
			actuals, err = client.ActualLRPs(logger, tid(), models.ActualLRPFilter{ProcessGuid: guid})
			if err != nil {
				return err.Error()
			}
			running := 0
			for _, a := range actuals {
				if a.State == models.ActualLRPStateRunning {
					running++
				}
			}
			if running != n || len(actuals) != n {
				return fmt.Sprintf("%d actuals, %d RUNNING: %s", len(actuals), running, describe(actuals))
			}
			return ""
		})
		if why != "" {
			fail(step, "want %d RUNNING: %s", n, why)
		}
		indexes := map[int32]bool{}
		for _, a := range actuals {
			if a.ProcessGuid != guid || a.Domain != "cf-apps" || a.CellId != *cellID || a.InstanceGuid == "" {
				fail(step, "unexpected actual %v", a)
			}
			indexes[a.Index] = true
		}
		for i := range n {
			if !indexes[int32(i)] {
				fail(step, "missing index %d: %s", i, describe(actuals))
			}
		}
		return actuals
	}
	waitRunning("actual-lrps-by-process-guid", 2)
	ok("actual-lrps-by-process-guid")

	onCell, err := client.ActualLRPs(logger, tid(), models.ActualLRPFilter{CellID: *cellID})
	check("actual-lrps-by-cell-id", err)
	mine := 0
	for _, a := range onCell {
		if a.CellId != *cellID {
			fail("actual-lrps-by-cell-id", "actual on cell %q", a.CellId)
		}
		if a.ProcessGuid == guid {
			mine++
		}
	}
	if mine != 2 {
		fail("actual-lrps-by-cell-id", "want 2 of %s on %s, got %s", guid, *cellID, describe(onCell))
	}
	other, err := client.ActualLRPs(logger, tid(), models.ActualLRPFilter{CellID: "no-such-cell"})
	check("actual-lrps-by-cell-id", err)
	if len(other) != 0 {
		fail("actual-lrps-by-cell-id", "no-such-cell has %s", describe(other))
	}
	ok("actual-lrps-by-cell-id")

	update := &models.DesiredLRPUpdate{}
	update.SetInstances(3)
	check("update-desired-lrp", client.UpdateDesiredLRP(logger, tid(), guid, update))
	// A scale-up creates the new index within the call too.
	checkInstances("update-desired-lrp", guid, 3, models.ActualLRPStateUnclaimed, models.ActualLRPStateClaimed,
		models.ActualLRPStateRunning)
	got, err = client.DesiredLRPByProcessGuid(logger, tid(), guid)
	check("update-desired-lrp", err)
	if got.Instances != 3 {
		fail("update-desired-lrp", "instances %d after update", got.Instances)
	}
	waitRunning("update-desired-lrp", 3)
	ok("update-desired-lrp")

	check("remove-desired-lrp", client.RemoveDesiredLRP(logger, tid(), guid))
	_, err = client.DesiredLRPByProcessGuid(logger, tid(), guid)
	if !isType(err, models.Error_ResourceNotFound) {
		fail("remove-desired-lrp", "DesiredLRPByProcessGuid after remove: want ResourceNotFound, got %v", err)
	}
	ok("remove-desired-lrp")
	checkLRPEvents(lrpEvents, guid, *cellID)

	// --- Task
	taskGuid := "conformance-task-" + suffix
	def := &models.TaskDefinition{
		RootFs:   "preloaded:cflinuxfs4",
		MemoryMb: 64,
		DiskMb:   64,
		LogGuid:  "log-" + suffix,
		Action: models.WrapAction(&models.RunAction{
			Path: "/bin/sh",
			Args: []string{"-c", "sleep 3600"},
			User: "vcap",
		}),
		ResultFile: "/tmp/result",
		MetricTags: map[string]*models.MetricTagValue{"source_id": {Static: "app-" + suffix}},
	}
	check("desire-task", client.DesireTask(logger, tid(), taskGuid, "cf-tasks", def))
	ok("desire-task")

	task, err := client.TaskByGuid(logger, tid(), taskGuid)
	check("task-by-guid", err)
	if task.TaskGuid != taskGuid || task.Domain != "cf-tasks" || task.TaskDefinition == nil ||
		task.TaskDefinition.MemoryMb != 64 || task.TaskDefinition.Action.GetRunAction().GetPath() != "/bin/sh" {
		fail("task-by-guid", "got %v", task)
	}
	if task.State != models.Task_Pending && task.State != models.Task_Running {
		fail("task-by-guid", "state %v", task.State)
	}
	ok("task-by-guid")

	tasks, err := client.Tasks(logger, tid())
	check("tasks", err)
	found := false
	for _, t := range tasks {
		found = found || t.TaskGuid == taskGuid
	}
	if !found {
		fail("tasks", "%s not in list of %d", taskGuid, len(tasks))
	}
	byDomain, err := client.TasksByDomain(logger, tid(), "cf-tasks")
	check("tasks", err)
	if len(byDomain) != 1 || byDomain[0].TaskGuid != taskGuid {
		fail("tasks", "TasksByDomain(cf-tasks): %v", byDomain)
	}
	ok("tasks")

	check("cancel-task", client.CancelTask(logger, tid(), taskGuid))
	why := poll(60*time.Second, func() string {
		t, err := client.TaskByGuid(logger, tid(), taskGuid)
		if err != nil {
			return err.Error()
		}
		if t.State != models.Task_Completed || !t.Failed || t.FailureReason != "task was cancelled" {
			return fmt.Sprintf("state %v failed %v reason %q", t.State, t.Failed, t.FailureReason)
		}
		return ""
	})
	if why != "" {
		fail("cancel-task", "want Completed, failed, \"task was cancelled\": %s", why)
	}
	ok("cancel-task")

	check("resolving-task", client.ResolvingTask(logger, tid(), taskGuid))
	task, err = client.TaskByGuid(logger, tid(), taskGuid)
	check("resolving-task", err)
	if task.State != models.Task_Resolving {
		fail("resolving-task", "state %v", task.State)
	}
	ok("resolving-task")

	check("delete-task", client.DeleteTask(logger, tid(), taskGuid))
	ok("delete-task")

	_, err = client.TaskByGuid(logger, tid(), taskGuid)
	if !isType(err, models.Error_ResourceNotFound) {
		fail("task-not-found", "TaskByGuid after delete: want ResourceNotFound, got %v", err)
	}
	ok("task-not-found")
	checkTaskEvents(taskEvents, taskGuid)
}

// checkInstances fails the step unless ActualLRPs lists exactly indices 0..n-1 of guid now (no waiting), each in
// one of the given states.
func checkInstances(step, guid string, n int, states ...string) {
	actuals, err := client.ActualLRPs(logger, tid(), models.ActualLRPFilter{ProcessGuid: guid})
	check(step, err)
	indexes := map[int32]bool{}
	for _, a := range actuals {
		if !contains(states, a.State) || a.Presence != models.ActualLRP_Ordinary {
			fail(step, "want %d instances in %v, got %s", n, states, describe(actuals))
		}
		indexes[a.Index] = true
	}
	for i := range n {
		if !indexes[int32(i)] {
			fail(step, "want %d instances right after the call, got %s", n, describe(actuals))
		}
	}
	if len(actuals) != n {
		fail(step, "want %d instances, got %s", n, describe(actuals))
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

func anyDesired(lrps []*models.DesiredLRP, guid string) bool {
	for _, l := range lrps {
		if l.ProcessGuid == guid {
			return true
		}
	}
	return false
}

func isType(err error, t models.Error_Type) bool {
	var e *models.Error
	return errors.As(err, &e) && e.Type == t
}

func describe(actuals []*models.ActualLRP) string {
	parts := make([]string, 0, len(actuals))
	for _, a := range actuals {
		parts = append(parts, fmt.Sprintf("%s/%d@%s:%s", a.ProcessGuid, a.Index, a.CellId, a.State))
	}
	return "[" + strings.Join(parts, " ") + "]"
}
