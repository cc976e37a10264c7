// The "locket" scenario: Diego's Locket client (code.cloudfoundry.org/locket, as cfdot and Diego's components use
// it) against `diego-operator bbs --locket-listen`, over mutual TLS. Run by test/integration/locket.test.ts:
//
//	go run . -scenario locket -locket HOST:PORT -cell CELL_ID -component-lock NAME -tls-ca CA -tls-cert C -tls-key K
//
// Prints "ok <step>" per step.
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"time"

	"code.cloudfoundry.org/bbs/models"
	"code.cloudfoundry.org/clock"
	"code.cloudfoundry.org/locket"
	"code.cloudfoundry.org/locket/lock"
	locketmodels "code.cloudfoundry.org/locket/models"
	"github.com/tedsuo/ifrit"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func runLocketScenario(address, cellID, componentLock, caFile, certFile, keyFile, suffix string) {
	lc, err := locket.NewClient(logger, locket.ClientLocketConfig{
		LocketAddress:        address,
		LocketCACertFile:     caFile,
		LocketClientCertFile: certFile,
		LocketClientKeyFile:  keyFile,
	})
	check("client", err)
	ctx := context.Background()

	// cfdot presences: each present cell, its value the CellPresence a rep would write.
	presences, err := lc.FetchAll(ctx, &locketmodels.FetchAllRequest{TypeCode: locketmodels.PRESENCE})
	check("presences", err)
	found := false
	for _, r := range presences.Resources {
		if r.Key != cellID {
			continue
		}
		var p models.CellPresence
		check("presences", json.Unmarshal([]byte(r.Value), &p))
		if p.CellId != cellID || p.Capacity == nil || p.Capacity.MemoryMb <= 0 || r.TypeCode != locketmodels.PRESENCE {
			fail("presences", "presence of %s: %+v (value %s)", cellID, r, r.Value)
		}
		found = true
	}
	if !found {
		fail("presences", "no presence for %s among %d", cellID, len(presences.Resources))
	}
	ok("presences")

	// cfdot locks: the operator's own coordination Leases are locks.
	locks, err := lc.FetchAll(ctx, &locketmodels.FetchAllRequest{TypeCode: locketmodels.LOCK})
	check("locks", err)
	if !hasKey(locks.Resources, componentLock) {
		fail("locks", "no lock %s among %+v", componentLock, locks.Resources)
	}
	ok("locks")

	// cfdot claim-lock, fetch, renew.
	key := "conformance-" + suffix
	res := func(owner, value string) *locketmodels.Resource {
		return &locketmodels.Resource{Key: key, Owner: owner, Value: value, TypeCode: locketmodels.LOCK}
	}
	_, err = lc.Lock(ctx, &locketmodels.LockRequest{Resource: res("owner-a", "v1"), TtlInSeconds: 30})
	check("claim-lock", err)
	got, err := lc.Fetch(ctx, &locketmodels.FetchRequest{Key: key})
	check("claim-lock", err)
	if got.Resource.Owner != "owner-a" || got.Resource.Value != "v1" || got.Resource.TypeCode != locketmodels.LOCK {
		fail("claim-lock", "fetched %+v", got.Resource)
	}
	ok("claim-lock")
	_, err = lc.Lock(ctx, &locketmodels.LockRequest{Resource: res("owner-a", "v2"), TtlInSeconds: 30})
	check("renew-lock", err)
	got, err = lc.Fetch(ctx, &locketmodels.FetchRequest{Key: key})
	check("renew-lock", err)
	if got.Resource.Value != "v2" {
		fail("renew-lock", "value %q after a renewal with v2", got.Resource.Value)
	}
	ok("renew-lock")

	// Someone else: lock-collision, as Locket's clients expect it (code and message).
	_, err = lc.Lock(ctx, &locketmodels.LockRequest{Resource: res("owner-b", "x"), TtlInSeconds: 30})
	expectStatus("lock-collision", err, codes.AlreadyExists, "lock-collision")
	_, err = lc.Release(ctx, &locketmodels.ReleaseRequest{Resource: res("owner-b", "")})
	expectStatus("release-collision", err, codes.AlreadyExists, "lock-collision")
	_, err = lc.Lock(ctx, &locketmodels.LockRequest{Resource: &locketmodels.Resource{Key: componentLock, Owner: "intruder", TypeCode: locketmodels.LOCK}, TtlInSeconds: 30})
	expectStatus("component-lock-collision", err, codes.AlreadyExists, "lock-collision")

	// Bad requests: Locket's own answers.
	_, err = lc.Lock(ctx, &locketmodels.LockRequest{Resource: res("owner-a", ""), TtlInSeconds: 0})
	expectStatus("invalid-ttl", err, codes.InvalidArgument, "invalid-ttl")
	_, err = lc.Lock(ctx, &locketmodels.LockRequest{Resource: res("", ""), TtlInSeconds: 5})
	expectStatus("invalid-owner", err, codes.InvalidArgument, "invalid-owner")
	_, err = lc.FetchAll(ctx, &locketmodels.FetchAllRequest{})
	expectStatus("invalid-type", err, codes.NotFound, "invalid-type")

	// cfdot release-lock; then the lock is gone.
	_, err = lc.Release(ctx, &locketmodels.ReleaseRequest{Resource: res("owner-a", "")})
	check("release-lock", err)
	_, err = lc.Fetch(ctx, &locketmodels.FetchRequest{Key: key})
	expectStatus("release-lock", err, codes.NotFound, "resource-not-found")
	_, err = lc.Release(ctx, &locketmodels.ReleaseRequest{Resource: res("owner-a", "")})
	check("release-absent", err) // releasing what is not held is fine, as in Locket
	ok("release-absent")

	// A lock whose holder stopped renewing expires; another owner takes it.
	_, err = lc.Lock(ctx, &locketmodels.LockRequest{Resource: res("owner-a", ""), TtlInSeconds: 1})
	check("expiry", err)
	if why := poll(30*time.Second, func() string {
		_, err := lc.Lock(ctx, &locketmodels.LockRequest{Resource: res("owner-b", "late"), TtlInSeconds: 30})
		if err != nil {
			return err.Error()
		}
		return ""
	}); why != "" {
		fail("expiry", "owner-b never took the expired lock: %s", why)
	}
	got, err = lc.Fetch(ctx, &locketmodels.FetchRequest{Key: key})
	check("expiry", err)
	if got.Resource.Owner != "owner-b" {
		fail("expiry", "owner %q after the takeover", got.Resource.Owner)
	}
	_, err = lc.Release(ctx, &locketmodels.ReleaseRequest{Resource: res("owner-b", "")})
	check("expiry", err)
	ok("expiry")

	// Presences are the cell agents': a claim through Locket is refused, saying so.
	_, err = lc.Lock(ctx, &locketmodels.LockRequest{Resource: &locketmodels.Resource{Key: "rep-" + suffix, Owner: "rep", Value: "{}", TypeCode: locketmodels.PRESENCE}, TtlInSeconds: 15})
	expectStatus("presence-refused", err, codes.Unimplemented, "")

	// Diego's lock runner (what the BBS and the auctioneer hold their locks with): acquires, renews every second,
	// releases on a signal; a second runner for the same key waits.
	runnerKey := "runner-" + suffix
	first := ifrit.Invoke(lock.NewLockRunner(logger, lc, &locketmodels.Resource{Key: runnerKey, Owner: "first", TypeCode: locketmodels.LOCK}, 5, clock.NewClock(), time.Second))
	select {
	case <-first.Ready():
	case err := <-first.Wait():
		fail("lock-runner", "exited: %v", err)
	case <-time.After(60 * time.Second):
		fail("lock-runner", "not ready after 60 s")
	}
	second := ifrit.Background(lock.NewLockRunner(logger, lc, &locketmodels.Resource{Key: runnerKey, Owner: "second", TypeCode: locketmodels.LOCK}, 5, clock.NewClock(), time.Second))
	time.Sleep(8 * time.Second) // longer than the ttl: the first renews, so the second never gets it
	select {
	case <-second.Ready():
		fail("lock-runner", "the second runner acquired a lock the first holds")
	case err := <-first.Wait():
		fail("lock-runner", "the first runner lost its lock: %v", err)
	default:
	}
	ok("lock-runner")
	first.Signal(os.Interrupt)
	<-first.Wait()
	select {
	case <-second.Ready():
	case <-time.After(60 * time.Second):
		fail("lock-handover", "the second runner did not acquire the lock within 60 s of the first's release")
	}
	got, err = lc.Fetch(ctx, &locketmodels.FetchRequest{Key: runnerKey})
	check("lock-handover", err)
	if got.Resource.Owner != "second" {
		fail("lock-handover", "owner %q", got.Resource.Owner)
	}
	second.Signal(os.Interrupt)
	<-second.Wait()
	ok("lock-handover")
}

func hasKey(rs []*locketmodels.Resource, key string) bool {
	for _, r := range rs {
		if r.Key == key {
			return true
		}
	}
	return false
}

func expectStatus(step string, err error, code codes.Code, message string) {
	if err == nil {
		fail(step, "succeeded; want %s", code)
	}
	s := status.Convert(err)
	if s.Code() != code || (message != "" && s.Message() != message) {
		fail(step, "got %s %q; want %s %q", s.Code(), s.Message(), code, message)
	}
	fmt.Printf("ok %s\n", step)
}
