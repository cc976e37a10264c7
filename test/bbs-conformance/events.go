// Event-stream steps of the conformance scenario: Diego's client subscribes with SubscribeToInstanceEvents and
// SubscribeToTaskEvents, a goroutine per stream collects what arrives, and the scenario then waits for the
// created, changed and removed events of the desired LRP, its instances and the task it drove.
package main

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"code.cloudfoundry.org/bbs/events"
	"code.cloudfoundry.org/bbs/models"
)

// collector keeps every event one stream delivered, in order.
type collector struct {
	step   string
	source events.EventSource
	mu     sync.Mutex
	got    []models.Event
	err    error
}

func subscribe(step string, open func() (events.EventSource, error)) *collector {
	source, err := open()
	check(step, err)
	c := &collector{step: step, source: source}
	go func() {
		for {
			ev, err := source.Next()
			if errors.Is(err, events.ErrUnrecognizedEventType) {
				continue
			}
			c.mu.Lock()
			if err != nil {
				c.err = err
				c.mu.Unlock()
				return
			}
			c.got = append(c.got, ev)
			c.mu.Unlock()
		}
	}()
	ok(step)
	return c
}

// waitFor waits until an event of that type satisfying match has arrived, and returns it.
func (c *collector) waitFor(step, eventType string, match func(models.Event) bool) models.Event {
	var hit models.Event
	why := poll(60*time.Second, func() string {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, ev := range c.got {
			if ev.EventType() == eventType && match(ev) {
				hit = ev
				return ""
			}
		}
		if c.err != nil {
			return fmt.Sprintf("stream ended: %v", c.err)
		}
		return fmt.Sprintf("no matching %s among %s", eventType, c.types())
	})
	if why != "" {
		fail(step, "%s", why)
	}
	return hit
}

func (c *collector) types() string {
	names := make([]string, 0, len(c.got))
	for _, ev := range c.got {
		names = append(names, ev.EventType())
	}
	return "[" + strings.Join(names, " ") + "]"
}

func (c *collector) close() {
	if err := c.source.Close(); err != nil {
		fail(c.step, "close: %v", err)
	}
}

// checkLRPEvents: the desired LRP's created (2 instances), changed (2 → 3) and removed events, and created,
// changed (to RUNNING on the cell) and removed events of its instances.
func checkLRPEvents(c *collector, guid, cellID string) {
	const step = "lrp-instance-events"
	created := c.waitFor(step, models.EventTypeDesiredLRPCreated, func(ev models.Event) bool {
		return ev.(*models.DesiredLRPCreatedEvent).DesiredLrp.GetProcessGuid() == guid
	}).(*models.DesiredLRPCreatedEvent)
	if created.DesiredLrp.Instances != 2 {
		fail(step, "desired_lrp_created with %d instances", created.DesiredLrp.Instances)
	}
	c.waitFor(step, models.EventTypeDesiredLRPChanged, func(ev models.Event) bool {
		e := ev.(*models.DesiredLRPChangedEvent)
		return e.After.GetProcessGuid() == guid && e.Before.GetInstances() == 2 && e.After.GetInstances() == 3
	})
	c.waitFor(step, models.EventTypeDesiredLRPRemoved, func(ev models.Event) bool {
		return ev.(*models.DesiredLRPRemovedEvent).DesiredLrp.GetProcessGuid() == guid
	})
	c.waitFor(step, models.EventTypeActualLRPInstanceCreated, func(ev models.Event) bool {
		return ev.(*models.ActualLRPInstanceCreatedEvent).ActualLrp.GetProcessGuid() == guid
	})
	running := c.waitFor(step, models.EventTypeActualLRPInstanceChanged, func(ev models.Event) bool {
		e := ev.(*models.ActualLRPInstanceChangedEvent)
		return e.ProcessGuid == guid && e.After.GetState() == models.ActualLRPStateRunning
	}).(*models.ActualLRPInstanceChangedEvent)
	if running.CellId != cellID || running.InstanceGuid == "" {
		fail(step, "RUNNING instance event with cell %q, instance guid %q", running.CellId, running.InstanceGuid)
	}
	c.waitFor(step, models.EventTypeActualLRPInstanceRemoved, func(ev models.Event) bool {
		return ev.(*models.ActualLRPInstanceRemovedEvent).ActualLrp.GetProcessGuid() == guid
	})
	ok(step)
}

// checkTaskEvents: the task's created, changed (cancelled: completed as failed) and removed events.
func checkTaskEvents(c *collector, taskGuid string) {
	const step = "task-events"
	c.waitFor(step, models.EventTypeTaskCreated, func(ev models.Event) bool {
		return ev.(*models.TaskCreatedEvent).Task.GetTaskGuid() == taskGuid
	})
	c.waitFor(step, models.EventTypeTaskChanged, func(ev models.Event) bool {
		e := ev.(*models.TaskChangedEvent)
		return e.After.GetTaskGuid() == taskGuid && e.After.State == models.Task_Completed && e.After.Failed
	})
	c.waitFor(step, models.EventTypeTaskRemoved, func(ev models.Event) bool {
		return ev.(*models.TaskRemovedEvent).Task.GetTaskGuid() == taskGuid
	})
	ok(step)
}
