// Command bbs-vectors writes Diego's own protobuf encoding of a set of BBS messages to vectors.json.
// src/bbs/wire.test.ts decodes every vector with our TypeScript codec and re-encodes it to the same bytes.
//
// Run from this directory (the unit tests never need Go):
//
//	GOWORK=off go run . > vectors.json
//
// Go writes map entries in random order, so each run may change some hex strings; any run is a valid vector set.
//
// code.cloudfoundry.org/bbs has no go.mod of its own and the Go module proxy here serves only some of its
// pseudo-versions: the newest served one, 045cbe35 (2026-05-07), is pinned. It lacks CellPresence.annotations
// (field 9, added in b2385bea); wire.test.ts covers that field by hand. `go mod tidy` needs -e because the tests
// of bbs's own packages import code.cloudfoundry.org/locket, which the proxy does not serve:
//
//	GOWORK=off GOFLAGS=-mod=mod go mod tidy -e
package main

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"code.cloudfoundry.org/bbs/models"
	"github.com/gogo/protobuf/proto"
)

type vector struct {
	Name    string `json:"name"`
	Message string `json:"message"`
	Hex     string `json:"hex"`
}

type output struct {
	Comment string   `json:"comment"`
	Bbs     string   `json:"bbs"`
	Vectors []vector `json:"vectors"`
}

func raw(s string) *json.RawMessage {
	m := json.RawMessage(s)
	return &m
}

