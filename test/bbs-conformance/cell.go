// The "cell" scenario: what a BBS client asks of a real cell actually happens in the container. Run by
// test/integration/bbs-conformance-cell.test.ts against the facade and a runc cell (cflinuxfs4 = a Debian
// rootfs), with files served by an HTTP/1.0 server (-files) and the cell's instance identity CA (-ca):
//
//	go run . -scenario cell -url http://127.0.0.1:PORT -cell CELL_ID -files http://127.0.0.1:PORT2 -ca ca.crt
//
// The app arrives as Cloud Controller sends one: the "lifecycle" (a busybox and a launcher script) as a cached
// dependency, the droplet by a download action into "." (the user's home), a sidecar beside it; the launcher
// publishes its environment, identity certificate, service binding and trusted certificates over HTTP.
package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"code.cloudfoundry.org/bbs/models"
)

func runCellScenario(cellID, files, caFile, suffix string) {
	caPEM, err := os.ReadFile(caFile)
	check("cell-setup", err)
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		fail("cell-setup", "no CA certificate in %s", caFile)
	}
	check("cell-setup", client.UpsertDomain(logger, tid(), "cf-apps", 0))

	// --- An app as Cloud Controller delivers it.
	guid := "cell-app-" + suffix
	appGuid := "app-guid-" + suffix
	lrp := &models.DesiredLRP{
		ProcessGuid: guid,
		Domain:      "cf-apps",
		RootFs:      "preloaded:cflinuxfs4",
		Instances:   2,
		MemoryMb:    128,
		DiskMb:      256,
		LogGuid:     appGuid,
		Ports:       []uint32{8080},
		CachedDependencies: []*models.CachedDependency{{
			Name: "lifecycle", From: files + "/lifecycle.tgz", To: "/tmp/lifecycle", CacheKey: "lifecycle-" + suffix,
		}},
		Setup: models.WrapAction(&models.DownloadAction{
			Artifact: "droplet", From: files + "/droplet.tgz", To: ".", User: "vcap",
		}),
		Action: models.WrapAction(&models.RunAction{
			Path: "/tmp/lifecycle/launcher", User: "vcap",
			Env: []*models.EnvironmentVariable{{Name: "FROM_ACTION", Value: "yes"}},
		}),
		Sidecars: []*models.Sidecar{{
			Action: models.WrapAction(&models.RunAction{
				Path: "/bin/sh", User: "vcap",
				Args: []string{"-c", `mkdir -p "$HOME/www" && echo sidecar-running > "$HOME/www/sidecar.txt" && exec sleep 100000`},
			}),
			MemoryMb: 16,
		}},
		EnvironmentVariables: []*models.EnvironmentVariable{{Name: "FROM_LRP", Value: "lrp"}},
		CheckDefinition:      &models.CheckDefinition{Checks: []*models.Check{{TcpCheck: &models.TCPCheck{Port: 8080}}}},
		StartTimeoutMs:       120_000,
		MetricTags:           map[string]*models.MetricTagValue{"source_id": {Static: appGuid}},
		CertificateProperties: &models.CertificateProperties{
			OrganizationalUnit: []string{"organization:org-" + suffix, "space:space-" + suffix, "app:" + appGuid},
		},
		VolumeMountedFiles:            []*models.File{{Path: "/db/uri", Content: "postgres://db.internal/" + suffix}},
		TrustedSystemCertificatesPath: "/etc/cf-system-certificates",
	}
	check("cell-desire-app", client.DesireLRP(logger, tid(), lrp))
	actuals := waitForState("cell-app-running", guid, 2, models.ActualLRPStateRunning, 240*time.Second)
	ok("cell-app-running")

	for _, a := range actuals {
		step := fmt.Sprintf("cell-app-environment-%d", a.Index)
		port := hostPort(step, a, 8080)
		base := fmt.Sprintf("http://%s:%d", a.Address, port)
		env := parseEnv(get(step, base+"/env.txt"))
		want := map[string]string{
			"INSTANCE_GUID":           a.InstanceGuid,
			"INSTANCE_INDEX":          strconv.Itoa(int(a.Index)),
			"CF_INSTANCE_GUID":        a.InstanceGuid,
			"CF_INSTANCE_INDEX":       strconv.Itoa(int(a.Index)),
			"CF_INSTANCE_IP":          a.Address,
			"CF_INSTANCE_INTERNAL_IP": a.InstanceAddress,
			"CF_INSTANCE_PORT":        strconv.Itoa(port),
			"CF_INSTANCE_ADDR":        fmt.Sprintf("%s:%d", a.Address, port),
			"CF_INSTANCE_CERT":        "/etc/cf-instance-credentials/instance.crt",
			"CF_INSTANCE_KEY":         "/etc/cf-instance-credentials/instance.key",
			"CF_SYSTEM_CERT_PATH":     "/etc/cf-system-certificates",
			"FROM_LRP":                "lrp",
			"FROM_ACTION":             "yes",
		}
		for k, v := range want {
			if env[k] != v {
				fail(step, "%s=%q, want %q (environment: %v)", k, env[k], v, env)
			}
		}
		var ports []map[string]int
		check(step, json.Unmarshal([]byte(env["CF_INSTANCE_PORTS"]), &ports))
		if len(ports) != 1 || ports[0]["external"] != port || ports[0]["internal"] != 8080 {
			fail(step, "CF_INSTANCE_PORTS=%s", env["CF_INSTANCE_PORTS"])
		}
		ok(step)

		step = fmt.Sprintf("cell-app-identity-%d", a.Index)
		chain := []byte(get(step, base+"/cert.pem"))
		block, rest := pem.Decode(chain)
		if block == nil {
			fail(step, "no certificate in %q", chain)
		}
		leaf, err := x509.ParseCertificate(block.Bytes)
		check(step, err)
		if next, _ := pem.Decode(rest); next == nil {
			fail(step, "instance.crt holds no CA after the leaf")
		}
		_, err = leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
		check(step, err)
		switch {
		case leaf.Subject.CommonName != a.InstanceGuid:
			fail(step, "CN %q, want the instance guid %q", leaf.Subject.CommonName, a.InstanceGuid)
		case !slices.Contains(leaf.Subject.OrganizationalUnit, "app:"+appGuid):
			fail(step, "OUs %v", leaf.Subject.OrganizationalUnit)
		case len(leaf.IPAddresses) != 1 || leaf.IPAddresses[0].String() != a.InstanceAddress:
			fail(step, "IP SANs %v, want %s", leaf.IPAddresses, a.InstanceAddress)
		case leaf.NotAfter.Sub(leaf.NotBefore) > 25*time.Hour:
			fail(step, "valid %v: not a short-lived certificate", leaf.NotAfter.Sub(leaf.NotBefore))
		}
		ok(step)

		step = fmt.Sprintf("cell-app-files-%d", a.Index)
		if got := get(step, base+"/binding.txt"); got != "postgres://db.internal/"+suffix+"\n" {
			fail(step, "service binding file %q", got)
		}
		if got := get(step, base+"/index.html"); got != "droplet ok\n" {
			fail(step, "the droplet (downloaded into the user's home) says %q", got)
		}
		if got := get(step, base+"/trusted.txt"); !strings.Contains(got, ".crt") {
			fail(step, "trusted certificates %q", got)
		}
		if got := get(step, base+"/sidecar.txt"); got != "sidecar-running\n" {
			fail(step, "sidecar %q", got)
		}
		ok(step)
	}

	// --- A process that daemonizes (exits 0 after forking its server) under a TCP check stays RUNNING.
	daemon := &models.DesiredLRP{
		ProcessGuid: "cell-daemon-" + suffix, Domain: "cf-apps", RootFs: "preloaded:cflinuxfs4", Instances: 1,
		MemoryMb: 64, DiskMb: 64, Ports: []uint32{8080},
		CachedDependencies: []*models.CachedDependency{{
			From: files + "/lifecycle.tgz", To: "/tmp/lifecycle", CacheKey: "lifecycle-" + suffix,
		}},
		Action: models.WrapAction(&models.RunAction{
			Path: "/bin/sh", User: "vcap",
			Args: []string{"-c", `mkdir -p "$HOME/www" && echo daemon > "$HOME/www/index.html" && /tmp/lifecycle/busybox httpd -p 8080 -h "$HOME/www" && exit 0`},
		}),
		CheckDefinition: &models.CheckDefinition{Checks: []*models.Check{{TcpCheck: &models.TCPCheck{Port: 8080}}}},
		StartTimeoutMs:  60_000,
		MetricTags:      map[string]*models.MetricTagValue{"source_id": {Static: "daemon"}},
	}
	check("cell-daemon", client.DesireLRP(logger, tid(), daemon))
	running := waitForState("cell-daemon", daemon.ProcessGuid, 1, models.ActualLRPStateRunning, 120*time.Second)
	time.Sleep(8 * time.Second) // well past the process's exit: the check keeps the instance
	after := waitForState("cell-daemon", daemon.ProcessGuid, 1, models.ActualLRPStateRunning, 5*time.Second)
	if after[0].InstanceGuid != running[0].InstanceGuid || after[0].CrashCount != 0 {
		fail("cell-daemon", "the instance was restarted: %+v", after[0])
	}
	if got := get("cell-daemon", fmt.Sprintf("http://%s:%d/", after[0].Address, hostPort("cell-daemon", after[0], 8080))); got != "daemon\n" {
		fail("cell-daemon", "answer %q", got)
	}
	ok("cell-daemon")

	// --- A sidecar that exits crashes its instance, as Diego's codependent step does.
	crashing := &models.DesiredLRP{
		ProcessGuid: "cell-sidecar-crash-" + suffix, Domain: "cf-apps", RootFs: "preloaded:cflinuxfs4",
		Instances: 1, MemoryMb: 64, DiskMb: 64,
		Action: models.WrapAction(&models.RunAction{Path: "/bin/sleep", Args: []string{"100000"}, User: "vcap"}),
		Sidecars: []*models.Sidecar{{Action: models.WrapAction(&models.RunAction{
			Path: "/bin/sh", Args: []string{"-c", "sleep 1; exit 3"}, User: "vcap", LogSource: "SIDECAR",
		})}},
		MetricTags: map[string]*models.MetricTagValue{"source_id": {Static: "sidecar"}},
	}
	check("cell-sidecar-crash", client.DesireLRP(logger, tid(), crashing))
	why := poll(120*time.Second, func() string {
		actuals, err := client.ActualLRPs(logger, tid(), models.ActualLRPFilter{ProcessGuid: crashing.ProcessGuid})
		if err != nil {
			return err.Error()
		}
		for _, a := range actuals {
			if a.CrashCount > 0 && strings.Contains(a.CrashReason, "SIDECAR: Exited with status 3") {
				return ""
			}
		}
		return "no crash for the sidecar's exit yet: " + describe(actuals)
	})
	if why != "" {
		fail("cell-sidecar-crash", "%s", why)
	}
	ok("cell-sidecar-crash")

	// --- A download cut short by an HTTP/1.0 server fails the instance's start, and only that.
	broken := *daemon
	broken.ProcessGuid = "cell-broken-download-" + suffix
	broken.CachedDependencies = []*models.CachedDependency{{
		Name: "truncated", From: files + "/truncated.tgz", To: "/tmp/broken", CacheKey: "truncated-" + suffix,
	}}
	check("cell-broken-download", client.DesireLRP(logger, tid(), &broken))
	why = poll(120*time.Second, func() string {
		actuals, err := client.ActualLRPs(logger, tid(), models.ActualLRPFilter{ProcessGuid: broken.ProcessGuid})
		if err != nil {
			return err.Error()
		}
		for _, a := range actuals {
			if a.CrashCount > 0 && a.CrashReason == "failed to download cached artifacts" {
				return ""
			}
		}
		return "not crashed with Diego's reason yet: " + describe(actuals)
	})
	if why != "" {
		fail("cell-broken-download", "%s", why)
	}
	ok("cell-broken-download")

	// --- A task with the droplet downloaded into "." and its result read back.
	taskGuid := "cell-task-" + suffix
	check("cell-task", client.DesireTask(logger, tid(), taskGuid, "cf-tasks", &models.TaskDefinition{
		RootFs: "preloaded:cflinuxfs4", MemoryMb: 64, DiskMb: 64,
		Action: models.WrapAction(models.Serial(
			&models.DownloadAction{From: files + "/droplet.tgz", To: ".", User: "vcap"},
			&models.RunAction{Path: "/bin/sh", User: "vcap", Args: []string{"-c",
				`cat index.html > result.txt && echo "$CF_INSTANCE_CERT" >> result.txt`}},
		)),
		ResultFile: "/home/vcap/result.txt",
		MetricTags: map[string]*models.MetricTagValue{"source_id": {Static: "task"}},
	}))
	var task *models.Task
	why = poll(120*time.Second, func() string {
		task, err = client.TaskByGuid(logger, tid(), taskGuid)
		if err != nil {
			return err.Error()
		}
		if task.State != models.Task_Completed {
			return "state " + task.State.String()
		}
		return ""
	})
	if why != "" {
		fail("cell-task", "%s", why)
	}
	if task.Failed || task.Result != "droplet ok\n/etc/cf-instance-credentials/instance.crt\n" {
		fail("cell-task", "failed=%v reason=%q result=%q", task.Failed, task.FailureReason, task.Result)
	}
	ok("cell-task")

	for _, g := range []string{guid, daemon.ProcessGuid, crashing.ProcessGuid, broken.ProcessGuid} {
		check("cell-cleanup", client.RemoveDesiredLRP(logger, tid(), g))
	}
	ok("cell-cleanup")
	_ = cellID
}

