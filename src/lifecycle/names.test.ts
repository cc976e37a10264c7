import { describe, expect, it } from 'vitest';
import {
  actualLRPName,
  asLabelValue,
  copyName,
  copyPresenceOfName,
  instanceLabels,
  ordinaryNameOf,
  placementPatch,
  REASON_MAX_LENGTH,
  suspectName,
  truncateReason,
} from './names.ts';

describe('names and labels', () => {
  it('names ORDINARY instances by index and copies by presence', () => {
    expect(actualLRPName('web', 3)).toBe('web-3');
    expect(actualLRPName('web', 3, 'SUSPECT')).toBe('web-3-suspect');
    expect(actualLRPName('web', 3, 'EVACUATING')).toBe('web-3-evacuating');
  });

  it('labels the process guid only when it can be a label value', () => {
    expect(instanceLabels('uid-1', 0, 'web')).toEqual({
      'diego.dev/desired-lrp-uid': 'uid-1',
      'diego.dev/index': '0',
      'diego.dev/process-guid': 'web',
    });
    // Cloud Controller: <app guid>-<version guid>, 73 characters.
    const cc = 'a3b9c6f4-1b8e-4c3a-9d1e-2f3a4b5c6d7e-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b';
    expect(instanceLabels('uid-1', 0, cc)).not.toHaveProperty('diego.dev/process-guid');
    expect(asLabelValue('_starts-badly')).toBeUndefined();
    expect(asLabelValue('cell_z1-0')).toBe('cell_z1-0');
  });

  it('places and unplaces with the cell label in the same patch', () => {
    expect(placementPatch('cell_z1-0', { why: 'x' })).toEqual({
      metadata: { labels: { 'diego.dev/cell-id': 'cell_z1-0' }, annotations: { why: 'x' } },
      spec: { cellId: 'cell_z1-0' },
    });
    expect(placementPatch(null)).toEqual({
      metadata: { labels: { 'diego.dev/cell-id': null } },
      spec: { cellId: null },
    });
  });
});

describe('copies and limits', () => {
  it('finds the ORDINARY name and the presence from any record name of an index', () => {
    expect(copyName('web-3', 'EVACUATING')).toBe('web-3-evacuating');
    expect(suspectName('web-3')).toBe('web-3-suspect');
    expect(ordinaryNameOf('web-3-suspect')).toBe('web-3');
    expect(ordinaryNameOf('web-3-evacuating')).toBe('web-3');
    expect(ordinaryNameOf('web-3')).toBe('web-3');
    expect(copyPresenceOfName('web-3-evacuating')).toBe('EVACUATING');
    expect(copyPresenceOfName('web-3')).toBeUndefined();
  });

  it("keeps reasons to Diego's 1024 characters", () => {
    expect(truncateReason('x'.repeat(2000))).toHaveLength(REASON_MAX_LENGTH);
    expect(truncateReason('short')).toBe('short');
  });
});