func desiredLRP() *models.DesiredLRP {
	routes := models.Routes{
		"cf-router":  raw(`[{"hostnames":["app.example.com"],"port":8080,"route_service_url":null,"protocol":"http1"}]`),
		"diego-ssh":  raw(`{"container_port":2222,"private_key":"k","host_fingerprint":"f"}`),
		"tcp-router": raw(`[]`),
	}
	nofile := &models.ResourceLimits{}
	nofile.SetNofile(1024)
	run := &models.RunAction{
		Path:               "/tmp/lifecycle/launcher",
		Args:               []string{"app", "bundle exec rackup", ""},
		Dir:                "/home/vcap/app",
		Env:                []*models.EnvironmentVariable{{Name: "PORT", Value: "8080"}, {Name: "EMPTY", Value: ""}},
		ResourceLimits:     nofile,
		User:               "vcap",
		LogSource:          "APP/PROC/WEB",
		SuppressLogOutput:  true,
		VolumeMountedFiles: []*models.File{{Path: "/etc/cf-service-bindings/db/uri", Content: "postgres://"}},
	}
	download := &models.DownloadAction{
		Artifact: "droplet", From: "http://cc/droplet.tgz", To: "/home/vcap", CacheKey: "droplets-1",
		LogSource: "CELL", User: "vcap", ChecksumAlgorithm: "sha256", ChecksumValue: "abc123",
	}
	upload := &models.UploadAction{Artifact: "result", From: "/tmp/out", To: "http://cc/upload", LogSource: "CELL", User: "vcap"}
	action := models.WrapAction(models.Codependent(
		models.EmitProgressFor(models.Timeout(run, 90*time.Second), "starting", "started", "failed to start"),
		models.Try(models.Parallel(upload, &models.RunAction{Path: "/bin/true", User: "root"})),
	))
	return &models.DesiredLRP{
		ProcessGuid:             "a1b2c3d4-0000-1111-2222-333344445555-6666",
		Domain:                  "cf-apps",
		RootFs:                  "preloaded:cflinuxfs4",
		Instances:               3,
		EnvironmentVariables:    []*models.EnvironmentVariable{{Name: "LANG", Value: "en_US.UTF-8"}},
		Setup:                   models.WrapAction(models.Serial(download)),
		Action:                  action,
		StartTimeoutMs:          60000,
		DeprecatedStartTimeoutS: 60,
		Monitor:                 models.WrapAction(&models.RunAction{Path: "/tmp/lifecycle/healthcheck", Args: []string{"-port=8080"}, User: "vcap"}),
		DiskMb:                  1024,
		MemoryMb:                256,
		CpuWeight:               25,
		Privileged:              true,
		Ports:                   []uint32{8080, 2222, 61001},
		Routes:                  &routes,
		LogSource:               "CELL",
		LogGuid:                 "a1b2c3d4",
		MetricsGuid:             "a1b2c3d4",
		Annotation:              "1712345678.123",
		EgressRules: []*models.SecurityGroupRule{
			{Protocol: "tcp", Destinations: []string{"10.0.0.0/8", "192.168.0.1-192.168.0.9"}, Ports: []uint32{80, 443}, Log: true, Annotations: []string{"security_group_id:x"}},
			{Protocol: "udp", Destinations: []string{"0.0.0.0/0"}, PortRange: &models.PortRange{Start: 53, End: 54}},
			{Protocol: "icmp", Destinations: []string{"0.0.0.0/0"}, IcmpInfo: &models.ICMPInfo{Type: -1, Code: 0}},
		},
		ModificationTag:               &models.ModificationTag{Epoch: "epoch-guid", Index: 7},
		CachedDependencies:            []*models.CachedDependency{{Name: "lifecycle", From: "http://file-server/lifecycle.tgz", To: "/tmp/lifecycle", CacheKey: "lifecycle", LogSource: "CELL", ChecksumAlgorithm: "sha256", ChecksumValue: "def"}},
		LegacyDownloadUser:            "vcap",
		TrustedSystemCertificatesPath: "/etc/cf-system-certificates",
		VolumeMounts: []*models.VolumeMount{
			{Driver: "nfsv3driver", ContainerDir: "/data", Mode: "rw", Shared: &models.SharedDevice{VolumeId: "vol-1", MountConfig: `{"source":"nfs://x"}`}},
		},
		Network:               &models.Network{Properties: map[string]string{"policy_group_id": "app-guid"}},
		PlacementTags:         []string{"isolation-segment-a"},
		MaxPids:               1024,
		CertificateProperties: &models.CertificateProperties{OrganizationalUnit: []string{"organization:o", "space:s", "app:a"}},
		ImageUsername:         "user",
		ImagePassword:         "secret",
		CheckDefinition: &models.CheckDefinition{
			Checks:          []*models.Check{{TcpCheck: &models.TCPCheck{Port: 8080, ConnectTimeoutMs: 1000, IntervalMs: 500}}},
			LogSource:       "HEALTH",
			ReadinessChecks: []*models.Check{{HttpCheck: &models.HTTPCheck{Port: 8080, RequestTimeoutMs: 1000, Path: "/ready", IntervalMs: 2000}}},
		},
		ImageLayers: []*models.ImageLayer{
			{Name: "buildpack", Url: "http://file-server/bp.zip", DestinationPath: "/tmp/bp", LayerType: models.LayerTypeShared, MediaType: models.MediaTypeZip, DigestAlgorithm: models.DigestAlgorithmSha256, DigestValue: "0123"},
			{Url: "http://cc/droplet.tgz", DestinationPath: "/home/vcap", LayerType: models.LayerTypeExclusive, MediaType: models.MediaTypeTgz},
		},
		MetricTags: map[string]*models.MetricTagValue{
			"source_id":      {Static: "a1b2c3d4"},
			"instance_index": {Dynamic: models.MetricTagDynamicValueIndex},
			"instance_id":    {Dynamic: models.MetricTagDynamicValueInstanceGuid},
		},
		Sidecars:           []*models.Sidecar{{Action: models.WrapAction(&models.RunAction{Path: "/bin/sidecar", User: "vcap"}), DiskMb: 10, MemoryMb: 20}},
		LogRateLimit:       &models.LogRateLimit{BytesPerSecond: -1},
		VolumeMountedFiles: []*models.File{{Path: "/etc/cf-instance-credentials/x", Content: "y"}},
		UpdateStrategy:     models.DesiredLRP_UpdateStrategyRecreate,
	}
}