// waitForState waits until guid has n ORDINARY instances in state; it returns them.
func waitForState(step, guid string, n int, state string, timeout time.Duration) []*models.ActualLRP {
	var actuals []*models.ActualLRP
	why := poll(timeout, func() string {
		var err error
		actuals, err = client.ActualLRPs(logger, tid(), models.ActualLRPFilter{ProcessGuid: guid})
		if err != nil {
			return err.Error()
		}
		count := 0
		for _, a := range actuals {
			if a.State == state && a.Presence == models.ActualLRP_Ordinary {
				count++
			}
		}
		if count != n {
			return fmt.Sprintf("want %d %s, got %s", n, state, describe(actuals))
		}
		return ""
	})
	if why != "" {
		fail(step, "%s", why)
	}
	return actuals
}

func hostPort(step string, a *models.ActualLRP, containerPort uint32) int {
	for _, p := range a.Ports {
		if p.ContainerPort == containerPort {
			return int(p.HostPort)
		}
	}
	fail(step, "no host port for %d in %+v", containerPort, a.ActualLRPNetInfo)
	return 0
}

func get(step, url string) string {
	res, err := http.Get(url)
	check(step, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	check(step, err)
	if res.StatusCode != http.StatusOK {
		fail(step, "GET %s: %d %s", url, res.StatusCode, body)
	}
	return string(body)
}

func parseEnv(text string) map[string]string {
	env := map[string]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, found := strings.Cut(line, "="); found {
			env[k] = v
		}
	}
	return env
}
