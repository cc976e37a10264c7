// The "cell-states" scenario: what `cfdot cell-states` does, with Diego's own clients — the cells from the BBS
// (Cells: each cell's rep address), then each rep's GET /state through code.cloudfoundry.org/rep's client. Run by
// test/integration/rep-state.test.ts against the facade and a cell agent's ops server:
//
//	go run . -scenario cell-states -url http://127.0.0.1:PORT -cell CELL_ID -guid PROCESS_GUID
//
// Prints "ok <step>" per step and the cell's state as the rep client decoded it ("state <json>").
package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	neturl "net/url"
	"time"

	"code.cloudfoundry.org/rep"
)

func runCellStatesScenario(cellID, processGuid string) {
	cells, err := client.Cells(logger, tid())
	check("cells", err)
	var address, url string
	for _, c := range cells {
		if c.CellId == cellID {
			address, url = c.RepAddress, c.RepUrl
		}
	}
	if address == "" && url == "" {
		fail("cells", "cell %s has no rep address among %d cells", cellID, len(cells))
	}
	ok("cells")

	// As cfdot builds it: no TLS credentials, so the rep URL if any, else the address.
	factory, err := rep.NewClientFactory(&http.Client{}, &http.Client{Timeout: 10 * time.Second}, &rep.TLSConfig{})
	check("rep-client", err)
	repClient, err := factory.CreateClient(address, url, tid())
	check("rep-client", err)
	state, err := repClient.State(logger)
	check("cell-state", err)
	if state.CellID != cellID {
		fail("cell-state", "cell_id %q, want %q", state.CellID, cellID)
	}
	if state.TotalResources.MemoryMB <= 0 || state.AvailableResources.MemoryMB >= state.TotalResources.MemoryMB {
		fail("cell-state", "resources: total %+v, available %+v", state.TotalResources, state.AvailableResources)
	}
	if !state.RootFSProviders.Match(mustURL("preloaded:cflinuxfs4")) {
		fail("cell-state", "rootfs providers %+v do not match preloaded:cflinuxfs4", state.RootFSProviders)
	}
	found := false
	for _, l := range state.LRPs {
		if l.ProcessGuid == processGuid && l.InstanceGUID != "" && l.MemoryMB > 0 {
			found = true
		}
	}
	if !found {
		fail("cell-state", "no instance of %s in %+v", processGuid, state.LRPs)
	}
	ok("cell-state")
	out, err := json.Marshal(state)
	check("cell-state", err)
	fmt.Printf("state %s\n", out)
}

func mustURL(s string) neturl.URL {
	u, err := neturl.Parse(s)
	check("url", err)
	return *u
}