func actualLRP() *models.ActualLRP {
	lrp := &models.ActualLRP{
		ActualLRPKey:         models.NewActualLRPKey("a1b2c3d4", 0, "cf-apps"),
		ActualLRPInstanceKey: models.NewActualLRPInstanceKey("instance-guid", "cell-z1-0"),
		ActualLRPNetInfo: models.ActualLRPNetInfo{
			Address:             "10.0.16.5",
			Ports:               []*models.PortMapping{{ContainerPort: 8080, HostPort: 61001, ContainerTlsProxyPort: 61443, HostTlsProxyPort: 61002}, {ContainerPort: 2222, HostPort: 61003}},
			InstanceAddress:     "10.255.0.7",
			PreferredAddress:    models.ActualLRPNetInfo_PreferredAddressInstance,
			InstanceIpv6Address: "fd00::7",
		},
		CrashCount:              2,
		CrashReason:             "exit status 1",
		State:                   models.ActualLRPStateRunning,
		Since:                   1718200000123456789,
		ModificationTag:         models.ModificationTag{Epoch: "epoch", Index: 3},
		Presence:                models.ActualLRP_Evacuating,
		ActualLrpInternalRoutes: []*models.ActualLRPInternalRoute{{Hostname: "app.apps.internal"}},
		MetricTags:              map[string]string{"source_id": "a1b2c3d4", "instance_id": "instance-guid"},
		AvailabilityZone:        "z1",
	}
	// Present-but-false must survive: CC treats an absent value as routable.
	lrp.SetRoutable(false)
	return lrp
}

func task() *models.Task {
	return &models.Task{
		TaskDefinition: &models.TaskDefinition{
			RootFs:                "docker:///busybox#latest",
			EnvironmentVariables:  []*models.EnvironmentVariable{{Name: "A", Value: "b"}},
			Action:                models.WrapAction(&models.RunAction{Path: "sh", Args: []string{"-c", "echo hi > /tmp/result"}, User: "root"}),
			DiskMb:                100,
			MemoryMb:              128,
			CpuWeight:             1,
			LogSource:             "TASK",
			LogGuid:               "task-log",
			MetricsGuid:           "task-metrics",
			ResultFile:            "/tmp/result",
			CompletionCallbackUrl: "http://cc/internal/v3/tasks/t/completed",
			Annotation:            `{"task_guid":"t"}`,
			EgressRules:           []*models.SecurityGroupRule{{Protocol: "all", Destinations: []string{"0.0.0.0-9.255.255.255"}}},
			PlacementTags:         []string{"a", "b"},
			MaxPids:               64,
			ImageUsername:         "u",
			ImagePassword:         "p",
			LogRateLimit:          &models.LogRateLimit{BytesPerSecond: 1 << 20},
			MetricTags:            map[string]*models.MetricTagValue{"source_id": {Static: "t"}},
			Network:               &models.Network{Properties: map[string]string{}},
		},
		TaskGuid:         "task-guid-1",
		Domain:           "cf-tasks",
		CreatedAt:        1718200000000000000,
		UpdatedAt:        1718200001000000000,
		FirstCompletedAt: 1718200002000000000,
		State:            models.Task_Completed,
		CellId:           "",
		Result:           "hi\n",
		Failed:           true,
		FailureReason:    "exit status 3",
		RejectionCount:   1,
		RejectionReason:  "insufficient resources: memory",
	}
}

func main() {
	var vectors []vector
	add := func(name string, msg proto.Message) {
		b, err := proto.Marshal(msg)
		if err != nil {
			panic(fmt.Sprintf("%s: %v", name, err))
		}
		vectors = append(vectors, vector{Name: name, Message: proto.MessageName(msg), Hex: hex.EncodeToString(b)})
	}

	dlrp := desiredLRP()
	add("desired_lrp", dlrp)
	add("desire_lrp_request", &models.DesireLRPRequest{DesiredLrp: dlrp})
	info := dlrp.DesiredLRPSchedulingInfo()
	add("desired_lrp_scheduling_info", &info)

	alrp := actualLRP()
	add("actual_lrp", alrp)
	unclaimed := models.NewUnclaimedActualLRP(models.NewActualLRPKey("a1b2c3d4", 1, "cf-apps"), 1718200000000000000)
	unclaimed.PlacementError = "found no compatible cell"
	add("actual_lrp_unclaimed", unclaimed)
	add("actual_lrps_response", &models.ActualLRPsResponse{ActualLrps: []*models.ActualLRP{alrp, unclaimed}})

	index0 := &models.ActualLRPsRequest{Domain: "cf-apps", ProcessGuid: "a1b2c3d4"}
	index0.SetIndex(0)
	add("actual_lrps_request_index_0", index0)
	add("actual_lrps_request_all_indices", &models.ActualLRPsRequest{CellId: "cell-z1-0"})

	start := &models.StartActualLRPRequest{
		ActualLrpKey:            &alrp.ActualLRPKey,
		ActualLrpInstanceKey:    &alrp.ActualLRPInstanceKey,
		ActualLrpNetInfo:        &alrp.ActualLRPNetInfo,
		ActualLrpInternalRoutes: alrp.ActualLrpInternalRoutes,
		MetricTags:              map[string]string{"source_id": "a1b2c3d4"},
		AvailabilityZone:        "z1",
	}
	start.SetRoutable(true)
	add("start_actual_lrp_request", start)

	update := &models.DesiredLRPUpdate{}
	update.SetInstances(0)
	update.SetAnnotation("")
	add("update_desired_lrp_request", &models.UpdateDesiredLRPRequest{ProcessGuid: "a1b2c3d4", Update: update})

	before := *alrp
	before.State = models.ActualLRPStateClaimed
	before.ActualLRPNetInfo = models.ActualLRPNetInfo{}
	before.OptionalRoutable = nil
	add("actual_lrp_instance_changed_event", models.NewActualLRPInstanceChangedEvent(&before, alrp, "trace-1"))

	t := task()
	add("task", t)
	add("desire_task_request", &models.DesireTaskRequest{TaskDefinition: t.TaskDefinition, TaskGuid: t.TaskGuid, Domain: t.Domain})

	cell := &models.CellPresence{
		CellId:                "cell-z1-0",
		RepAddress:            "http://10.0.16.5:1800",
		Zone:                  "z1",
		Capacity:              &models.CellCapacity{MemoryMb: 16384, DiskMb: 65536, Containers: 250},
		RootfsProviders:       []*models.Provider{{Name: "preloaded", Properties: []string{"cflinuxfs4"}}, {Name: "docker"}},
		PlacementTags:         []string{"isolation-segment-a"},
		OptionalPlacementTags: []string{"gpu"},
		RepUrl:                "https://cell-z1-0.cell.service.cf.internal:1801",
	}
	add("cell_presence", cell)
	add("cells_response", &models.CellsResponse{Cells: []*models.CellPresence{cell}})

	add("error", models.ErrResourceNotFound)
	add("desired_lrp_lifecycle_response_error", &models.DesiredLRPLifecycleResponse{Error: models.NewError(models.Error_InvalidRequest, "Invalid field: process_guid")})
	add("ping_response", &models.PingResponse{Available: true})
	// Known difference: gogo leaves out an empty bytes value of a map entry, protobuf-es writes it.
	add("proto_routes_empty_value", &models.ProtoRoutes{Routes: map[string][]byte{"empty": {}}})

	version := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, dep := range bi.Deps {
			if dep.Path == "code.cloudfoundry.org/bbs" {
				version = dep.Version
			}
		}
	}
	out := output{
		Comment: "Generated by test/bbs-vectors (GOWORK=off go run . > vectors.json) from Diego's Go models; do not edit.",
		Bbs:     version,
		Vectors: vectors,
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
